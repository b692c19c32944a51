package builtin

import (
	"os"
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

// full reports whether the full-size checks were asked for
// (TERRARIUM_CLASSICS_FULL=1); otherwise the tests run fewer seeds.
func full() bool { return os.Getenv("TERRARIUM_CLASSICS_FULL") == "1" }

func seeds(short, long uint64) uint64 {
	if full() {
		return long
	}
	return short
}

// Boltzmann wealth, 100 agents on a 10x10 torus: wealth conserved and never
// negative every tick; the Gini coefficient, mean over ticks 100-300 and
// over the seeds, within 0.58-0.72.
func TestBoltzmannWealth(t *testing.T) {
	var sum float64
	var n int
	for seed := uint64(1); seed <= seeds(3, 10); seed++ {
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

// Schelling, 51x51 torus at density 0.95, 5 seeds (unless full: 25x25,
// one seed, 60 ticks): the share of like neighbours starts near 0.5 and
// ends at 0.70 or more, everyone content by tick 200 (60), in every seed.
func TestSchelling(t *testing.T) {
	side, half, horizon := 25, 297, 60 // 594 agents on 625 cells: 0.95
	if full() {
		side, half, horizon = 51, 1235, 200 // 2470 agents on 2601 cells
	}
	for seed := uint64(1); seed <= seeds(1, 5); seed++ {
		c := grid.NewConfig()
		c.Rules, c.Width, c.Height = grid.RulesSchelling, side, side
		w, s := newGrid(t, c, "blue", half, "red", half)
		content := 0
		var last float64
		drive(t, w, s, seed, map[string]string{"blue": "schelling", "red": "schelling"}, nil, horizon, func(tick int, m map[string]float64) {
			if m["unhappy"] == 0 && content == 0 {
				content = tick
			}
			last = m["share_alike"]
		})
		r := w.Result().(grid.Result)
		t.Logf("seed %d: share alike %.3f -> %.3f, everyone content from tick %d", seed, r.Initial["share_alike"], last, content)
		if i := r.Initial["share_alike"]; i < 0.45 || i > 0.55 {
			t.Errorf("seed %d: initial share alike %.3f, want near 0.5", seed, i)
		}
		if last < 0.70 {
			t.Errorf("seed %d: final share alike %.3f, want >= 0.70", seed, last)
		}
		if content == 0 {
			t.Errorf("seed %d: some agent still unhappy at tick %d", seed, horizon)
		}
	}
}

// Predator-prey on Wilensky's 51x51 torus (NetLogo's default world), 100
// sheep and 50 wolves: with grass both species survive to tick 1,000 in at
// least 8 of 10 seeds; without grass one species dies out in most seeds.
// Only with TERRARIUM_CLASSICS_FULL=1 (several minutes: without grass the
// sheep fill their pool of 1,000 seats).
func TestPredatorPrey(t *testing.T) {
	if !full() {
		t.Skip("full-size predator-prey: set TERRARIUM_CLASSICS_FULL=1")
	}
	for _, grass := range []bool{true, false} {
		both := 0
		for seed := uint64(1); seed <= 10; seed++ {
			c := grid.NewConfig()
			c.Rules, c.Width, c.Height, c.Grass = grid.RulesPredatorPrey, 51, 51, grass
			w, s := newGrid(t, c, "sheep", 1000, "wolves", 500)
			drive(t, w, s, seed, map[string]string{"sheep": "animal", "wolves": "animal"}, nil, 1000, nil)
			r := w.Result().(grid.Result)
			if len(r.FirstZero) == 0 {
				both++
			}
			t.Logf("grass %v seed %d: extinct at %v; mean sheep %.0f wolves %.0f; births refused %v", grass, seed, r.FirstZero, r.Metrics["prey"].Mean, r.Metrics["predators"].Mean, r.Metrics["births_refused"].Sum)
		}
		if grass && both < 8 {
			t.Errorf("with grass both survived in %d of 10 seeds, want >= 8", both)
		}
		if !grass && both > 4 {
			t.Errorf("without grass both survived in %d of 10 seeds, want one dying out in most", both)
		}
	}
}
