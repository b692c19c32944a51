package grid

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/terrarium-sim/terrarium/world"
)

// Kinds of animal in predator_prey (PredatorPreyObservation.Kind).
const (
	KindPrey     = "prey"
	KindPredator = "predator"
)

// PredatorPreyObservation is what a live animal sees each tick.
type PredatorPreyObservation struct {
	Tick      int      `json:"tick"`
	X         int      `json:"x"`
	Y         int      `json:"y"`
	Kind      string   `json:"kind"` // "prey" or "predator"
	Energy    float64  `json:"energy"`
	Moves     [][2]int `json:"moves"`     // the offsets it may move by (and [0,0])
	Last      [2]int   `json:"last"`      // its last move ([0,0] when newborn)
	Reproduce float64  `json:"reproduce"` // the scenario's chance per tick to reproduce
	Grass     bool     `json:"grass"`     // whether prey need grass (and lose energy)
}

// PredatorPreyAction moves, then (Eat) eats what is on the new cell (grass
// for prey, one prey for a predator), then (Reproduce) splits its energy
// with a newborn.
type PredatorPreyAction struct {
	Move      [2]int `json:"move"`
	Eat       bool   `json:"eat,omitempty"`
	Reproduce bool   `json:"reproduce,omitempty"`
}

type predPrey struct {
	prey, pred int // group indices
}

const layerGrass = "regrow" // ticks until the cell's grass has grown back; absent: grown

func (*predPrey) metrics() []string {
	return []string{"prey", "predators", "grass", "births", "deaths", "births_refused"}
}
func (*predPrey) watch() []string  { return []string{"prey", "predators"} }
func (*predPrey) alarms() []string { return []string{"births_refused"} }

func (pp *predPrey) seats(w *World) error {
	count := map[string]int{}
	for _, s := range w.seats {
		count[s.Group]++
	}
	var errs []error
	for _, g := range w.groups {
		if g != w.c.Prey && g != w.c.Predator {
			errs = append(errs, fmt.Errorf("predator_prey: agent block %q is neither prey = %q nor predator = %q", g, w.c.Prey, w.c.Predator))
		}
	}
	if count[w.c.Prey] < w.c.InitialPrey {
		errs = append(errs, settingErrorf("initial_prey", "initial_prey = %d, but agent block %q has only %d seats (its count is the pool of seats; make it larger)", w.c.InitialPrey, w.c.Prey, count[w.c.Prey]))
	}
	if count[w.c.Predator] < w.c.InitialPredators {
		errs = append(errs, settingErrorf("initial_predators", "initial_predators = %d, but agent block %q has only %d seats (its count is the pool of seats; make it larger)", w.c.InitialPredators, w.c.Predator, count[w.c.Predator]))
	}
	for i, g := range w.groups {
		switch g {
		case w.c.Prey:
			pp.prey = i
		case w.c.Predator:
			pp.pred = i
		}
	}
	return errors.Join(errs...)
}

func (pp *predPrey) setup(w *World, rng *rand.Rand) error {
	// The first initial_* seats of each pool (by index) start alive.
	for i, s := range w.seats {
		a := &w.ag[i]
		switch {
		case a.group == pp.prey && s.Index <= w.c.InitialPrey:
			a.active = true
			a.energy = float64(rng.IntN(max(1, 2*w.c.PreyGain)))
		case a.group == pp.pred && s.Index <= w.c.InitialPredators:
			a.active = true
			a.energy = float64(rng.IntN(max(1, 2*w.c.PredatorGain)))
		default:
			continue
		}
		a.pos = rng.IntN(w.cells())
	}
	if w.c.Grass {
		g := w.layer(layerGrass)
		for p := range w.cells() {
			if rng.IntN(2) == 0 {
				g[p] = float64(1 + rng.IntN(w.c.GrassRegrowth))
			}
		}
	}
	return nil
}

func (pp *predPrey) measure(w *World) map[string]float64 {
	var prey, pred int
	for _, a := range w.ag {
		if a.active {
			if a.group == pp.prey {
				prey++
			} else {
				pred++
			}
		}
	}
	grass := 0
	if w.c.Grass {
		grass = w.cells() - len(w.layers[layerGrass])
	}
	return map[string]float64{"prey": float64(prey), "predators": float64(pred), "grass": float64(grass),
		"births": 0, "deaths": 0, "births_refused": 0}
}

func (*predPrey) observed(w *World, i int) bool { return w.ag[i].active }

func (pp *predPrey) observe(w *World, i int) any {
	a := &w.ag[i]
	x, y := w.xy(a.pos)
	o := PredatorPreyObservation{Tick: w.tick + 1, X: x, Y: y, Kind: KindPrey, Energy: a.energy, Moves: w.moves(a.pos), Last: a.last,
		Reproduce: w.c.PreyReproduce, Grass: w.c.Grass}
	if a.group == pp.pred {
		o.Kind, o.Reproduce = KindPredator, w.c.PredatorReproduce
	}
	return o
}

