package grid

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"sort"
	"strconv"

	"github.com/terrarium-sim/terrarium/internal/jsonenc"
	"github.com/terrarium-sim/terrarium/world"
)

// Summary is one metric over the measured ticks (measure_from to the last).
type Summary struct {
	From  int     `json:"from"`  // first tick counted
	Ticks int     `json:"ticks"` // ticks counted
	Mean  float64 `json:"mean"`
	SD    float64 `json:"sd"` // population standard deviation
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
	Last  float64 `json:"last"`
	Sum   float64 `json:"sum"`
	SumSq float64 `json:"sum_sq"`
}

func (s *Summary) add(v float64) {
	s.Ticks++
	s.Sum += v
	s.SumSq += v * v
	s.Min = math.Min(s.Min, v)
	s.Max = math.Max(s.Max, v)
	s.Last = v
	s.Mean = s.Sum / float64(s.Ticks)
	s.SD = math.Sqrt(math.Max(0, s.SumSq/float64(s.Ticks)-s.Mean*s.Mean))
}

// Result is the world's summary in result.json.
type Result struct {
	Rules         string   `json:"rules"`
	Width         int      `json:"width"`
	Height        int      `json:"height"`
	Topology      string   `json:"topology"`
	Neighbourhood string   `json:"neighbourhood"`
	Ticks         int      `json:"ticks"` // ticks stepped
	Groups        []string `json:"groups"`
	// Initial holds the state metrics before the first tick.
	Initial map[string]float64 `json:"initial"`
	// Metrics summarises every metric over ticks measure_from..Ticks.
	Metrics map[string]Summary `json:"metrics"`
	// FirstZero gives, for the watched metrics (schelling "unhappy", life
	// "population", predator_prey "prey" and "predators"), the first tick
	// at which the metric was 0; absent: never.
	FirstZero map[string]int `json:"first_zero"`
	// FirstNonZero gives, for the metrics that should stay 0
	// (predator_prey "births_refused"), the first tick at which the
	// metric was not 0; absent: never.
	FirstNonZero map[string]int `json:"first_nonzero,omitempty"`
}

// Result returns the summary of the ticks stepped so far.
func (w *World) Result() any {
	r := Result{Rules: w.c.Rules, Width: w.w, Height: w.h, Topology: w.c.Topology, Neighbourhood: w.c.Neighbourhood,
		Ticks: w.tick, Groups: w.groups, Initial: w.init0, Metrics: map[string]Summary{}, FirstZero: map[string]int{}}
	for k, s := range w.stats {
		r.Metrics[k] = *s
	}
	for k, v := range w.first0 {
		r.FirstZero[k] = v
	}
	if len(w.firstN) > 0 {
		r.FirstNonZero = maps.Clone(w.firstN)
	}
	return r
}

// InitialMetrics returns the metrics of the state Seed made (the host
// writes them as metrics.csv's tick-0 row); nil before Seed.
func (w *World) InitialMetrics() map[string]float64 {
	if !w.seeded {
		return nil
	}
	return maps.Clone(w.init0)
}

// Table prints the metric summary at the end of a run.
func (w *World) Table() world.Table {
	t := world.Table{Title: fmt.Sprintf("grid %s, %dx%d %s, %d ticks", w.c.Rules, w.w, w.h, w.c.Topology, w.tick),
		Columns: []string{"metric", "initial", "mean", "sd", "min", "max", "last", "first 0"}}
	for _, name := range w.rules.metrics() {
		s, ok := w.stats[name]
		if !ok {
			continue
		}
		init, first := "", ""
		if v, ok := w.init0[name]; ok {
			init = fmt.Sprintf("%.4g", v)
		}
		if v, ok := w.first0[name]; ok {
			first = fmt.Sprint(v)
		}
		t.Rows = append(t.Rows, []string{name, init, fmt.Sprintf("%.4g", s.Mean), fmt.Sprintf("%.4g", s.SD),
			fmt.Sprintf("%.4g", s.Min), fmt.Sprintf("%.4g", s.Max), fmt.Sprintf("%.4g", s.Last), first})
	}
	return t
}

