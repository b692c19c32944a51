package builtin

import (
	"testing"

	"github.com/terrarium-sim/terrarium/world"

	"github.com/terrarium-sim/terrarium/world/grid"
)

func newGrid(t testing.TB, c *grid.Config, seats ...any) (*grid.World, []world.Seat) {
	t.Helper()
	s := seatsOf(seats...)
	w, err := grid.New(*c, s)
	if err != nil {
		t.Fatal(err)
	}
	return w, s
}

// The classic grid models driven in-process with the agents' own handlers
// (quick checks of the agent code; the checks through the host, with
// processes and pools, are the root package's classics_test.go, and the
// full-length, many-seed ones run through terrarium sweep:
// docs/scenarios.md).

// Boltzmann wealth, 100 agents on a 10x10 torus: wealth conserved and never
// negative every tick; the Gini coefficient, mean over ticks 100-300 and
// over seeds 1-3, within 0.58-0.72.
func TestBoltzmannWealth(t *testing.T) {
	var sum float64
	var n int
	for seed := uint64(1); seed <= 3; seed++ {
		c := grid.NewConfig()
		c.Rules, c.Width, c.Height = grid.RulesBoltzmann, 10, 10
		w, s := newGrid(t, c, "agent", 100)
		var g float64
		drive(t, w, s, seed, map[string]string{"agent": "boltzmann"}, nil, 300, func(tick int, m map[string]float64) {
			if m["total_wealth"] != 100 || m["min_wealth"] < 0 {
				t.Fatalf("seed %d tick %d: total %v min %v", seed, tick, m["total_wealth"], m["min_wealth"])
			}
			if tick >= 100 {
				g += m["gini"]
			}
		})
		t.Logf("seed %d: gini mean over ticks 100-300 %.3f", seed, g/201)
		sum += g / 201
		n++
	}
	if m := sum / float64(n); m < 0.58 || m > 0.72 {
		t.Errorf("gini mean over %d seeds = %.3f, want 0.58-0.72", n, m)
	} else {
		t.Logf("gini mean over %d seeds = %.3f", n, m)
	}
}

// Schelling on a 25x25 torus at density 0.95 (the scenario: 51x51), one
// seed, 60 ticks: the share of like neighbours starts near 0.5 and ends at
// 0.70 or more, everyone content by tick 60.
func TestSchelling(t *testing.T) {
	const side, half, horizon = 25, 297, 60 // 594 agents on 625 cells: 0.95
	c := grid.NewConfig()
	c.Rules, c.Width, c.Height = grid.RulesSchelling, side, side
	w, s := newGrid(t, c, "blue", half, "red", half)
	content := 0
	var last float64
	drive(t, w, s, 1, map[string]string{"blue": "schelling", "red": "schelling"}, nil, horizon, func(tick int, m map[string]float64) {
		if m["unhappy"] == 0 && content == 0 {
			content = tick
		}
		last = m["share_alike"]
	})
	r := w.Result().(grid.Result)
	t.Logf("share alike %.3f -> %.3f, everyone content from tick %d", r.Initial["share_alike"], last, content)
	if i := r.Initial["share_alike"]; i < 0.45 || i > 0.55 {
		t.Errorf("initial share alike %.3f, want near 0.5", i)
	}
	if last < 0.70 {
		t.Errorf("final share alike %.3f, want >= 0.70", last)
	}
	if content == 0 {
		t.Errorf("some agent still unhappy at tick %d", horizon)
	}
}
