package game

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/world"
)

// The tournament strategies, written here again (world imports nothing of
// ours, not even in tests) so this is an independent check of the builtins.
type strategy func(you, them string) byte

func last(s string) byte { return s[len(s)-1] }

var strategies = map[string]strategy{
	"alternator": func(you, _ string) byte { return "CD"[len(you)%2] },
	"cooperator": func(string, string) byte { return 'C' },
	"defector":   func(string, string) byte { return 'D' },
	"grudger": func(_, them string) byte {
		if strings.Contains(them, "D") {
			return 'D'
		}
		return 'C'
	},
	"pavlov": func(you, them string) byte {
		switch {
		case you == "":
			return 'C'
		case last(them) == 'C': // payoff R or T: stay
			return last(you)
		case last(you) == 'C': // payoff S: shift
			return 'D'
		default: // payoff P: shift
			return 'C'
		}
	},
	"suspicious_tit_for_tat": func(_, them string) byte {
		if them == "" {
			return 'D'
		}
		return last(them)
	},
	"tit_for_tat": func(_, them string) byte {
		if them == "" {
			return 'C'
		}
		return last(them)
	},
	"tit_for_two_tats": func(_, them string) byte {
		if strings.HasSuffix(them, "DD") {
			return 'D'
		}
		return 'C'
	},
}

func strategyNames() []string {
	var n []string
	for k := range strategies {
		n = append(n, k)
	}
	return n
}

// playTick observes every seat, answers with its group's strategy, validates
// and steps one tick. It returns the new state hash.
func playTick(t testing.TB, w *World, seats []world.Seat) string {
	t.Helper()
	tick := world.Tick(w.round + 1)
	var actions []world.Action
	for _, s := range seats {
		raw, ok, err := w.Observe(s.ID, tick)
		if err != nil {
			t.Fatalf("Observe(%s, %d): %v", s.ID, tick, err)
		}
		if !ok {
			continue
		}
		var o Observation
		if err := json.Unmarshal(raw, &o); err != nil {
			t.Fatalf("observation %s: %v", raw, err)
		}
		a := Action{Moves: map[string]string{}}
		for _, m := range o.Matches {
			if len(m.You) != int(tick)-1 || len(m.Them) != int(tick)-1 {
				t.Fatalf("%s at tick %d sees %d/%d moves", s.ID, tick, len(m.You), len(m.Them))
			}
			a.Moves[m.Match] = string(strategies[s.Group](m.You, m.Them))
		}
		data, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		wa := world.Action{Agent: s.ID, Tick: tick, Data: data}
		if err := w.Validate(wa); err != nil {
			t.Fatalf("Validate(%s): %v", data, err)
		}
		actions = append(actions, wa)
	}
	if _, err := w.Step(tick, actions, nil); err != nil {
		t.Fatalf("Step(%d): %v", tick, err)
	}
	return w.StateHash()
}

// playMatch plays two strategies against each other directly, without the world.
func playMatch(a, b strategy, rounds int) (float64, float64) {
	pay := map[string][2]float64{"CC": {3, 3}, "CD": {0, 5}, "DC": {5, 0}, "DD": {1, 1}}
	var ha, hb string
	var sa, sb float64
	for range rounds {
		ma, mb := a(ha, hb), b(hb, ha)
		ha, hb = ha+string(ma), hb+string(mb)
		p := pay[string([]byte{ma, mb})]
		sa, sb = sa+p[0], sb+p[1]
	}
	return sa, sb
}

