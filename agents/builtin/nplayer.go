package builtin

import (
	"context"
	"math"
	"math/rand/v2"

	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/world/game"
)

// The nplayer_game world's reference agents (world/game).
func init() {
	registerMaker("el_farol", elFarolAgent)
	registerMaker("minority", minorityAgent)
	registerMaker("random_choice", randomChoiceAgent)
}

// randomChoiceAgent plays the game's first move ("G" or "A") with
// probability p (argument p=, default 0.5), else the second.
func randomChoiceAgent(seed uint64, p params) (sdk.Handler, error) {
	prob, err := p.float("p", 0.5)
	if err != nil {
		return nil, err
	}
	return func(_ context.Context, obs sdk.Observation) (any, error) {
		o, err := decode[game.NPlayerObservation](obs)
		if err != nil {
			return nil, err
		}
		return game.NPlayerAction{Move: firstOrSecond(o.Game, tickRNG(seed, uint64(obs.Tick)).Float64() < prob)}, nil
	}, nil
}

func firstOrSecond(g string, first bool) string {
	m := "GS"
	if g == game.Minority {
		m = "AB"
	}
	if first {
		return m[:1]
	}
	return m[1:]
}

// A predictor forecasts this week's attendance from the past weeks (h,
// oldest first, at least predictorNeed long).
type predictor func(h []int, n int) float64

const predictorNeed = 10

// elFarolFamily is the pool of Arthur's (1994) predictor kinds an agent
// draws from: the same as k weeks ago, the mean of the last k weeks, the
// mirror image of last week, the trend of the last k weeks.
func elFarolFamily() []predictor {
	var f []predictor
	for k := 1; k <= 8; k++ {
		f = append(f, func(h []int, _ int) float64 { return float64(h[len(h)-k]) })
	}
	for k := 2; k <= 10; k++ {
		f = append(f, func(h []int, _ int) float64 {
			s := 0
			for _, a := range h[len(h)-k:] {
				s += a
			}
			return float64(s) / float64(k)
		})
	}
	f = append(f, func(h []int, n int) float64 { return float64(n - h[len(h)-1]) })
	for k := 3; k <= 8; k++ {
		f = append(f, func(h []int, n int) float64 {
			// least-squares line through the last k weeks, one week on
			var sx, sy, sxx, sxy float64
			for i, a := range h[len(h)-k:] {
				x, y := float64(i), float64(a)
				sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
			}
			kf := float64(k)
			slope := (kf*sxy - sx*sy) / (kf*sxx - sx*sx)
			v := sy/kf + slope*(kf-(sx/kf))
			return math.Max(0, math.Min(float64(n), v))
		})
	}
	return f
}

// elFarolAgent holds k predictors (argument predictors=, default 6) drawn
// at random from Arthur's family, scores each by its discounted error over
// the weeks it can see, and goes when the best one forecasts at most the
// threshold. Until enough weeks are known it goes with probability
// threshold/players. It keeps no state: a restarted agent plays on alike.
func elFarolAgent(seed uint64, p params) (sdk.Handler, error) {
	k, err := p.int("predictors", 6, 1, 100)
	if err != nil {
		return nil, err
	}
	fam := elFarolFamily()
	pick := rand.New(rand.NewPCG(seed, 0xe1fa201))
	mine := make([]predictor, k)
	for i := range mine {
		mine[i] = fam[pick.IntN(len(fam))]
	}
	return func(_ context.Context, obs sdk.Observation) (any, error) {
		o, err := decode[game.NPlayerObservation](obs)
		if err != nil {
			return nil, err
		}
		h := o.History
		if len(h) <= predictorNeed {
			go_ := tickRNG(seed, uint64(obs.Tick)).Float64()*float64(o.Players) < float64(o.Threshold)
			return game.NPlayerAction{Move: firstOrSecond(o.Game, go_)}, nil
		}
		best, bestErr := 0, math.Inf(1)
		for i, f := range mine {
			var e float64
			for t := predictorNeed; t < len(h); t++ {
				e = 0.8*e + math.Abs(f(h[:t], o.Players)-float64(h[t]))
			}
			if e < bestErr {
				best, bestErr = i, e
			}
		}
		return game.NPlayerAction{Move: firstOrSecond(o.Game, mine[best](h, o.Players) <= float64(o.Threshold))}, nil
	}, nil
}

// minorityAgent is the standard minority-game player (Challet and Zhang
// 1997): s strategies (argument strategies=, default 2), each a random
// table from the last m winning sides (argument memory=, default 3) to a
// side; every round it scores each strategy a point when it would have
// chosen the minority, and plays its best (ties at random). The scores are
// the agent's state: a restarted agent starts from zero. It plays at
// random until m rounds have been played.
func minorityAgent(seed uint64, p params) (sdk.Handler, error) {
	s, err := p.int("strategies", 2, 1, 64)
	if err != nil {
		return nil, err
	}
	m, err := p.int("memory", 3, 1, 16)
	if err != nil {
		return nil, err
	}
	pick := rand.New(rand.NewPCG(seed, 0x3140))
	tables := make([][]bool, s) // true: play A
	for i := range tables {
		tables[i] = make([]bool, 1<<m)
		for j := range tables[i] {
			tables[i][j] = pick.IntN(2) == 0
		}
	}
	scores := make([]int, s)
	scored := 0 // rounds scored so far
	return func(_ context.Context, obs sdk.Observation) (any, error) {
		o, err := decode[game.NPlayerObservation](obs)
		if err != nil {
			return nil, err
		}
		h := o.History
		played := o.Round - 1
		aWon := func(a int) bool { return 2*a < o.Players }
		// key is the index of the m outcomes before history position end.
		key := func(end int) int {
			k := 0
			for _, a := range h[end-m : end] {
				k <<= 1
				if aWon(a) {
					k |= 1
				}
			}
			return k
		}
		// Score every round not yet scored that the window still shows.
		for r := max(scored, played-len(h)+m) + 1; r <= played; r++ {
			end := len(h) - (played - r) - 1 // h[end] is round r
			if end < m {
				continue
			}
			won := aWon(h[end])
			kk := key(end)
			for i := range tables {
				if tables[i][kk] == won {
					scores[i]++
				}
			}
		}
		scored = played
		rng := tickRNG(seed, uint64(obs.Tick))
		if len(h) < m {
			return game.NPlayerAction{Move: firstOrSecond(o.Game, rng.IntN(2) == 0)}, nil
		}
		best, ties := -1, 0
		for i, sc := range scores {
			switch {
			case best < 0 || sc > scores[best]:
				best, ties = i, 1
			case sc == scores[best]:
				ties++
				if rng.IntN(ties) == 0 {
					best = i
				}
			}
		}
		return game.NPlayerAction{Move: firstOrSecond(o.Game, tables[best][key(len(h))])}, nil
	}, nil
}
