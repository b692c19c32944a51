package grid

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/terrarium-sim/terrarium/world"
)

// KindName is the world kind this package registers.
const KindName = "grid"

func init() {
	world.Register(world.Kind{
		Name:      KindName,
		Doc:       "grid world (Schelling, Boltzmann wealth, Game of Life, predator-prey); lockstep moves on a torus or bounded grid",
		NewConfig: func() any { return NewConfig() },
		New: func(config any, seats []world.Seat) (world.World, error) {
			c, err := world.ConfigAs[Config](KindName, config)
			if err != nil {
				return nil, err
			}
			return New(c, seats)
		},
	})
}

// World is a grid world with one rule set. Create it with New, then call
// Seed before anything else. Like every world.World it is owned by one
// goroutine.
type World struct {
	c      Config
	w, h   int
	torus  bool
	offs   [][2]int // the neighbourhood's offsets, in a fixed order
	seats  []world.Seat
	idx    map[world.AgentID]int
	guess  int      // seat: the seat seat tries first
	groups []string // sorted
	ag     []agent
	rules  ruleSet
	snapAt map[int]bool

	// state
	seeded bool
	tick   int
	occ    map[int][]int // cell -> active agents on it, ascending; rebuilt every step
	// Schelling's like and other neighbours of every agent, as measured
	// at the end of the last step (valid while alikeOK: rebuild clears
	// it): the next tick's observations are of that same state.
	alikeN  [][2]int32
	alikeOK bool
	cellAg  []int32                    // Schelling: cell -> its agent + 1 (0: empty), or nil (see rebuild)
	hashBuf []byte                     // StateHash's encoding, reused
	layers  map[string]map[int]float64 // sparse cell properties; an absent cell is 0
	stats   map[string]*Summary
	first0  map[string]int     // first tick at which a watched metric was 0
	firstN  map[string]int     // first tick at which an alarm metric was not 0
	init0   map[string]float64 // the state metrics before the first tick
}

type agent struct {
	group  int
	pos    int
	active bool
	energy float64 // wealth (boltzmann), energy (predator_prey)
	last   [2]int  // the last move (predator_prey)
}

// alarmer is a rule set with metrics that should stay 0 (predator_prey's
// births_refused): the result reports the first tick each was not.
type alarmer interface{ alarms() []string }

// ruleSet is one set of rules over the common grid state.
type ruleSet interface {
	// metrics names the per-tick metrics, in column order.
	metrics() []string
	// watch names the metrics whose first tick at 0 the result reports.
	watch() []string
	// seats checks the seats against the settings.
	seats(w *World) error
	// setup makes the initial state.
	setup(w *World, rng *rand.Rand) error
	// measure computes the state metrics (counters from step are added by step).
	measure(w *World) map[string]float64
	observe(w *World, i int) any
	// parse checks agent i's action against the current state.
	parse(w *World, i int, data json.RawMessage) (any, error)
	defaultAction(w *World, i int) any
	// step applies one tick; acts[i] is agent i's parsed action or nil.
	step(w *World, acts []any, rng *rand.Rand) (counters map[string]float64, events []world.Event)
	// observed reports whether agent i acts this tick.
	observed(w *World, i int) bool
}

// observationAppender is a rule set that encodes agent i's observation
// itself, as json.Marshal encodes what observe returns (ok false: it
// cannot tell, and Marshal does it).
type observationAppender interface {
	appendObservation(w *World, i int, b []byte) ([]byte, bool)
}

// New checks the config and the seats. The state is made by Seed.
func New(c Config, seats []world.Seat) (*World, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	w := &World{c: c, w: c.Width, h: c.Height, torus: c.Topology == Torus, idx: make(map[world.AgentID]int, len(seats))}
	if c.Neighbourhood == Moore {
		w.offs = [][2]int{{-1, -1}, {0, -1}, {1, -1}, {-1, 0}, {1, 0}, {-1, 1}, {0, 1}, {1, 1}}
	} else {
		w.offs = [][2]int{{0, -1}, {-1, 0}, {1, 0}, {0, 1}}
	}
	w.snapAt = map[int]bool{}
	for _, t := range c.Snapshots {
		w.snapAt[t] = true
	}
	var errs []error
	gi := map[string]int{}
	for _, s := range seats {
		if _, dup := w.idx[s.ID]; dup {
			errs = append(errs, fmt.Errorf("agent id %q appears twice", s.ID))
			continue
		}
		w.idx[s.ID] = len(w.seats)
		w.seats = append(w.seats, s)
		gi[s.Group] = 0
	}
	for g := range gi {
		w.groups = append(w.groups, g)
	}
	sort.Strings(w.groups)
	for i, g := range w.groups {
		gi[g] = i
	}
	w.ag = make([]agent, len(w.seats))
	for i, s := range w.seats {
		w.ag[i].group = gi[s.Group]
	}
	switch c.Rules {
	case RulesSchelling:
		w.rules = &schelling{}
	case RulesBoltzmann:
		w.rules = &boltzmann{}
	case RulesLife:
		w.rules = &life{}
	case RulesPredatorPrey:
		w.rules = &predPrey{}
	}
	if len(w.seats) == 0 {
		errs = append(errs, errors.New("grid has no agents: add an agent block"))
	} else if err := w.rules.seats(w); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return w, nil
}