func TestTournament(t *testing.T) {
	seats := twinSeatsOf(strategyNames()...) // 16 agents
	w := mustNew(t, config(200, true), seats)
	for !w.Done() {
		playTick(t, w, seats)
	}
	if w.round != 200 {
		t.Fatalf("done after %d rounds, want 200", w.round)
	}
	r := w.Result().(Result)
	if len(r.Matches) != 8*7/2+8 {
		t.Fatalf("%d matches, want 36", len(r.Matches))
	}

	type pair struct{ a, b string }
	scores := map[pair][2]float64{}
	for _, m := range r.Matches {
		if len(m.Sides) != 2 {
			t.Fatalf("match %s has %d sides", m.Match, len(m.Sides))
		}
		a, b := m.Sides[0], m.Sides[1]
		if m.Self != (a.Group == b.Group) {
			t.Errorf("match %s: self %v, groups %s %s", m.Match, m.Self, a.Group, b.Group)
		}
		scores[pair{a.Group, b.Group}] = [2]float64{a.Score, b.Score}
		// Every match agrees with a direct game of the two strategies.
		wa, wb := playMatch(strategies[a.Group], strategies[b.Group], 200)
		if a.Score != wa || b.Score != wb {
			t.Errorf("%s %s vs %s: %v-%v, want %v-%v", m.Match, a.Agent, b.Agent, a.Score, b.Score, wa, wb)
		}
		if a.Moves["C"]+a.Moves["D"] != 200 {
			t.Errorf("%s: move counts %v", m.Match, a.Moves)
		}
	}
	// Known values (200 rounds, R=3 S=0 T=5 P=1), checked by hand.
	known := []struct {
		a, b string
		want [2]float64
	}{
		{"tit_for_tat", "tit_for_tat", [2]float64{600, 600}},
		{"defector", "tit_for_tat", [2]float64{204, 199}},
		{"cooperator", "defector", [2]float64{0, 1000}},
		{"defector", "defector", [2]float64{200, 200}},
		{"defector", "grudger", [2]float64{204, 199}},
		{"alternator", "cooperator", [2]float64{800, 300}},
		{"alternator", "tit_for_two_tats", [2]float64{800, 300}},
		{"suspicious_tit_for_tat", "tit_for_tat", [2]float64{500, 500}},
		{"defector", "pavlov", [2]float64{600, 100}},
	}
	for _, k := range known {
		if got, ok := scores[pair{k.a, k.b}]; !ok || got != k.want {
			t.Errorf("%s vs %s: %v (found %v), want %v", k.a, k.b, got, ok, k.want)
		}
	}

	// Totals are the sum of the ranked seat's match scores; twins never count.
	sum := map[string]float64{}
	played := map[string]int{}
	for _, m := range r.Matches {
		for _, s := range m.Sides {
			if strings.HasSuffix(string(s.Agent), "-1") {
				sum[s.Group] += s.Score
				played[s.Group]++
			}
		}
	}
	for i, s := range r.Standings {
		if s.Score != sum[s.Group] || s.Matches != 8 || played[s.Group] != 8 {
			t.Errorf("%s: score %v over %d matches, want %v over 8", s.Group, s.Score, s.Matches, sum[s.Group])
		}
		if s.Agent != world.AgentID(s.Group+"-1") {
			t.Errorf("%s ranked seat %s", s.Group, s.Agent)
		}
		if s.MeanPerRound != s.Score/(8*200) {
			t.Errorf("%s mean per round %v", s.Group, s.MeanPerRound)
		}
		if i > 0 {
			prev := r.Standings[i-1]
			if prev.Score < s.Score || (prev.Score == s.Score && (prev.Rank != s.Rank || prev.Group > s.Group)) ||
				(prev.Score > s.Score && s.Rank != i+1) {
				t.Errorf("standings out of order at %d: %+v then %+v", i, prev, s)
			}
		}
	}
	if r.Standings[0].Rank != 1 {
		t.Errorf("first rank %d", r.Standings[0].Rank)
	}
	tab := w.Table()
	if len(tab.Rows) != 8 || len(tab.Columns) != 5 || tab.Rows[0][1] != r.Standings[0].Group {
		t.Errorf("table %+v", tab)
	}
	t.Logf("%s", tab.Title)
	for _, row := range tab.Rows {
		t.Logf("%v", row)
	}
	if _, err := json.Marshal(w.Result()); err != nil {
		t.Errorf("result does not marshal: %v", err)
	}
}

