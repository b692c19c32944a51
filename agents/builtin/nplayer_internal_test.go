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

func TestMinorityFull(t *testing.T) {
	c := game.NewNPlayerConfig()
	c.Game, c.Rounds, c.MeasureFrom = game.Minority, 1000, 200
	for _, m := range []string{"2", "5"} {
		for seed := uint64(1); seed <= 2; seed++ {
			r := runNPlayer(t, c, seed, "minority", []string{"memory=" + m}, 101)
			t.Logf("m=%s seed %d: volatility %.3f mean %.2f", m, seed, r.Volatility, r.MeanAttendance)
		}
	}
	r := runNPlayer(t, c, 1, "random_choice", nil, 101)
	t.Logf("random: volatility %.3f", r.Volatility)
}