// Seed makes the initial state from the run's seed (world.Seeder): the
// random layout of the agents and cells. The host calls it once, right
// after New; Restore replaces what it made.
func (w *World) Seed(seed uint64) error {
	w.tick = 0
	w.layers = map[string]map[int]float64{}
	w.stats = map[string]*Summary{}
	w.first0 = map[string]int{}
	w.firstN = map[string]int{}
	for i := range w.ag {
		w.ag[i].active, w.ag[i].pos, w.ag[i].energy = false, 0, 0
	}
	if err := w.rules.setup(w, rand.New(rand.NewPCG(seed, 0x6772696473656564))); err != nil {
		return fmt.Errorf("grid: %w", err)
	}
	w.rebuild()
	w.init0 = w.rules.measure(w)
	w.seeded = true
	return nil
}

// ErrNotSeeded is returned by the world's methods when Seed was not called.
var ErrNotSeeded = errors.New("grid: Seed was not called after New")

func (w *World) ready() error {
	if !w.seeded {
		return ErrNotSeeded
	}
	return nil
}

// cells is the number of cells.
func (w *World) cells() int { return w.w * w.h }

func (w *World) xy(pos int) (int, int) { return pos % w.w, pos / w.w }

// at returns the cell at (x, y), wrapping on a torus; ok is false off a bounded grid.
func (w *World) at(x, y int) (int, bool) {
	if w.torus {
		x, y = ((x%w.w)+w.w)%w.w, ((y%w.h)+w.h)%w.h
	} else if x < 0 || y < 0 || x >= w.w || y >= w.h {
		return 0, false
	}
	return y*w.w + x, true
}

// neighbours appends the distinct cells around pos (never pos itself).
func (w *World) neighbours(pos int, buf []int) []int {
	x, y := w.xy(pos)
	for _, o := range w.offs {
		if p, ok := w.at(x+o[0], y+o[1]); ok && p != pos && !slices.Contains(buf, p) {
			buf = append(buf, p)
		}
	}
	return buf
}

// moves lists the offsets an agent at pos may move by (those that stay on the grid).
func (w *World) moves(pos int) [][2]int {
	x, y := w.xy(pos)
	out := make([][2]int, 0, len(w.offs))
	for _, o := range w.offs {
		if _, ok := w.at(x+o[0], y+o[1]); ok {
			out = append(out, o)
		}
	}
	return out
}

// moveBy returns pos moved by an offset the agent was offered (or [0,0]).
func (w *World) moveBy(pos int, d [2]int) int {
	x, y := w.xy(pos)
	p, ok := w.at(x+d[0], y+d[1])
	if !ok {
		return pos
	}
	return p
}

func (w *World) checkMove(pos int, d [2]int) error {
	if d == [2]int{} {
		return nil
	}
	for _, o := range w.moves(pos) {
		if o == d {
			return nil
		}
	}
	return fmt.Errorf("move [%d,%d] is not one of the offered moves %v (or [0,0])", d[0], d[1], w.moves(pos))
}

// rebuild recomputes the occupancy of the cells from the agents. The
// map is reused; a cell's first agent is a slice of one backing array
// (a cell with more gets its own on the second).
func (w *World) rebuild() {
	if w.occ == nil {
		w.occ = make(map[int][]int, len(w.ag))
	} else {
		clear(w.occ)
	}
	one := make([]int, len(w.ag))
	for i := range w.ag {
		if !w.ag[i].active {
			continue
		}
		p := w.ag[i].pos
		if on, ok := w.occ[p]; ok {
			w.occ[p] = append(on, i)
		} else {
			one[i] = i
			w.occ[p] = one[i : i+1 : i+1]
		}
	}
	w.alikeOK = false
	// Schelling (one agent per cell) on a grid not much larger than its
	// crowd: a dense index of the cells, for counting neighbours without
	// a map lookup per cell.
	if _, ok := w.rules.(*schelling); ok && w.cells() <= denseCellsPerAgent*len(w.ag) {
		if len(w.cellAg) != w.cells() {
			w.cellAg = make([]int32, w.cells())
		} else {
			clear(w.cellAg)
		}
		for i := range w.ag {
			if w.ag[i].active {
				w.cellAg[w.ag[i].pos] = int32(i + 1)
			}
		}
	} else {
		w.cellAg = nil
	}
}

