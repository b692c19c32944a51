package builtin

import (
	"context"
	"encoding/json"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/world"
	"github.com/terrarium-sim/terrarium/world/game"
)

func TestPDStrategies(t *testing.T) {
	tests := []struct {
		strategy  string
		you, them string
		want      byte
		why       string
	}{
		{"cooperator", "", "", 'C', "always C"},
		{"cooperator", "CCC", "DDD", 'C', "always C"},
		{"defector", "", "", 'D', "always D"},
		{"defector", "DD", "CC", 'D', "always D"},

		{"tit_for_tat", "", "", 'C', "opens with C"},
		{"tit_for_tat", "C", "D", 'D', "copies D"},
		{"tit_for_tat", "CD", "DC", 'C', "forgives at once"},
		{"tit_for_tat", "CCCD", "CCDD", 'D', "copies the last move only"},

		{"grudger", "", "", 'C', "opens with C"},
		{"grudger", "CCC", "CCC", 'C', "no defection yet"},
		{"grudger", "CC", "CD", 'D', "first defection"},
		{"grudger", "CCDDD", "CDCCC", 'D', "never forgives"},

		{"tit_for_two_tats", "", "", 'C', "opens with C"},
		{"tit_for_two_tats", "C", "D", 'C', "one defection is tolerated"},
		{"tit_for_two_tats", "CC", "DD", 'D', "two in a row"},
		{"tit_for_two_tats", "CCC", "DCD", 'C', "not consecutive"},
		{"tit_for_two_tats", "CCCD", "CDDC", 'C', "the last two are DC"},
		{"tit_for_two_tats", "CCCDD", "CDDDD", 'D', "still two in a row"},

		{"suspicious_tit_for_tat", "", "", 'D', "opens with D"},
		{"suspicious_tit_for_tat", "D", "C", 'C', "copies C"},
		{"suspicious_tit_for_tat", "DC", "CD", 'D', "copies D"},

		{"alternator", "", "", 'C', "round 1: C"},
		{"alternator", "C", "D", 'D', "round 2: D"},
		{"alternator", "CD", "CC", 'C', "round 3: C"},
		{"alternator", "CDC", "DDD", 'D', "round 4: D, ignores the opponent"},

		{"pavlov", "", "", 'C', "opens with C"},
		{"pavlov", "C", "C", 'C', "R=3: stay with C"},
		{"pavlov", "C", "D", 'D', "S=0: shift to D"},
		{"pavlov", "D", "C", 'D', "T=5: stay with D"},
		{"pavlov", "D", "D", 'C', "P=1: shift to C"},
		{"pavlov", "CDC", "DDC", 'C', "only the last round counts: (C,C) stay"},
		{"pavlov", "CCD", "CCD", 'C', "(D,D) shift"},
	}
	for _, tt := range tests {
		s, ok := pdStrategies[tt.strategy]
		if !ok {
			t.Fatalf("no strategy %q", tt.strategy)
		}
		if got := s(tt.you, tt.them); got != tt.want {
			t.Errorf("%s(you %q, them %q) = %c, want %c (%s)", tt.strategy, tt.you, tt.them, got, tt.want, tt.why)
		}
	}
}

func TestPDRegistered(t *testing.T) {
	want := []string{"alternator", "cooperator", "defector", "grudger", "pavlov",
		"suspicious_tit_for_tat", "tit_for_tat", "tit_for_two_tats"}
	for _, n := range want {
		if _, ok := Lookup(n); !ok {
			t.Errorf("program %q not registered", n)
		}
	}
	var have []string
	for n := range pdStrategies {
		have = append(have, n)
	}
	sort.Strings(have)
	if !reflect.DeepEqual(have, want) {
		t.Errorf("strategies %v, want %v", have, want)
	}
}

