package grid

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/terrarium-sim/terrarium/internal/jsonenc"
	"github.com/terrarium-sim/terrarium/world"
)

// SchellingObservation is what a Schelling agent sees each tick.
type SchellingObservation struct {
	Tick      int     `json:"tick"`
	X         int     `json:"x"`
	Y         int     `json:"y"`
	Group     string  `json:"group"`
	Alike     int     `json:"alike"`     // neighbours of its own group
	Other     int     `json:"other"`     // neighbours of any other group
	Threshold float64 `json:"threshold"` // the share of alike neighbours it wants
}

// SchellingAction: Move asks to move to a random empty cell.
type SchellingAction struct {
	Move bool `json:"move"`
}

type schelling struct{}

func (schelling) metrics() []string { return []string{"share_alike", "unhappy", "moved"} }
func (schelling) watch() []string   { return []string{"unhappy"} }

func (schelling) seats(w *World) error {
	if len(w.seats) >= w.cells() {
		return fmt.Errorf("schelling needs at least one empty cell: %d agents on %d cells", len(w.seats), w.cells())
	}
	if len(w.groups) < 2 {
		return errors.New("schelling needs at least two agent blocks (groups)")
	}
	return nil
}

func (schelling) setup(w *World, rng *rand.Rand) error {
	placeDistinct(w, rng, allAgents(w))
	return nil
}

// allAgents activates every seat and returns their indices.
func allAgents(w *World) []int {
	ids := make([]int, len(w.ag))
	for i := range ids {
		ids[i] = i
		w.ag[i].active = true
	}
	return ids
}

// placeDistinct puts the agents on distinct random cells.
func placeDistinct(w *World, rng *rand.Rand, ids []int) {
	n := w.cells()
	if 2*len(ids) >= n {
		perm := rng.Perm(n)
		for k, i := range ids {
			w.ag[i].pos = perm[k]
		}
		return
	}
	used := make(map[int]bool, len(ids))
	for _, i := range ids {
		for {
			p := rng.IntN(n)
			if !used[p] {
				used[p] = true
				w.ag[i].pos = p
				break
			}
		}
	}
}

// alike counts agent i's neighbours of its group and of others.
func (w *World) alike(i int, buf []int) (same, other int) {
	if w.cellAg != nil && (!w.torus || (w.w >= 3 && w.h >= 3)) {
		// The offsets' cells are distinct and never pos (only a torus
		// narrower than 3 wraps onto them): no list of cells needed.
		x, y := w.xy(w.ag[i].pos)
		for _, o := range w.offs {
			p, ok := w.at(x+o[0], y+o[1])
			if !ok {
				continue
			}
			if j := int(w.cellAg[p]) - 1; j >= 0 {
				if w.ag[j].group == w.ag[i].group {
					same++
				} else {
					other++
				}
			}
		}
		return same, other
	}
	for _, p := range w.neighbours(w.ag[i].pos, buf[:0]) {
		if w.cellAg != nil {
			if j := int(w.cellAg[p]) - 1; j >= 0 {
				if w.ag[j].group == w.ag[i].group {
					same++
				} else {
					other++
				}
			}
			continue
		}
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

func (schelling) measure(w *World) map[string]float64 {
	buf := make([]int, 0, 8)
	var share float64
	var counted, unhappy int
	if len(w.alikeN) != len(w.ag) {
		w.alikeN = make([][2]int32, len(w.ag))
	}
	for i := range w.ag {
		s, o := w.alike(i, buf)
		w.alikeN[i] = [2]int32{int32(s), int32(o)}
		if s+o == 0 {
			continue // no neighbours: content, and no share
		}
		f := float64(s) / float64(s+o)
		share += f
		counted++
		if f < w.c.Threshold {
			unhappy++
		}
	}
	w.alikeOK = true
	if counted > 0 {
		share /= float64(counted)
	}
	return map[string]float64{"share_alike": share, "unhappy": float64(unhappy), "moved": 0}
}

func (schelling) observed(w *World, i int) bool { return true }

func (schelling) observe(w *World, i int) any {
	var s, o int
	if w.alikeOK {
		s, o = int(w.alikeN[i][0]), int(w.alikeN[i][1])
	} else {
		s, o = w.alike(i, make([]int, 0, 8))
	}
	x, y := w.xy(w.ag[i].pos)
	return SchellingObservation{Tick: w.tick + 1, X: x, Y: y, Group: w.seats[i].Group, Alike: s, Other: o, Threshold: w.c.Threshold}
}

// appendObservation encodes observe's SchellingObservation as json.Marshal
// does, without reflection: at thousands of agents a tick's observations
// were most of the world's time.
func (schelling) appendObservation(w *World, i int, b []byte) ([]byte, bool) {
	o := SchellingObservation{Tick: w.tick + 1, Group: w.seats[i].Group, Threshold: w.c.Threshold}
	if w.alikeOK {
		o.Alike, o.Other = int(w.alikeN[i][0]), int(w.alikeN[i][1])
	} else {
		o.Alike, o.Other = w.alike(i, make([]int, 0, 8))
	}
	o.X, o.Y = w.xy(w.ag[i].pos)
	if b == nil {
		b = make([]byte, 0, 96+len(o.Group))
	}
	b = append(b, `{"tick":`...)
	b = strconv.AppendInt(b, int64(o.Tick), 10)
	b = append(b, `,"x":`...)
	b = strconv.AppendInt(b, int64(o.X), 10)
	b = append(b, `,"y":`...)
	b = strconv.AppendInt(b, int64(o.Y), 10)
	b = append(b, `,"group":`...)
	var ok bool
	if b, ok = jsonenc.AppendString(b, o.Group); !ok {
		return nil, false
	}
	b = append(b, `,"alike":`...)
	b = strconv.AppendInt(b, int64(o.Alike), 10)
	b = append(b, `,"other":`...)
	b = strconv.AppendInt(b, int64(o.Other), 10)
	b = append(b, `,"threshold":`...)
	if b, ok = jsonenc.AppendFloat(b, o.Threshold); !ok {
		return nil, false
	}
	return append(b, '}'), true
}

func (schelling) parse(w *World, i int, data json.RawMessage) (any, error) {
	// The two actions as json.Marshal writes them need no decoder.
	switch string(data) {
	case `{"move":false}`:
		return SchellingAction{}, nil
	case `{"move":true}`:
		return SchellingAction{Move: true}, nil
	}
	var a SchellingAction
	if err := decodeStrict(data, &a, `{"move":true|false}`); err != nil {
		return nil, err
	}
	return a, nil
}

func (schelling) defaultAction(*World, int) any { return SchellingAction{} }

// step moves every agent that asked to, in a random order, each to a
// random cell empty at that moment.
func (schelling) step(w *World, acts []any, rng *rand.Rand) (map[string]float64, []world.Event) {
	var movers []int
	for i, a := range acts {
		if a, ok := a.(SchellingAction); ok && a.Move {
			movers = append(movers, i)
		}
	}
	rng.Shuffle(len(movers), func(a, b int) { movers[a], movers[b] = movers[b], movers[a] })
	free := w.cells() - len(w.ag)
	for _, i := range movers {
		old := w.ag[i].pos
		p, ok := w.randomEmpty(rng, free)
		if !ok {
			break
		}
		w.ag[i].pos = p
		w.occ[p] = []int{i}
		delete(w.occ, old)
	}
	return map[string]float64{"moved": float64(len(movers))}, nil
}