const snapshotVersion = 1

type snapshot struct {
	V       int                     `json:"v"`
	Rules   string                  `json:"rules"`
	Width   int                     `json:"width"`
	Height  int                     `json:"height"`
	Tick    int                     `json:"tick"`
	Agents  []snapAgent             `json:"agents"` // in seat (id) order
	Layers  map[string][][2]float64 `json:"layers"` // name -> [cell, value], cells ascending
	Stats   map[string]Summary      `json:"stats"`
	First0  map[string]int          `json:"first_zero"`
	FirstN  map[string]int          `json:"first_nonzero,omitempty"`
	Initial map[string]float64      `json:"initial"`
}

type snapAgent struct {
	ID     world.AgentID `json:"id"`
	Active bool          `json:"active"`
	Pos    int           `json:"pos"`
	Energy float64       `json:"energy"`
	Last   [2]int        `json:"last,omitempty"`
}

func (w *World) snapshot() snapshot {
	s := w.snapshotMeta()
	s.Agents = make([]snapAgent, 0, len(w.ag))
	for i, a := range w.ag {
		s.Agents = append(s.Agents, snapAgent{ID: w.seats[i].ID, Active: a.active, Pos: a.pos, Energy: a.energy, Last: a.last})
	}
	return s
}

// snapshotMeta is snapshot without the agents.
func (w *World) snapshotMeta() snapshot {
	s := snapshot{V: snapshotVersion, Rules: w.c.Rules, Width: w.w, Height: w.h, Tick: w.tick,
		Layers: map[string][][2]float64{}, Stats: map[string]Summary{}, First0: w.first0, Initial: w.init0}
	if len(w.firstN) > 0 {
		s.FirstN = w.firstN
	}
	for name, l := range w.layers {
		cells := make([][2]float64, 0, len(l))
		for _, p := range sortedKeys(l) {
			cells = append(cells, [2]float64{float64(p), l[p]})
		}
		s.Layers[name] = cells
	}
	for k, v := range w.stats {
		s.Stats[k] = *v
	}
	return s
}

// Snapshot encodes the whole state as JSON (map keys sorted, so the same
// state gives the same bytes).
func (w *World) Snapshot() ([]byte, error) {
	if err := w.ready(); err != nil {
		return nil, err
	}
	b, err := w.appendSnapshot(make([]byte, 0, 256+64*len(w.ag)))
	if err != nil {
		return nil, fmt.Errorf("grid snapshot: %w", err)
	}
	return b, nil
}

// appendSnapshot appends json.Marshal(w.snapshot()), with the agents
// (most of it at thousands of agents) encoded without reflection, from
// the world's own slices; every tick's hash is taken over it.
func (w *World) appendSnapshot(dst []byte) ([]byte, error) {
	s := w.snapshotMeta()
	rest, err := json.Marshal(s)
	if err != nil {
		return dst, err
	}
	// rest is {"v":...,"tick":N,"agents":null,"layers":...}: the agents go
	// in place of the null.
	const null = `"agents":null`
	if i := bytes.Index(rest, []byte(null)); i >= 0 {
		out := append(dst, rest[:i+len(`"agents":`)]...)
		if out, ok := w.appendSnapAgents(out); ok {
			return append(out, rest[i+len(null):]...), nil
		}
	}
	b, err := json.Marshal(w.snapshot())
	return append(dst, b...), err
}

