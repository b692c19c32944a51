package grid

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/terrarium-sim/terrarium/world"
)

// A Schelling observation (encoded without reflection, its neighbour
// counts kept from the last measure) is what json.Marshal gives for the
// observation computed afresh, tick after tick, and after Restore.
func TestSchellingObservationAsMarshal(t *testing.T) {
	for k, threshold := range []float64{0.3, 0, 1, 1.0 / 3, 5e-7} {
		c := NewConfig()
		c.Rules, c.Width, c.Height, c.Threshold = RulesSchelling, 9, 7, threshold
		switch k { // a torus too narrow for the short path, a bounded grid
		case 1:
			c.Width = 2
		case 2:
			c.Topology = Bounded
		}
		var seats []world.Seat
		for i := range c.Width * c.Height * 6 / 10 {
			g := []string{"red", "blue", `gr"een`}[i%3]
			seats = append(seats, world.Seat{ID: world.AgentID(fmt.Sprintf("a%02d", i)), Group: g, Index: i/3 + 1})
		}
		w, err := New(*c, seats)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Seed(11); err != nil {
			t.Fatal(err)
		}
		if w.cellAg == nil {
			t.Fatal("no dense index on a small grid")
		}
		r := rand.New(rand.NewPCG(1, 2))
		check := func(tick world.Tick) {
			t.Helper()
			for i, s := range seats {
				got, ok, err := w.Observe(s.ID, tick)
				if err != nil || !ok {
					t.Fatalf("observe %s: %v %v", s.ID, ok, err)
				}
				same, other := alikeByMap(w, i)
				x, y := w.xy(w.ag[i].pos)
				want, _ := json.Marshal(SchellingObservation{Tick: int(tick), X: x, Y: y, Group: s.Group, Alike: same, Other: other, Threshold: threshold})
				if string(got) != string(want) {
					t.Fatalf("tick %d, %s: observation %s, want %s", tick, s.ID, got, want)
				}
			}
		}
		for tick := world.Tick(1); tick <= 15; tick++ {
			check(tick)
			if tick == 8 {
				snap, err := w.Snapshot()
				if err != nil {
					t.Fatal(err)
				}
				w2, _ := New(*c, seats)
				if err := w2.Restore(snap); err != nil {
					t.Fatal(err)
				}
				w = w2
				check(tick)
			}
			var acts []world.Action
			for _, s := range seats {
				d := json.RawMessage(`{"move":false}`)
				switch r.IntN(4) {
				case 0:
					d = json.RawMessage(`{"move":true}`)
				case 1:
					d = json.RawMessage(`{ "move" : true }`)
				}
				if err := w.Validate(world.Action{Agent: s.ID, Tick: tick, Data: d}); err != nil {
					t.Fatal(err)
				}
				acts = append(acts, world.Action{Agent: s.ID, Tick: tick, Data: d})
			}
			if _, err := w.Step(tick, acts, world.TickRNG(3, tick)); err != nil {
				t.Fatal(err)
			}
		}
		for _, bad := range []string{`{"move":1}`, `{"move":false,"x":1}`, `{"move":false}{}`, `{"Move":true}`} {
			if _, err := (schelling{}).parse(w, 0, json.RawMessage(bad)); err == nil && bad != `{"Move":true}` {
				t.Errorf("action %s accepted", bad)
			}
		}
	}
}

// The snapshot (and so the state hash) is json.Marshal's encoding of the
// state, for every rule set, tick after tick.
func TestSnapshotAsMarshal(t *testing.T) {
	for _, rules := range []string{RulesSchelling, RulesBoltzmann, RulesPredatorPrey} {
		c := NewConfig()
		c.Rules, c.Width, c.Height = rules, 10, 10
		var seats []world.Seat
		groups := []string{"a", "b"}
		if rules == RulesPredatorPrey {
			groups = []string{c.Prey, c.Predator}
			c.InitialPrey, c.InitialPredators = 20, 5
		}
		for i := range 40 {
			seats = append(seats, world.Seat{ID: world.AgentID(fmt.Sprintf("a%02d", i)), Group: groups[i%2], Index: i/2 + 1})
		}
		w, err := New(*c, seats)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Seed(5); err != nil {
			t.Fatal(err)
		}
		for tick := world.Tick(1); tick <= 10; tick++ {
			got, err := w.Snapshot()
			want, merr := json.Marshal(w.snapshot())
			if err != nil || merr != nil || string(got) != string(want) {
				t.Fatalf("%s tick %d: snapshot\n%s\nwant\n%s (%v, %v)", rules, tick, got, want, err, merr)
			}
			var acts []world.Action
			for _, s := range seats {
				if o, ok, _ := w.Observe(s.ID, tick); ok {
					_ = o
					acts = append(acts, world.Action{Agent: s.ID, Tick: tick, Data: json.RawMessage(w.DefaultAction(s.ID, tick))})
				}
			}
			if _, err := w.Step(tick, acts, world.TickRNG(3, tick)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// alikeByMap counts agent i's neighbours through the occupancy map (what
// alike does without the dense index).
func alikeByMap(w *World, i int) (same, other int) {
	for _, p := range w.neighbours(w.ag[i].pos, nil) {
		for _, j := range w.occ[p] {
			if w.ag[j].group == w.ag[i].group {
				same++
			} else {
				other++
			}
		}
	}
	return same, other
}
