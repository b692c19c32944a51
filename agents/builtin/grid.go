package builtin

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/world/grid"
)

// The grid world's reference agents (world/grid). All but life draw their
// random choices from tickRNG, so they are pure functions of the seed, the
// tick and the observation.
func init() {
	registerMaker("schelling", schellingAgent)
	registerMaker("boltzmann", boltzmannAgent)
	registerMaker("life", lifeAgent)
	registerMaker("animal", animalAgent)
}

func decode[T any](obs sdk.Observation) (T, error) {
	var v T
	if err := json.Unmarshal(obs.Data, &v); err != nil {
		return v, fmt.Errorf("decode observation of tick %d: %w", obs.Tick, err)
	}
	return v, nil
}

// schellingAgent asks to move when the share of like neighbours is below
// its threshold (argument threshold=, default: the world's).
func schellingAgent(_ uint64, p params) (sdk.Handler, error) {
	own, err := p.float("threshold", -1)
	if err != nil {
		return nil, err
	}
	return func(_ context.Context, obs sdk.Observation) (any, error) {
		o, err := decode[grid.SchellingObservation](obs)
		if err != nil {
			return nil, err
		}
		want := o.Threshold
		if own >= 0 {
			want = own
		}
		n := o.Alike + o.Other
		return grid.SchellingAction{Move: n > 0 && float64(o.Alike) < want*float64(n)}, nil
	}, nil
}

// boltzmannAgent moves to a random neighbouring cell and gives one unit to
// a random agent of its cell. As in Mesa's original model the draw is over
// everyone on the cell, itself included (a gift to itself is no gift); it
// gives whatever its wealth at the start of the tick, since the world makes
// a gift only if the giver has a unit when it is applied.
func boltzmannAgent(seed uint64, _ params) (sdk.Handler, error) {
	return func(_ context.Context, obs sdk.Observation) (any, error) {
		o, err := decode[grid.BoltzmannObservation](obs)
		if err != nil {
			return nil, err
		}
		rng := tickRNG(seed, uint64(obs.Tick))
		var a grid.BoltzmannAction
		if len(o.Moves) > 0 {
			a.Move = o.Moves[rng.IntN(len(o.Moves))]
		}
		if n := len(o.Cellmates); n > 0 {
			if k := rng.IntN(n + 1); k < n {
				a.Give = o.Cellmates[k]
			}
		}
		return a, nil
	}, nil
}

// lifeAgent computes its block's next generation with the B3/S23 rule.
func lifeAgent(_ uint64, _ params) (sdk.Handler, error) {
	return func(_ context.Context, obs sdk.Observation) (any, error) {
		o, err := decode[grid.LifeObservation](obs)
		if err != nil {
			return nil, err
		}
		return lifeNext(o), nil
	}, nil
}

// lifeNext is the B3/S23 rule over one block: born with exactly 3 live
// neighbours, survives with 2 or 3.
func lifeNext(o grid.LifeObservation) grid.LifeAction {
	alive := make(map[[2]int]bool, len(o.Alive))
	for _, c := range o.Alive {
		alive[c] = true
	}
	offs := [][2]int{{-1, -1}, {0, -1}, {1, -1}, {-1, 0}, {1, 0}, {-1, 1}, {0, 1}, {1, 1}}
	if o.Neighbourhood == grid.VonNeumann {
		offs = [][2]int{{0, -1}, {-1, 0}, {1, 0}, {0, 1}}
	}
	a := grid.LifeAction{Alive: [][2]int{}}
	// Only cells next to a live one can be alive next.
	cand := map[[2]int]bool{}
	for _, c := range o.Alive {
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				x, y := c[0]+dx, c[1]+dy
				if x >= 0 && y >= 0 && x < o.W && y < o.H {
					cand[[2]int{x, y}] = true
				}
			}
		}
	}
	for c := range cand {
		n := 0
		for _, d := range offs {
			if alive[[2]int{c[0] + d[0], c[1] + d[1]}] {
				n++
			}
		}
		if n == 3 || (n == 2 && alive[c]) {
			a.Alive = append(a.Alive, c)
		}
	}
	slices.SortFunc(a.Alive, func(p, q [2]int) int {
		if p[1] != q[1] {
			return p[1] - q[1]
		}
		return p[0] - q[0]
	})
	return a
}

// animalAgent is a sheep or a wolf (predator_prey): it walks on in the
// direction of its last move, turning 45 degrees left or right with
// probability 0.15 each (NetLogo's "rt random 50 lt random 50 fd 1" on
// the eight directions of the grid; a random direction when it has none or
// cannot go on), always eats, and reproduces with the world's chance.
func animalAgent(seed uint64, _ params) (sdk.Handler, error) {
	return func(_ context.Context, obs sdk.Observation) (any, error) {
		o, err := decode[grid.PredatorPreyObservation](obs)
		if err != nil {
			return nil, err
		}
		rng := tickRNG(seed, uint64(obs.Tick))
		a := grid.PredatorPreyAction{Eat: true}
		a.Move = walkOn(o.Last, o.Moves, rng)
		a.Reproduce = rng.Float64() < o.Reproduce
		return a, nil
	}, nil
}

// compass is the eight directions in turning order.
var compass = [8][2]int{{1, 0}, {1, 1}, {0, 1}, {-1, 1}, {-1, 0}, {-1, -1}, {0, -1}, {1, -1}}

// walkOn turns last by 45 degrees with probability 0.15 each way and
// returns it if it is one of moves; otherwise a random one of moves.
func walkOn(last [2]int, moves [][2]int, rng *rand.Rand) [2]int {
	if len(moves) == 0 {
		return [2]int{}
	}
	k := slices.Index(compass[:], last)
	r := rng.Float64()
	if k >= 0 {
		switch {
		case r < 0.15:
			k = (k + 1) % 8
		case r < 0.30:
			k = (k + 7) % 8
		}
		if slices.Contains(moves, compass[k]) {
			return compass[k]
		}
	}
	return moves[rng.IntN(len(moves))]
}