// appendSnapAgents appends snapshot's agents as json.Marshal encodes
// them; ok is false when one needs what it does not do (an id to escape,
// a float with an exponent).
func (w *World) appendSnapAgents(b []byte) ([]byte, bool) {
	b = append(b, '[')
	var ok bool
	for i := range w.ag {
		a := &w.ag[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		if b, ok = jsonenc.AppendString(b, string(w.seats[i].ID)); !ok {
			return b, false
		}
		b = append(b, `,"active":`...)
		b = strconv.AppendBool(b, a.active)
		b = append(b, `,"pos":`...)
		b = strconv.AppendInt(b, int64(a.pos), 10)
		b = append(b, `,"energy":`...)
		if b, ok = jsonenc.AppendFloat(b, a.energy); !ok {
			return b, false
		}
		b = append(b, `,"last":[`...)
		b = strconv.AppendInt(b, int64(a.last[0]), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(a.last[1]), 10)
		b = append(b, "]}"...)
	}
	return append(b, ']'), true
}

// Restore replaces the state with a snapshot of a world built from the same
// config and seats. It stands in for Seed. On error the world is unchanged.
func (w *World) Restore(b []byte) error {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("grid restore: %w", err)
	}
	if s.V != snapshotVersion || s.Rules != w.c.Rules || s.Width != w.w || s.Height != w.h || len(s.Agents) != len(w.ag) {
		return fmt.Errorf("grid restore: snapshot is v%d %s %dx%d with %d agents; this world is v%d %s %dx%d with %d",
			s.V, s.Rules, s.Width, s.Height, len(s.Agents), snapshotVersion, w.c.Rules, w.w, w.h, len(w.ag))
	}
	if s.Tick < 0 || s.Tick > w.c.Horizon {
		return fmt.Errorf("grid restore: tick %d out of range 0..%d", s.Tick, w.c.Horizon)
	}
	ag := make([]agent, len(w.ag))
	for i, a := range s.Agents {
		if a.ID != w.seats[i].ID {
			return fmt.Errorf("grid restore: agent %d is %q, this world's is %q", i, a.ID, w.seats[i].ID)
		}
		if a.Pos < 0 || a.Pos >= w.cells() {
			return fmt.Errorf("grid restore: agent %s at cell %d, outside the grid", a.ID, a.Pos)
		}
		ag[i] = agent{group: w.ag[i].group, active: a.Active, pos: a.Pos, energy: a.Energy, last: a.Last}
	}
	layers := map[string]map[int]float64{}
	for name, cells := range s.Layers {
		l := make(map[int]float64, len(cells))
		for _, c := range cells {
			p := int(c[0])
			if p < 0 || p >= w.cells() {
				return fmt.Errorf("grid restore: layer %s has cell %d, outside the grid", name, p)
			}
			l[p] = c[1]
		}
		layers[name] = l
	}
	stats := map[string]*Summary{}
	for k, v := range s.Stats {
		v := v
		stats[k] = &v
	}
	w.ag, w.layers, w.stats, w.tick = ag, layers, stats, s.Tick
	w.first0, w.init0, w.firstN = s.First0, s.Initial, s.FirstN
	if w.first0 == nil {
		w.first0 = map[string]int{}
	}
	if w.firstN == nil {
		w.firstN = map[string]int{}
	}
	w.seeded = true
	w.rebuild()
	return nil
}

// StateHash is the hex SHA-256 of Snapshot's bytes.
func (w *World) StateHash() string {
	if !w.seeded {
		return ""
	}
	b, err := w.appendSnapshot(w.hashBuf[:0])
	if err != nil {
		return ""
	}
	w.hashBuf = b // reused: the bytes are only hashed
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// gini is the Gini coefficient of vals (0: all equal; 0 for no or zero wealth).
func gini(vals []float64) float64 {
	n := len(vals)
	if n == 0 {
		return 0
	}
	s := append([]float64(nil), vals...)
	sort.Float64s(s)
	var cum, total float64
	for i, v := range s {
		cum += float64(i+1) * v
		total += v
	}
	if total == 0 {
		return 0
	}
	return 2*cum/(float64(n)*total) - float64(n+1)/float64(n)
}
