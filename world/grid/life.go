package grid

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/terrarium-sim/terrarium/world"
)

// LifeObservation is what a Game of Life agent sees each tick: its block of
// cells (origin X, Y, size W x H) and the alive cells in the block and the
// ring of cells around it, in block coordinates (-1 .. W, -1 .. H).
type LifeObservation struct {
	Tick          int      `json:"tick"`
	X             int      `json:"x"`
	Y             int      `json:"y"`
	W             int      `json:"w"`
	H             int      `json:"h"`
	Neighbourhood string   `json:"neighbourhood"`
	Alive         [][2]int `json:"alive"`
}

// LifeAction is the block's next generation: its alive cells, in block
// coordinates (0 .. W-1, 0 .. H-1).
type LifeAction struct {
	Alive [][2]int `json:"alive"`
}

type life struct {
	bx, by int   // blocks across and down
	origin []int // per agent: its block's top-left cell
}

const layerAlive = "alive"

func (*life) metrics() []string { return []string{"population", "births", "deaths"} }
func (*life) watch() []string   { return []string{"population"} }

func (l *life) seats(w *World) error {
	b := w.c.Block
	l.bx, l.by = (w.w+b-1)/b, (w.h+b-1)/b
	if len(w.seats) != l.bx*l.by {
		return fmt.Errorf("life on a %dx%d grid with block = %d needs %d x %d = %d agents (one per block); got %d",
			w.w, w.h, b, l.bx, l.by, l.bx*l.by, len(w.seats))
	}
	// Blocks go to the agents in (group, index) order, row by row.
	order := make([]int, len(w.seats))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		sa, sb := w.seats[order[a]], w.seats[order[b]]
		if sa.Group != sb.Group {
			return sa.Group < sb.Group
		}
		return sa.Index < sb.Index
	})
	l.origin = make([]int, len(w.seats))
	for k, i := range order {
		l.origin[i] = (k/l.bx)*b*w.w + (k%l.bx)*b
	}
	return nil
}

func (l *life) setup(w *World, _ *rand.Rand) error {
	for i := range w.ag {
		w.ag[i].active = true
		w.ag[i].pos = l.origin[i] // an agent sits on its block's top-left cell
	}
	alive := w.layer(layerAlive)
	if w.c.Cells != nil {
		for _, c := range w.c.Cells {
			alive[c[1]*w.w+c[0]] = 1
		}
		return nil
	}
	pat := lifePatterns[w.c.Pattern]
	pw, ph := 0, 0
	for _, c := range pat {
		pw, ph = max(pw, c[0]+1), max(ph, c[1]+1)
	}
	ax, ay := (w.w-pw)/2, (w.h-ph)/2
	if len(w.c.At) == 2 {
		ax, ay = w.c.At[0], w.c.At[1]
	}
	for _, c := range pat {
		p, ok := w.at(ax+c[0], ay+c[1])
		if !ok {
			return fmt.Errorf("pattern %s at [%d, %d] does not fit the %dx%d grid", w.c.Pattern, ax, ay, w.w, w.h)
		}
		alive[p] = 1
	}
	return nil
}

func (l *life) measure(w *World) map[string]float64 {
	return map[string]float64{"population": float64(len(w.layers[layerAlive])), "births": 0, "deaths": 0}
}

func (*life) observed(*World, int) bool { return true }

// block returns agent i's block: origin and size.
func (w *World) block(i int) (x0, y0, bw, bh int) {
	x0, y0 = w.xy(w.ag[i].pos)
	b := w.c.Block
	return x0, y0, min(b, w.w-x0), min(b, w.h-y0)
}

func (l *life) observe(w *World, i int) any {
	x0, y0, bw, bh := w.block(i)
	alive := w.layers[layerAlive]
	o := LifeObservation{Tick: w.tick + 1, X: x0, Y: y0, W: bw, H: bh, Neighbourhood: w.c.Neighbourhood, Alive: [][2]int{}}
	for dy := -1; dy <= bh; dy++ {
		for dx := -1; dx <= bw; dx++ {
			if p, ok := w.at(x0+dx, y0+dy); ok && alive[p] != 0 {
				o.Alive = append(o.Alive, [2]int{dx, dy})
			}
		}
	}
	return o
}

func (l *life) parse(w *World, i int, data json.RawMessage) (any, error) {
	var a LifeAction
	if err := decodeStrict(data, &a, `{"alive":[[dx,dy],...]}`); err != nil {
		return nil, err
	}
	_, _, bw, bh := w.block(i)
	seen := make(map[[2]int]bool, len(a.Alive))
	for _, c := range a.Alive {
		if c[0] < 0 || c[1] < 0 || c[0] >= bw || c[1] >= bh {
			return nil, fmt.Errorf("alive cell [%d,%d] is outside your %dx%d block", c[0], c[1], bw, bh)
		}
		if seen[c] {
			return nil, fmt.Errorf("alive cell [%d,%d] listed twice", c[0], c[1])
		}
		seen[c] = true
	}
	return a, nil
}

// defaultAction keeps the block as it is.
func (l *life) defaultAction(w *World, i int) any {
	x0, y0, bw, bh := w.block(i)
	alive := w.layers[layerAlive]
	a := LifeAction{Alive: [][2]int{}}
	for dy := range bh {
		for dx := range bw {
			if alive[(y0+dy)*w.w+x0+dx] != 0 {
				a.Alive = append(a.Alive, [2]int{dx, dy})
			}
		}
	}
	return a
}

// step replaces every block that answered with its answer; a block whose
// agent gave none stays as it was.
func (l *life) step(w *World, acts []any, _ *rand.Rand) (map[string]float64, []world.Event) {
	old := w.layers[layerAlive]
	next := make(map[int]float64, len(old))
	var births, deaths int
	for i := range w.ag {
		x0, y0, bw, bh := w.block(i)
		a, ok := acts[i].(LifeAction)
		if !ok {
			a = l.defaultAction(w, i).(LifeAction)
		}
		for _, c := range a.Alive {
			next[(y0+c[1])*w.w+x0+c[0]] = 1
		}
		for dy := range bh {
			for dx := range bw {
				p := (y0+dy)*w.w + x0 + dx
				was, is := old[p] != 0, next[p] != 0
				if is && !was {
					births++
				} else if was && !is {
					deaths++
				}
			}
		}
	}
	w.layers[layerAlive] = next
	return map[string]float64{"births": float64(births), "deaths": float64(deaths)}, nil
}
