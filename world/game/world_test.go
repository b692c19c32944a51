package game

import (
	"encoding/json"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/world"
)

// seatsOf makes one seat per group name (count = 1 blocks), sorted by id.
func seatsOf(groups ...string) []world.Seat {
	var s []world.Seat
	for _, g := range groups {
		s = append(s, world.Seat{ID: world.AgentID(g), Group: g, Index: 1})
	}
	sortSeats(s)
	return s
}

// twinSeatsOf makes two seats per group name (count = 2 blocks): G-1, G-2.
func twinSeatsOf(groups ...string) []world.Seat {
	var s []world.Seat
	for _, g := range groups {
		for i := 1; i <= 2; i++ {
			s = append(s, world.Seat{ID: world.AgentID(g + "-" + strconv.Itoa(i)), Group: g, Index: i})
		}
	}
	sortSeats(s)
	return s
}

func sortSeats(s []world.Seat) { sort.Slice(s, func(i, j int) bool { return s[i].ID < s[j].ID }) }

func config(rounds int, selfPlay bool) Config {
	c := *NewConfig()
	c.Rounds, c.SelfPlay = rounds, selfPlay
	return c
}

func mustNew(t *testing.T, c Config, seats []world.Seat) *World {
	t.Helper()
	w, err := New(c, seats)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return w
}

func act(id string, tick world.Tick, data string) world.Action {
	return world.Action{Agent: world.AgentID(id), Tick: tick, Data: json.RawMessage(data)}
}

func TestKindRegistered(t *testing.T) {
	k, ok := world.LookupKind(KindName)
	if !ok {
		t.Fatalf("kind %q not registered", KindName)
	}
	c, ok := k.NewConfig().(*Config)
	if !ok {
		t.Fatalf("NewConfig returned %T", k.NewConfig())
	}
	c.Rounds = 3
	w, err := k.New(c, seatsOf("a", "b"))
	if err != nil {
		t.Fatalf("New through kind: %v", err)
	}
	if _, ok := w.(world.Tabler); !ok {
		t.Errorf("world is not a Tabler")
	}
	if _, err := k.New(struct{}{}, seatsOf("a", "b")); err == nil {
		t.Errorf("New with a foreign config: no error")
	}
}

