package builtin

import (
	"testing"

	"github.com/terrarium-sim/terrarium/world/game"
)

func runNPlayer(t *testing.T, c *game.NPlayerConfig, seed uint64, program string, args []string, n int) game.NPlayerResult {
	t.Helper()
	s := seatsOf("p", n)
	w, err := game.NewNPlayer(*c, s)
	if err != nil {
		t.Fatal(err)
	}
	drive(t, w, s, seed, map[string]string{"p": program}, map[string][]string{"p": args}, c.Rounds, nil)
	return w.Result().(game.NPlayerResult)
}

// El Farol, 100 agents, threshold 60: mean attendance over weeks 100-1,000
// within 60 ± 3, standard deviation at least 3.
func TestElFarol(t *testing.T) {
	c := game.NewNPlayerConfig()
	c.Game, c.Rounds, c.MeasureFrom = game.ElFarol, 1000, 100
	for seed := uint64(1); seed <= seeds(1, 5); seed++ {
		r := runNPlayer(t, c, seed, "el_farol", nil, 100)
		t.Logf("seed %d: attendance mean %.2f sd %.2f, crowded %.2f of weeks", seed, r.MeanAttendance, r.SDAttendance, r.CrowdedShare)
		if r.MeanAttendance < 57 || r.MeanAttendance > 63 || r.SDAttendance < 3 {
			t.Errorf("seed %d: mean %.2f sd %.2f, want 60 ± 3 and sd >= 3", seed, r.MeanAttendance, r.SDAttendance)
		}
	}
}

// The minority game, N = 101, S = 2, 1,000 rounds, σ²/N over rounds
// 500-1,000: below 0.5 at m = 5, above 1 at m = 2, about 1 for random
// play; the mean over 5 seeds (single samples near the critical memory
// vary: 0.24-0.64 seen at m = 5). Unless full: m = 5, seed 1 only.
func TestMinority(t *testing.T) {
	c := game.NewNPlayerConfig()
	c.Game, c.Rounds, c.MeasureFrom = game.Minority, 1000, 500
	n := seeds(1, 5)
	cases := []struct {
		memory  string
		lo, hi  float64
		program string
	}{{"5", 0, 0.5, "minority"}, {"2", 1, 1e9, "minority"}, {"", 0.7, 1.3, "random_choice"}}
	if !full() {
		cases = cases[:1] // m = 2 and random play are checked with processes (classics_test.go)
	}
	for _, m := range cases {
		var sum float64
		for seed := uint64(1); seed <= n; seed++ {
			var args []string
			if m.memory != "" {
				args = []string{"memory=" + m.memory}
			}
			r := runNPlayer(t, c, seed, m.program, args, 101)
			t.Logf("%s memory %s seed %d: σ²/N %.3f", m.program, m.memory, seed, r.Volatility)
			sum += r.Volatility
		}
		if v := sum / float64(n); v < m.lo || v > m.hi {
			t.Errorf("%s memory %s: mean σ²/N over %d seeds %.3f, want %g-%g", m.program, m.memory, n, v, m.lo, m.hi)
		}
	}
}