func TestSnapshotRestore(t *testing.T) {
	names := []string{"grudger", "pavlov", "tit_for_tat", "alternator"}
	seats := twinSeatsOf(names...)
	c := config(120, true)
	a := mustNew(t, c, seats)
	for range 47 {
		playTick(t, a, seats)
	}
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	b := mustNew(t, c, seats)
	if err := b.Restore(snap); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if a.StateHash() != b.StateHash() {
		t.Fatalf("hash after restore %s, want %s", b.StateHash(), a.StateHash())
	}
	if snap2, _ := b.Snapshot(); string(snap2) != string(snap) {
		t.Errorf("snapshot of the restored world differs")
	}
	if !reflect.DeepEqual(a.Result(), b.Result()) {
		t.Errorf("result after restore differs")
	}
	for !a.Done() {
		if ha, hb := playTick(t, a, seats), playTick(t, b, seats); ha != hb {
			t.Fatalf("tick %d: hashes %s and %s", a.round, ha, hb)
		}
	}
	if !b.Done() || !reflect.DeepEqual(a.Result(), b.Result()) {
		t.Errorf("restored world ended differently")
	}

	// Restoring a world of another scenario fails and changes nothing.
	bad := map[string]func() ([]byte, *World){
		"other seats": func() ([]byte, *World) {
			return snap, mustNew(t, c, twinSeatsOf("x", "y", "z", "zz"))
		},
		"other rounds": func() ([]byte, *World) { return snap, mustNew(t, config(100, true), seats) },
		"other payoffs": func() ([]byte, *World) {
			c2 := c
			c2.Payoffs = map[string]float64{"T": 4}
			return snap, mustNew(t, c2, seats)
		},
		"corrupt": func() ([]byte, *World) { return snap[:len(snap)/2], mustNew(t, c, seats) },
		"bad move": func() ([]byte, *World) {
			i := strings.Index(string(snap), `"moves":["`) + len(`"moves":["`)
			return []byte(string(snap[:i]) + "X" + string(snap[i+1:])), mustNew(t, c, seats)
		},
		"short history": func() ([]byte, *World) {
			return []byte(strings.Replace(string(snap), `"round":47`, `"round":48`, 1)), mustNew(t, c, seats)
		},
		"future version": func() ([]byte, *World) {
			return []byte(strings.Replace(string(snap), `"v":1`, `"v":2`, 1)), mustNew(t, c, seats)
		},
	}
	for name, f := range bad {
		s, w := f()
		before := w.StateHash()
		if err := w.Restore(s); err == nil {
			t.Errorf("%s: Restore: no error", name)
		}
		if w.StateHash() != before {
			t.Errorf("%s: failed Restore changed the state", name)
		}
	}
}

func TestDeterminism(t *testing.T) {
	seats := seatsOf(strategyNames()...)
	run := func() []string {
		w := mustNew(t, config(60, false), seats)
		hashes := []string{w.StateHash()}
		for !w.Done() {
			hashes = append(hashes, playTick(t, w, seats))
		}
		return hashes
	}
	h1, h2 := run(), run()
	if !reflect.DeepEqual(h1, h2) {
		t.Fatalf("two runs gave different hashes")
	}
	seen := map[string]bool{}
	for i, h := range h1 {
		if seen[h] {
			t.Errorf("hash of tick %d repeats an earlier one", i)
		}
		seen[h] = true
	}
	// The hash covers the config too.
	c := config(60, false)
	c.Payoffs = map[string]float64{"T": 4}
	if mustNew(t, c, seats).StateHash() == h1[0] {
		t.Errorf("payoffs do not change the hash")
	}
}

func BenchmarkTournament16x200(b *testing.B) {
	seats := twinSeatsOf(strategyNames()...)
	for b.Loop() {
		w, err := New(config(200, true), seats)
		if err != nil {
			b.Fatal(err)
		}
		for !w.Done() {
			playTick(b, w, seats)
		}
	}
}
