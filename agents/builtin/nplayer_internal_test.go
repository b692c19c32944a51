package builtin

import (
	"math/rand/v2"
	"testing"

	"github.com/terrarium-sim/terrarium/world/game"
)

// runNPlayer drives n agents of group (the agent block's name in the
// shipped scenario, so the ids, and with them the agents' seeds, are the
// scenario's) with program.
func runNPlayer(t *testing.T, c *game.NPlayerConfig, seed uint64, group, program string, args []string, n int) game.NPlayerResult {
	t.Helper()
	s := seatsOf(group, n)
	w, err := game.NewNPlayer(*c, s)
	if err != nil {
		t.Fatal(err)
	}
	drive(t, w, s, seed, map[string]string{group: program}, map[string][]string{group: args}, c.Rounds, nil)
	return w.Result().(game.NPlayerResult)
}

// El Farol, 100 agents (patron-1 .. patron-100, as scenarios/el_farol.hcl),
// threshold 60: mean attendance over weeks 100-1,000 within 60 ± 3,
// standard deviation at least 3.
func TestElFarol(t *testing.T) {
	c := game.NewNPlayerConfig()
	c.Game, c.Rounds, c.MeasureFrom = game.ElFarol, 1000, 100
	r := runNPlayer(t, c, 1, "patron", "el_farol", []string{"predictors=6"}, 100)
	t.Logf("seed 1: attendance mean %.2f sd %.2f, crowded %.2f of weeks", r.MeanAttendance, r.SDAttendance, r.CrowdedShare)
	if r.MeanAttendance < 57 || r.MeanAttendance > 63 || r.SDAttendance < 3 {
		t.Errorf("seed 1: mean %.2f sd %.2f, want 60 ± 3 and sd >= 3", r.MeanAttendance, r.SDAttendance)
	}
}

// referenceMinority is an independent implementation of Challet and
// Zhang's minority game, written from the paper rather than from the
// builtin agent: n players, s = 2 random strategy tables over the last m
// winning sides, a virtual point to every strategy that predicted the
// minority, each player on its best strategy with ties broken by a coin.
// It returns σ²/N of #A - #B over rounds from..to.
func referenceMinority(seed uint64, n, m, from, to int) float64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	p := 1 << m
	strat := make([][2][]int, n)
	score := make([][2]int, n)
	for i := range strat {
		for s := range strat[i] {
			strat[i][s] = make([]int, p)
			for k := range strat[i][s] {
				strat[i][s][k] = 2*rng.IntN(2) - 1
			}
		}
	}
	mu := rng.IntN(p)
	var sum, sumSq float64
	for t := 1; t <= to; t++ {
		a := 0
		for i := range strat {
			b := 0
			if score[i][1] > score[i][0] || (score[i][1] == score[i][0] && rng.IntN(2) == 0) {
				b = 1
			}
			a += strat[i][b][mu]
		}
		win := 1 // the minority side
		if a > 0 {
			win = -1
		}
		for i := range strat {
			for s := range strat[i] {
				if strat[i][s][mu] == win {
					score[i][s]++
				}
			}
		}
		mu = (mu<<1 | (win+1)/2) & (p - 1)
		if t >= from {
			sum += float64(a)
			sumSq += float64(a * a)
		}
	}
	k := float64(to - from + 1)
	return (sumSq/k - (sum/k)*(sum/k)) / float64(n)
}

// The minority game's σ²/N at N = 101, S = 2, m = 5 (α = 2^5/101 ≈ 0.32,
// just below the critical α ≈ 0.34) depends much on the sample (the
// strategies drawn): in the independent implementation above, measured
// over rounds 1,000-3,000 as scenarios/minority.hcl does, 20 samples range
// from below 0.3 to above 0.6, so "below 0.5" holds for the mean over
// samples, not for every run. At m = 2 every sample is far above 1.
func TestMinorityReference(t *testing.T) {
	lo, hi, sum := 1e9, 0.0, 0.0
	for seed := uint64(1); seed <= 20; seed++ {
		v := referenceMinority(seed, 101, 5, 1000, 3000)
		lo, hi, sum = min(lo, v), max(hi, v), sum+v
		if v2 := referenceMinority(seed, 101, 2, 1000, 3000); v2 < 2 {
			t.Errorf("m = 2 seed %d: σ²/N %.3f, want far above 1", seed, v2)
		}
	}
	t.Logf("m = 5, 20 samples: σ²/N %.3f-%.3f, mean %.3f", lo, hi, sum/20)
	if lo > 0.3 || hi < 0.6 {
		t.Errorf("m = 5: σ²/N over 20 samples %.3f-%.3f, want a spread from below 0.3 to above 0.6", lo, hi)
	}
}