// denseCellsPerAgent bounds the grids that get Schelling's dense index:
// at most this many cells per agent.
const denseCellsPerAgent = 16

func (w *World) layer(name string) map[int]float64 {
	l, ok := w.layers[name]
	if !ok {
		l = map[int]float64{}
		w.layers[name] = l
	}
	return l
}

// randomEmpty returns a random cell with no agent on it and not in taken.
func (w *World) randomEmpty(rng *rand.Rand, free int) (int, bool) {
	if free <= 0 {
		return 0, false
	}
	n := w.cells()
	if float64(free)/float64(n) > 0.02 {
		for range 1 << 16 {
			p := rng.IntN(n)
			if len(w.occ[p]) == 0 {
				return p, true
			}
		}
	}
	// Few empty cells left: pick among them exactly.
	k := rng.IntN(free)
	for p := range n {
		if len(w.occ[p]) == 0 {
			if k == 0 {
				return p, true
			}
			k--
		}
	}
	return 0, false
}

func (w *World) seat(id world.AgentID) (int, error) {
	// The loop asks in id order, mostly the seats' order: try the seat
	// after the last one asked for before the map.
	if g := w.guess; g < len(w.seats) && w.seats[g].ID == id {
		w.guess = g + 1
		return g, nil
	}
	i, ok := w.idx[id]
	if !ok {
		return 0, fmt.Errorf("unknown agent %q", id)
	}
	w.guess = i + 1
	return i, nil
}

// Observe returns agent id's observation (see the package doc for each
// rule set's JSON); ok is false for an inactive seat and once done.
func (w *World) Observe(id world.AgentID, t world.Tick) (json.RawMessage, bool, error) {
	if err := w.ready(); err != nil {
		return nil, false, err
	}
	i, err := w.seat(id)
	if err != nil {
		return nil, false, fmt.Errorf("observe: %w", err)
	}
	if w.Done() || !w.rules.observed(w, i) {
		return nil, false, nil
	}
	if int(t) != w.tick+1 {
		return nil, false, fmt.Errorf("observe %s at tick %d: the world is at tick %d", id, t, w.tick+1)
	}
	if a, ok := w.rules.(observationAppender); ok {
		if b, ok := a.appendObservation(w, i, nil); ok {
			return b, true, nil
		}
	}
	b, err := json.Marshal(w.rules.observe(w, i))
	if err != nil {
		return nil, false, fmt.Errorf("observe %s: %w", id, err)
	}
	return b, true, nil
}

// Validate checks an action against the state at the start of the tick.
func (w *World) Validate(a world.Action) error {
	if err := w.ready(); err != nil {
		return err
	}
	i, err := w.seat(a.Agent)
	if err != nil {
		return err
	}
	if int(a.Tick) != w.tick+1 {
		return fmt.Errorf("wrong tick %d: the world is at tick %d", a.Tick, w.tick+1)
	}
	if !w.rules.observed(w, i) {
		return errors.New("this seat is inactive this tick")
	}
	_, err = w.rules.parse(w, i, a.Data)
	return err
}

// DefaultAction is each rule set's "do nothing" (see the package doc).
func (w *World) DefaultAction(id world.AgentID, _ world.Tick) json.RawMessage {
	i, ok := w.idx[id]
	if !ok || !w.seeded {
		return json.RawMessage(`{}`)
	}
	b, err := json.Marshal(w.rules.defaultAction(w, i))
	if err != nil {
		return json.RawMessage(`{}`)
	}
	return b
}