func TestNewSeatErrors(t *testing.T) {
	tests := []struct {
		name     string
		selfPlay bool
		seats    []world.Seat
		want     []string
	}{
		{"no agents", false, nil, []string{"no agents"}},
		{"one group without self_play", false, seatsOf("a"), []string{"at least 2 agent blocks", "got 1"}},
		{"count 2 without self_play", false, append(seatsOf("a"), twinSeatsOf("b")...),
			[]string{`group "b" has 2`, "count = 1"}},
		{"count 1 with self_play", true, append(twinSeatsOf("a"), seatsOf("x")...),
			[]string{`self_play needs count = 2 on every agent block; group "x" has 1`}},
		{"count 3 with self_play", true, []world.Seat{
			{ID: "a-1", Group: "a", Index: 1}, {ID: "a-2", Group: "a", Index: 2}, {ID: "a-3", Group: "a", Index: 3}},
			[]string{`group "a" has 3`}},
		{"every bad group reported", true, append(seatsOf("x"), seatsOf("y")...),
			[]string{`group "x" has 1`, `group "y" has 1`}},
		{"duplicate id", false, []world.Seat{{ID: "a", Group: "a", Index: 1}, {ID: "a", Group: "b", Index: 1}},
			[]string{`"a" appears twice`}},
		{"bad index", true, []world.Seat{{ID: "a-1", Group: "a", Index: 1}, {ID: "a-2", Group: "a", Index: 1}},
			[]string{`index 1`}},
		{"no group", false, []world.Seat{{ID: "a", Index: 1}, {ID: "b", Group: "b", Index: 1}},
			[]string{`"a" has no group`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(config(5, tt.selfPlay), tt.seats)
			if err == nil {
				t.Fatalf("New: no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	// Setting and seat problems are reported together.
	c := config(0, true)
	_, err := New(c, seatsOf("a", "b"))
	if err == nil || !strings.Contains(err.Error(), "rounds = 0") || !strings.Contains(err.Error(), `group "b" has 1`) {
		t.Errorf("New with bad rounds and seats: %v", err)
	}
	// One group with self_play is a valid (if dull) tournament.
	if _, err := New(config(5, true), twinSeatsOf("a")); err != nil {
		t.Errorf("one group with self_play: %v", err)
	}
}

func TestMatchesAndObservation(t *testing.T) {
	w := mustNew(t, config(4, true), twinSeatsOf("b", "a"))
	// Groups a, b: m01 = a-1 vs a-2, m02 = a-1 vs b-1, m03 = b-1 vs b-2.
	want := map[world.AgentID][]string{"a-1": {"m01", "m02"}, "a-2": {"m01"}, "b-1": {"m02", "m03"}, "b-2": {"m03"}}
	for id, ms := range want {
		obs := observe(t, w, id, 1)
		var got []string
		for _, m := range obs.Matches {
			got = append(got, m.Match)
			if m.You != "" || m.Them != "" {
				t.Errorf("%s round 1 %s: history %q/%q, want empty", id, m.Match, m.You, m.Them)
			}
		}
		if !reflect.DeepEqual(got, ms) || obs.Round != 1 || obs.Rounds != 4 {
			t.Errorf("%s observes %+v, want matches %v round 1 of 4", id, obs, ms)
		}
	}
	step(t, w, 1, act("a-1", 1, `{"moves":{"m01":"C","m02":"D"}}`), act("a-2", 1, `{"moves":{"m01":"D"}}`),
		act("b-1", 1, `{"moves":{"m02":"C","m03":"C"}}`), act("b-2", 1, `{"moves":{"m03":"D"}}`))
	step(t, w, 2, act("a-1", 2, `{"moves":{"m01":"D","m02":"D"}}`), act("a-2", 2, `{"moves":{"m01":"D"}}`),
		act("b-1", 2, `{"moves":{"m02":"D","m03":"C"}}`)) // b-2 sent nothing: default move C

	raw, ok, err := w.Observe("a-1", 3)
	if err != nil || !ok {
		t.Fatalf("Observe: %v %v", ok, err)
	}
	if g := `{"round":3,"rounds":4,"matches":[{"match":"m01","you":"CD","them":"DD"},{"match":"m02","you":"DD","them":"CD"}]}`; string(raw) != g {
		t.Errorf("observation\n got %s\nwant %s", raw, g)
	}
	checks := []struct {
		id               world.AgentID
		match, you, them string
	}{
		{"a-2", "m01", "DD", "CD"},
		{"b-1", "m02", "CD", "DD"},
		{"b-1", "m03", "CC", "DC"},
		{"b-2", "m03", "DC", "CC"},
	}
	for _, c := range checks {
		obs := observe(t, w, c.id, 3)
		found := false
		for _, m := range obs.Matches {
			if m.Match == c.match {
				found = true
				if m.You != c.you || m.Them != c.them {
					t.Errorf("%s %s: you %q them %q, want %q %q", c.id, c.match, m.You, m.Them, c.you, c.them)
				}
			}
		}
		if !found {
			t.Errorf("%s does not see %s", c.id, c.match)
		}
	}
	if _, _, err := w.Observe("a-1", 2); err == nil {
		t.Errorf("Observe of a past tick: no error")
	}
	if _, _, err := w.Observe("nobody", 3); err == nil {
		t.Errorf("Observe of an unknown agent: no error")
	}
	step(t, w, 3)
	step(t, w, 4)
	if !w.Done() {
		t.Fatalf("not done after 4 of 4 rounds")
	}
	if _, ok, err := w.Observe("a-1", 5); ok || err != nil {
		t.Errorf("Observe after the end: ok %v err %v, want false, nil", ok, err)
	}
	if _, err := w.Step(5, nil, nil); err == nil {
		t.Errorf("Step after the end: no error")
	}
}

func observe(t *testing.T, w *World, id world.AgentID, tick world.Tick) Observation {
	t.Helper()
	raw, ok, err := w.Observe(id, tick)
	if err != nil || !ok {
		t.Fatalf("Observe(%s, %d): ok %v, err %v", id, tick, ok, err)
	}
	var o Observation
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Fatalf("observation %s: %v", raw, err)
	}
	return o
}

func step(t *testing.T, w *World, tick world.Tick, actions ...world.Action) world.StepResult {
	t.Helper()
	for _, a := range actions {
		if err := w.Validate(a); err != nil {
			t.Fatalf("Validate(%s): %v", a.Data, err)
		}
	}
	res, err := w.Step(tick, actions, nil)
	if err != nil {
		t.Fatalf("Step(%d): %v", tick, err)
	}
	return res
}

func TestValidate(t *testing.T) {
	// Groups a, b, c: m01 a-b, m02 a-c, m03 b-c. Agent a plays m01 and m02.
	w := mustNew(t, config(3, false), seatsOf("a", "b", "c"))
	tests := []struct {
		name string
		a    world.Action
		want string // "" = valid
	}{
		{"valid", act("a", 1, `{"moves":{"m01":"C","m02":"D"}}`), ""},
		{"valid, spaces", act("a", 1, ` { "moves" : { "m02" : "D", "m01" : "D" } } `), ""},
		{"wrong tick", act("a", 2, `{"moves":{"m01":"C","m02":"D"}}`), "wrong tick 2"},
		{"tick 0", act("a", 0, `{"moves":{"m01":"C","m02":"D"}}`), "wrong tick 0"},
		{"unknown agent", act("zed", 1, `{"moves":{"m01":"C"}}`), `unknown agent "zed"`},
		{"malformed JSON", act("a", 1, `{"moves":{"m01":"C"`), "malformed action"},
		{"empty data", act("a", 1, ``), "malformed action"},
		{"not an object", act("a", 1, `["C","D"]`), "malformed action"},
		{"null", act("a", 1, `null`), `no "moves"`},
		{"no moves", act("a", 1, `{}`), `no "moves"`},
		{"unknown field", act("a", 1, `{"moves":{"m01":"C","m02":"D"},"say":"hi"}`), "malformed action"},
		{"trailing data", act("a", 1, `{"moves":{"m01":"C","m02":"D"}} {}`), "data after"},
		{"move not a string", act("a", 1, `{"moves":{"m01":1,"m02":"D"}}`), "malformed action"},
		{"unknown match", act("a", 1, `{"moves":{"m01":"C","m02":"D","m99":"C"}}`), `unknown match "m99" (you play m01, m02)`},
		{"someone else's match", act("a", 1, `{"moves":{"m01":"C","m02":"D","m03":"C"}}`), `unknown match "m03"`},
		{"missing match", act("a", 1, `{"moves":{"m01":"C"}}`), `missing move for match "m02"`},
		{"empty moves", act("a", 1, `{"moves":{}}`), `missing move for match "m01"`},
		{"lower case move", act("a", 1, `{"moves":{"m01":"c","m02":"D"}}`), `match "m01": bad move "c" (want "C" or "D")`},
		{"two letters", act("a", 1, `{"moves":{"m01":"CD","m02":"D"}}`), `bad move "CD"`},
		{"empty move", act("a", 1, `{"moves":{"m01":"","m02":"D"}}`), `bad move ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := w.Validate(tt.a)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.want != "" && err == nil:
				t.Errorf("Validate: no error, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("Validate: %q does not contain %q", err, tt.want)
			}
			if tt.want != "" && tt.a.Agent == "a" && tt.a.Tick == 1 {
				// Step refuses what Validate refuses, and changes nothing.
				before := w.StateHash()
				if _, err := w.Step(1, []world.Action{tt.a}, nil); err == nil {
					t.Errorf("Step accepted an invalid action")
				}
				if w.StateHash() != before {
					t.Errorf("a failed Step changed the state")
				}
			}
		})
	}
}

func TestStepErrorsLeaveStateUnchanged(t *testing.T) {
	w := mustNew(t, config(3, false), seatsOf("a", "b"))
	ok := `{"moves":{"m01":"D"}}`
	tests := []struct {
		name    string
		tick    world.Tick
		actions []world.Action
	}{
		{"wrong tick", 2, []world.Action{act("a", 2, ok)}},
		{"action tagged another tick", 1, []world.Action{act("a", 2, ok)}},
		{"unknown agent", 1, []world.Action{act("zed", 1, ok)}},
		{"two actions from one agent", 1, []world.Action{act("a", 1, ok), act("a", 1, ok)}},
		{"invalid after a valid one", 1, []world.Action{act("a", 1, ok), act("b", 1, `{"moves":{"m01":"X"}}`)}},
	}
	before := w.StateHash()
	for _, tt := range tests {
		if _, err := w.Step(tt.tick, tt.actions, nil); err == nil {
			t.Errorf("%s: Step: no error", tt.name)
		}
		if w.StateHash() != before {
			t.Fatalf("%s: a failed Step changed the state", tt.name)
		}
	}
}

func TestDefaultActionAndMetrics(t *testing.T) {
	c := config(2, false)
	c.DefaultMove = "D"
	w := mustNew(t, c, seatsOf("a", "b", "c"))
	for _, id := range []world.AgentID{"a", "b", "c"} {
		a := world.Action{Agent: id, Tick: 1, Data: w.DefaultAction(id, 1)}
		if err := w.Validate(a); err != nil {
			t.Errorf("DefaultAction(%s) = %s is invalid: %v", id, a.Data, err)
		}
	}
	if g, want := string(w.DefaultAction("a", 1)), `{"moves":{"m01":"D","m02":"D"}}`; g != want {
		t.Errorf("DefaultAction = %s, want %s", g, want)
	}
	if !reflect.DeepEqual(w.Metrics(), []string{"cooperation_rate", "mean_payoff"}) {
		t.Errorf("Metrics = %v", w.Metrics())
	}
	// a cooperates everywhere, b is missing (defaults to D), c cooperates.
	// m01 a-b: C/D -> 0, 5. m02 a-c: C/C -> 3, 3. m03 b-c: D/C -> 5, 0.
	res := step(t, w, 1, act("a", 1, `{"moves":{"m01":"C","m02":"C"}}`), act("c", 1, `{"moves":{"m02":"C","m03":"C"}}`))
	want := map[string]float64{"cooperation_rate": 4.0 / 6, "mean_payoff": 16.0 / 6}
	if !reflect.DeepEqual(res.Metrics, want) {
		t.Errorf("metrics %v, want %v", res.Metrics, want)
	}
	if len(res.Events) != 0 {
		t.Errorf("events before the end: %v", res.Events)
	}
	res = step(t, w, 2)
	if len(res.Events) != 3 || res.Events[0].Kind != "match_finished" || res.Events[0].Fields["match"] != "m01" {
		t.Errorf("last tick events: %+v", res.Events)
	}
	r := w.Result().(Result)
	if got := r.Matches[0].Sides; got[0].Score != 1 || got[1].Score != 6 || got[0].Moves["C"] != 1 || got[1].Moves["D"] != 2 {
		t.Errorf("m01 sides %+v", got)
	}
}