func (*predPrey) parse(w *World, i int, data json.RawMessage) (any, error) {
	var a PredatorPreyAction
	if err := decodeStrict(data, &a, `{"move":[dx,dy],"eat":true,"reproduce":false}`); err != nil {
		return nil, err
	}
	if err := w.checkMove(w.ag[i].pos, a.Move); err != nil {
		return nil, err
	}
	return a, nil
}

func (*predPrey) defaultAction(*World, int) any { return PredatorPreyAction{} }

// step, in this order (every decision was made on the state at the start
// of the tick): all live animals move; predators (and, with grass, prey)
// pay one energy; on each cell with grown grass one random prey that wants
// to eat it does (+prey_gain); predators in a random order each eat one
// random live prey of their cell (+predator_gain); animals below zero
// energy die; those that asked to reproduce, in a random order, give half
// their energy to a newborn on a random neighbouring cell, in the lowest
// free seat of their pool (no free seat: no birth, counted); the grass
// regrows.
func (pp *predPrey) step(w *World, acts []any, rng *rand.Rand) (map[string]float64, []world.Event) {
	live := make([]int, 0, len(w.ag))
	for i := range w.ag {
		if w.ag[i].active {
			live = append(live, i)
		}
	}
	act := func(i int) PredatorPreyAction { a, _ := acts[i].(PredatorPreyAction); return a }
	for _, i := range live {
		a := &w.ag[i]
		a.pos = w.moveBy(a.pos, act(i).Move)
		a.last = act(i).Move
		if a.group == pp.pred || w.c.Grass {
			a.energy--
		}
	}
	w.rebuild()
	var deaths int
	if w.c.Grass {
		g := w.layer(layerGrass)
		for _, p := range sortedKeys(w.occ) {
			if _, brown := g[p]; brown {
				continue
			}
			var eaters []int
			for _, i := range w.occ[p] {
				if w.ag[i].group == pp.prey && act(i).Eat {
					eaters = append(eaters, i)
				}
			}
			if len(eaters) > 0 {
				w.ag[eaters[rng.IntN(len(eaters))]].energy += float64(w.c.PreyGain)
				g[p] = float64(w.c.GrassRegrowth)
			}
		}
	}
	var hunters []int
	for _, i := range live {
		if w.ag[i].group == pp.pred && act(i).Eat {
			hunters = append(hunters, i)
		}
	}
	rng.Shuffle(len(hunters), func(a, b int) { hunters[a], hunters[b] = hunters[b], hunters[a] })
	for _, h := range hunters {
		var prey []int
		for _, j := range w.occ[w.ag[h].pos] {
			if w.ag[j].group == pp.prey && w.ag[j].active {
				prey = append(prey, j)
			}
		}
		if len(prey) > 0 {
			w.ag[prey[rng.IntN(len(prey))]].active = false
			deaths++
			w.ag[h].energy += float64(w.c.PredatorGain)
		}
	}
	for _, i := range live {
		if a := &w.ag[i]; a.active && a.energy < 0 {
			a.active = false
			deaths++
		}
	}
	var parents []int
	for _, i := range live {
		if w.ag[i].active && act(i).Reproduce {
			parents = append(parents, i)
		}
	}
	rng.Shuffle(len(parents), func(a, b int) { parents[a], parents[b] = parents[b], parents[a] })
	var births, refused int
	for _, i := range parents {
		child := w.freeSeat(w.ag[i].group)
		if child < 0 {
			refused++
			continue
		}
		half := w.ag[i].energy / 2
		w.ag[i].energy = half
		nb := w.neighbours(w.ag[i].pos, nil)
		pos := w.ag[i].pos
		if len(nb) > 0 {
			pos = nb[rng.IntN(len(nb))]
		}
		w.ag[child] = agent{group: w.ag[i].group, active: true, pos: pos, energy: half}
		births++
	}
	if w.c.Grass {
		g := w.layer(layerGrass)
		for _, p := range sortedKeys(g) {
			if g[p]--; g[p] <= 0 {
				delete(g, p)
			}
		}
	}
	return map[string]float64{"births": float64(births), "deaths": float64(deaths), "births_refused": float64(refused)}, nil
}

// freeSeat returns the inactive seat of group g with the lowest index, or -1.
func (w *World) freeSeat(g int) int {
	best := -1
	for i := range w.ag {
		if w.ag[i].group == g && !w.ag[i].active && (best < 0 || w.seats[i].Index < w.seats[best].Index) {
			best = i
		}
	}
	return best
}
