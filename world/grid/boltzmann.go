package grid

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/terrarium-sim/terrarium/world"
)

// BoltzmannObservation is what a Boltzmann wealth agent sees each tick.
type BoltzmannObservation struct {
	Tick      int             `json:"tick"`
	X         int             `json:"x"`
	Y         int             `json:"y"`
	Wealth    float64         `json:"wealth"`
	Moves     [][2]int        `json:"moves"`     // the offsets it may move by (and [0,0])
	Cellmates []world.AgentID `json:"cellmates"` // the other agents on its cell, sorted
}

// BoltzmannAction moves by an offered offset and optionally gives one unit
// to a cellmate: if it has a unit when its gift is applied (gifts are
// applied one at a time in a random order, so a unit received this tick can
// be passed on, as in the sequential original; nobody goes below 0).
type BoltzmannAction struct {
	Move [2]int        `json:"move"`
	Give world.AgentID `json:"give,omitempty"`
}

type boltzmann struct{}

func (boltzmann) metrics() []string {
	return []string{"gini", "total_wealth", "min_wealth", "max_wealth", "transfers"}
}
func (boltzmann) watch() []string    { return nil }
func (boltzmann) seats(*World) error { return nil }

func (boltzmann) setup(w *World, rng *rand.Rand) error {
	for _, i := range allAgents(w) {
		w.ag[i].pos = rng.IntN(w.cells())
		w.ag[i].energy = 1
	}
	return nil
}

func (boltzmann) measure(w *World) map[string]float64 {
	vals := make([]float64, len(w.ag))
	var total float64
	for i, a := range w.ag {
		vals[i] = a.energy
		total += a.energy
	}
	return map[string]float64{"gini": gini(vals), "total_wealth": total,
		"min_wealth": slices.Min(vals), "max_wealth": slices.Max(vals), "transfers": 0}
}

func (boltzmann) observed(*World, int) bool { return true }

func (w *World) cellmates(i int) []world.AgentID {
	var ids []world.AgentID
	for _, j := range w.occ[w.ag[i].pos] {
		if j != i {
			ids = append(ids, w.seats[j].ID)
		}
	}
	slices.Sort(ids)
	return ids
}

func (boltzmann) observe(w *World, i int) any {
	x, y := w.xy(w.ag[i].pos)
	return BoltzmannObservation{Tick: w.tick + 1, X: x, Y: y, Wealth: w.ag[i].energy,
		Moves: w.moves(w.ag[i].pos), Cellmates: w.cellmates(i)}
}

func (boltzmann) parse(w *World, i int, data json.RawMessage) (any, error) {
	var a BoltzmannAction
	if err := decodeStrict(data, &a, `{"move":[dx,dy],"give":"AGENT"}`); err != nil {
		return nil, err
	}
	if err := w.checkMove(w.ag[i].pos, a.Move); err != nil {
		return nil, err
	}
	if a.Give != "" {
		j, ok := w.idx[a.Give]
		if !ok || j == i || w.ag[j].pos != w.ag[i].pos {
			return nil, fmt.Errorf("give: %q is not a cellmate (cellmates: %v)", a.Give, w.cellmates(i))
		}
	}
	return a, nil
}

func (boltzmann) defaultAction(*World, int) any { return BoltzmannAction{} }

// step: every gift, one at a time in a random order, each made only if the
// giver has a unit at that moment; then every move.
func (boltzmann) step(w *World, acts []any, rng *rand.Rand) (map[string]float64, []world.Event) {
	var givers []int
	for i, a := range acts {
		if a, ok := a.(BoltzmannAction); ok && a.Give != "" {
			givers = append(givers, i)
		}
	}
	rng.Shuffle(len(givers), func(a, b int) { givers[a], givers[b] = givers[b], givers[a] })
	transfers := 0
	for _, i := range givers {
		if w.ag[i].energy < 1 {
			continue
		}
		w.ag[i].energy--
		w.ag[w.idx[acts[i].(BoltzmannAction).Give]].energy++
		transfers++
	}
	for i, a := range acts {
		if a, ok := a.(BoltzmannAction); ok {
			w.ag[i].pos = w.moveBy(w.ag[i].pos, a.Move)
		}
	}
	return map[string]float64{"transfers": float64(transfers)}, nil
}