// Step applies tick t: every action is read against the state at the start
// of the tick, then the rule set applies them all at once (so no agent sees
// another's move of the same tick). On error the world is unchanged.
func (w *World) Step(t world.Tick, actions []world.Action, rng *rand.Rand) (world.StepResult, error) {
	if err := w.ready(); err != nil {
		return world.StepResult{}, err
	}
	if w.Done() {
		return world.StepResult{}, fmt.Errorf("step tick %d: the world ended at tick %d", t, w.tick)
	}
	if int(t) != w.tick+1 {
		return world.StepResult{}, fmt.Errorf("step tick %d: the world is at tick %d", t, w.tick+1)
	}
	acts := make([]any, len(w.ag))
	for _, a := range actions {
		i, err := w.seat(a.Agent)
		if err != nil {
			return world.StepResult{}, fmt.Errorf("step tick %d: %w", t, err)
		}
		if acts[i] != nil {
			return world.StepResult{}, fmt.Errorf("step tick %d: two actions from agent %q", t, a.Agent)
		}
		if !w.rules.observed(w, i) {
			continue // inactive seats have nothing to do
		}
		v, err := w.rules.parse(w, i, a.Data)
		if err != nil {
			return world.StepResult{}, fmt.Errorf("step tick %d: agent %s: %w", t, a.Agent, err)
		}
		acts[i] = v
	}
	var res world.StepResult
	if t == 1 && w.snapAt[0] {
		res.Events = append(res.Events, w.gridEvent(0))
	}
	counters, evs := w.rules.step(w, acts, rng)
	w.rebuild()
	w.tick++
	m := w.rules.measure(w)
	for k, v := range counters {
		m[k] = v
	}
	res.Metrics = m
	res.Events = append(res.Events, evs...)
	for _, name := range w.rules.metrics() {
		if w.tick >= w.c.MeasureFrom {
			s := w.stats[name]
			if s == nil {
				s = &Summary{Min: math.Inf(1), Max: math.Inf(-1), From: w.tick}
				w.stats[name] = s
			}
			s.add(m[name])
		}
	}
	for _, name := range w.rules.watch() {
		if _, seen := w.first0[name]; !seen && m[name] == 0 {
			w.first0[name] = w.tick
		}
	}
	if a, ok := w.rules.(alarmer); ok {
		for _, name := range a.alarms() {
			if _, seen := w.firstN[name]; !seen && m[name] != 0 {
				w.firstN[name] = w.tick
			}
		}
	}
	if w.snapAt[w.tick] || (w.c.SnapshotEvery > 0 && w.tick%w.c.SnapshotEvery == 0) {
		res.Events = append(res.Events, w.gridEvent(w.tick))
	}
	return res, nil
}

// Done reports that the horizon was reached or no agent is left to act.
func (w *World) Done() bool {
	if w.tick >= w.c.Horizon {
		return true
	}
	if !w.seeded {
		return false
	}
	for i := range w.ag {
		if w.rules.observed(w, i) {
			return false
		}
	}
	return true
}

// Metrics names the rule set's per-tick metrics (see the package doc).
func (w *World) Metrics() []string { return w.rules.metrics() }

// gridEvent is the world.grid event: the whole grid at tick t.
func (w *World) gridEvent(t int) world.Event {
	v := w.gridView()
	return world.Event{Kind: "grid", Fields: map[string]any{
		"at": t, "width": w.w, "height": w.h, "topology": w.c.Topology, "rules": w.c.Rules,
		"groups": w.groups, "agents": v.Agents, "layers": v.Layers,
	}}
}

// gridView is the grid as it is now: active agents and every layer.
func (w *World) gridView() *world.GridView {
	agents := make([][3]int, 0, len(w.ag))
	for i := range w.ag {
		if w.ag[i].active {
			x, y := w.xy(w.ag[i].pos)
			agents = append(agents, [3]int{x, y, w.ag[i].group})
		}
	}
	layers := map[string][][3]int{}
	for _, name := range sortedKeys(w.layers) {
		l := w.layers[name]
		cells := make([][3]int, 0, len(l))
		for _, p := range sortedKeys(l) {
			x, y := w.xy(p)
			cells = append(cells, [3]int{x, y, int(l[p])})
		}
		layers[name] = cells
	}
	return &world.GridView{Width: w.w, Height: w.h, Groups: slices.Clone(w.groups), Agents: agents, Layers: layers}
}

// View draws the grid for the dashboard, with the run's summary table.
func (w *World) View() world.View {
	return world.View{Grid: w.gridView(), Tables: []world.Table{w.Table()}}
}

func sortedKeys[K int | string, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// decodeStrict decodes one JSON object into v, refusing unknown fields.
func decodeStrict(data json.RawMessage, v any, shape string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed action (want %s): %w", shape, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("malformed action: data after the JSON object")
	}
	return nil
}