func TestPDHandler(t *testing.T) {
	h := pdHandler(titForTat)
	obs := sdk.Observation{Tick: 3, Data: json.RawMessage(
		`{"round":3,"rounds":200,"matches":[{"match":"m05","you":"CD","them":"DD"},{"match":"m07","you":"CC","them":"CC"}]}`)}
	got, err := h(context.Background(), obs)
	if err != nil {
		t.Fatalf("handler: %v", err)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"moves":{"m05":"D","m07":"C"}}`; string(b) != want {
		t.Errorf("action %s, want %s", b, want)
	}
	bad := []string{`{"round":`, `{"matches":[{"match":"m01","you":"C","them":""}]}`}
	for _, d := range bad {
		if _, err := h(context.Background(), sdk.Observation{Tick: 2, Data: json.RawMessage(d)}); err == nil {
			t.Errorf("handler accepted %s", d)
		}
	}
}

// TestPDAgainstWorld plays the strategies through the real repeated_game
// world, handler to world and back, as the agent processes would.
func TestPDAgainstWorld(t *testing.T) {
	names := []string{"cooperator", "defector", "tit_for_tat", "grudger", "pavlov"}
	var seats []world.Seat
	for _, n := range names {
		seats = append(seats,
			world.Seat{ID: world.AgentID(n + "-1"), Group: n, Index: 1},
			world.Seat{ID: world.AgentID(n + "-2"), Group: n, Index: 2})
	}
	sort.Slice(seats, func(i, j int) bool { return seats[i].ID < seats[j].ID })
	c := game.NewConfig()
	c.Rounds, c.SelfPlay = 200, true
	w, err := game.New(*c, seats)
	if err != nil {
		t.Fatalf("game.New: %v", err)
	}
	ctx := context.Background()
	for tick := world.Tick(1); !w.Done(); tick++ {
		var actions []world.Action
		for _, s := range seats {
			data, ok, err := w.Observe(s.ID, tick)
			if err != nil || !ok {
				t.Fatalf("Observe(%s, %d): %v %v", s.ID, tick, ok, err)
			}
			v, err := pdHandler(pdStrategies[s.Group])(ctx, sdk.Observation{Tick: tick, Data: data})
			if err != nil {
				t.Fatalf("%s handler: %v", s.ID, err)
			}
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			a := world.Action{Agent: s.ID, Tick: tick, Data: b}
			if err := w.Validate(a); err != nil {
				t.Fatalf("world refused %s's %s: %v", s.ID, b, err)
			}
			actions = append(actions, a)
		}
		if _, err := w.Step(tick, actions, nil); err != nil {
			t.Fatalf("Step(%d): %v", tick, err)
		}
	}
	r := w.Result().(game.Result)
	got := map[string][2]float64{}
	for _, m := range r.Matches {
		got[m.Sides[0].Group+" "+m.Sides[1].Group] = [2]float64{m.Sides[0].Score, m.Sides[1].Score}
	}
	want := map[string][2]float64{ // 200 rounds, R=3 S=0 T=5 P=1, by hand
		"tit_for_tat tit_for_tat": {600, 600},
		"defector tit_for_tat":    {204, 199},
		"cooperator defector":     {0, 1000},
		"cooperator grudger":      {600, 600},
		"defector grudger":        {204, 199},
		"defector pavlov":         {600, 100},
		"pavlov pavlov":           {600, 600},
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v, want %v", k, got[k], v)
		}
	}
	if !strings.Contains(w.Table().Title, "prisoners_dilemma") {
		t.Errorf("table title %q", w.Table().Title)
	}
}

// The random strategy is a function of its seed, the match and the round:
// the same seed plays the same moves, another seed others, and the moves are
// mixed (about half C).
func TestRandomStrategy(t *testing.T) {
	if _, ok := Lookup("random"); !ok {
		t.Fatal("random not registered")
	}
	play := func(seed uint64) string {
		h := randomHandler(seed)
		var you []byte
		for round := 1; round <= 200; round++ {
			obs := sdk.Observation{Tick: world.Tick(round), Data: json.RawMessage(
				`{"round":` + strconv.Itoa(round) + `,"rounds":200,"matches":[{"match":"m01","you":"` + string(you) + `","them":"` + strings.Repeat("C", len(you)) + `"}]}`)}
			v, err := h(context.Background(), obs)
			if err != nil {
				t.Fatal(err)
			}
			you = append(you, v.(game.Action).Moves["m01"][0])
		}
		return string(you)
	}
	a, b, c := play(7), play(7), play(8)
	if a != b {
		t.Errorf("seed 7 played %s then %s", a, b)
	}
	if a == c {
		t.Errorf("seeds 7 and 8 played the same %s", a)
	}
	if n := strings.Count(a, "C"); n < 70 || n > 130 {
		t.Errorf("seed 7 cooperated %d times in 200 rounds: %s", n, a)
	}
	// A restarted agent (fresh handler, same history) plays the same next move.
	if randomMove(7, "m01", 101) != a[100] {
		t.Error("the move at round 101 depends on more than seed, match and round")
	}
}
