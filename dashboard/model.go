package dashboard

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"

	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/observe"
	"github.com/terrarium-sim/terrarium/world"
)

// Limits of what a snapshot carries, so a page stays light whatever the
// run's size.
const (
	maxRosterRows = 2000 // agents listed (AgentsTotal counts them all)
	maxViolations = 20   // the latest violations
	maxRecent     = 30   // the latest events as lines
	maxPoints     = 1000 // points per metric series (older ones thinned)
	maxActionText = 60   // bytes of an agent's last action shown
)

// Snapshot is what a page gets, several times a second: the whole state
// it draws. Its JSON is the /api/state answer and each /api/stream message.
type Snapshot struct {
	Run      string `json:"run"`
	Scenario string `json:"scenario"`
	World    string `json:"world"`
	Stepping string `json:"stepping"`
	Seed     uint64 `json:"seed"`
	// Ticks is the tick limit (0: until the world is done); Tick the last
	// closed tick.
	Ticks  world.Tick `json:"ticks"`
	Tick   world.Tick `json:"tick"`
	WallUS int64      `json:"wall_us"` // the last tick's wall time
	// Status is starting, running, paused, then the run's end status
	// (finished, interrupted, aborted, failed); a recording is playing
	// or paused while it plays.
	Status string `json:"status"`
	// Source is "live" (a running host) or "recording" (terrarium ui
	// playing a finished run); Controls whether pause, step and resume
	// can be used (with the control token).
	Source   string `json:"source"`
	Controls bool   `json:"controls"`
	Seq      uint64 `json:"seq"` // the last event applied
	// EventTick is the tick of the last event applied: below Tick when
	// the events (the roster, leases, violations) trail the loop.
	EventTick world.Tick `json:"event_tick"`

	Agents      []AgentRow `json:"agents"`
	AgentsTotal int        `json:"agents_total"`
	Leases      []LeaseRow `json:"leases"`
	// Violations are the latest, newest first; ViolationsTotal counts all.
	Violations      []ViolationRow `json:"violations"`
	ViolationsTotal int            `json:"violations_total"`
	Recent          []string       `json:"recent"` // the latest events (not tick.closed), newest first

	// Series holds the metrics per tick: Ticks and one value list per
	// metric, aligned; older points are thinned to at most 1000.
	Series Series `json:"series"`
	// View is the world's picture at ViewTick (world.View), if it has one.
	View     json.RawMessage `json:"view,omitempty"`
	ViewTick world.Tick      `json:"view_tick"`
}

// AgentRow is one agent in the roster.
type AgentRow struct {
	ID       world.AgentID `json:"id"`
	Group    string        `json:"group"`
	State    string        `json:"state"` // spawned, ready, restarting, unhealthy, spent, exited (during the run), failed, stopped (at its end)
	Pid      int           `json:"pid,omitempty"`
	Restarts int           `json:"restarts"`
	Last     string        `json:"last"`      // its last applied action, shortened
	LastTick world.Tick    `json:"last_tick"` // when it was applied
	Filled   bool          `json:"filled"`    // the missing-action policy supplied it
	Actions  int           `json:"actions"`   // its own actions applied
	Missing  int           `json:"missing"`   // actions the policy filled in
	Note     string        `json:"note,omitempty"`
}

// LeaseRow is one lease held now.
type LeaseRow struct {
	Path   string        `json:"path"`
	Prefix bool          `json:"prefix"`
	Agent  world.AgentID `json:"agent"`
	Token  int64         `json:"token"`
	Since  world.Tick    `json:"since"`
}

// ViolationRow is one violation event.
type ViolationRow struct {
	Seq    uint64        `json:"seq"`
	Tick   world.Tick    `json:"tick"`
	Agent  world.AgentID `json:"agent"`
	What   string        `json:"what"` // the path or subject
	Reason string        `json:"reason"`
}

// Series is the metrics over ticks.
type Series struct {
	Names  []string             `json:"names"`
	Ticks  []world.Tick         `json:"ticks"`
	Values map[string][]float64 `json:"values"`
}

// Frame is what the run reports after a tick besides its events: the
// metrics and, now and then, the world's picture.
type Frame struct {
	Tick    world.Tick
	WallUS  int64 // the tick's wall time, when known
	Metrics map[string]float64
	View    *world.View // nil: unchanged since the last frame that had one
}

// model is the dashboard's state, built from the run's events and frames.
// The Server guards it with its mutex.
type model struct {
	snap    Snapshot
	agents  map[world.AgentID]*AgentRow
	order   []world.AgentID // spawn order, sorted at snapshot
	sorted  bool
	leases  map[int64]*LeaseRow
	viols   []ViolationRow  // ring, oldest first
	recent  []events.Record // the latest events but tick.closed, oldest first
	stride  world.Tick      // keep a point every stride ticks
	metrics []string        // names, in the world's order
	view    json.RawMessage
	line    bytes.Buffer
}

func newModel(source string, controls bool) *model {
	return &model{
		snap:   Snapshot{Status: "starting", Source: source, Controls: controls, Series: Series{Values: map[string][]float64{}}},
		agents: map[world.AgentID]*AgentRow{},
		leases: map[int64]*LeaseRow{},
		stride: 1,
	}
}

func (m *model) agent(id world.AgentID) *AgentRow {
	a := m.agents[id]
	if a == nil {
		a = &AgentRow{ID: id, State: "spawned"}
		m.agents[id] = a
		m.order = append(m.order, id)
		m.sorted = false
	}
	return a
}

// apply takes in one event.
func (m *model) apply(r events.Record) {
	m.snap.Seq = r.Seq
	m.snap.EventTick = max(m.snap.EventTick, r.Tick)
	if r.Kind != world.EventTickClosed {
		// Kept as they came; formatted when a snapshot is made (a flood of
		// refusals costs a copy each, not a line each).
		m.recent = append(m.recent, r)
		if len(m.recent) > 2*maxRecent {
			m.recent = append(m.recent[:0], m.recent[len(m.recent)-maxRecent:]...)
		}
	}
	switch r.Kind {
	case world.EventActionLate, world.EventActionRejected, world.EventActionMissing, events.MessagesDropped, events.BadMessage:
		return // nothing the state shows but the recent lines
	}
	var d map[string]json.RawMessage
	if len(r.Data) > 0 {
		_ = json.Unmarshal(r.Data, &d)
	}
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(d[k], &s)
		return s
	}
	num := func(k string) int64 {
		var n int64
		_ = json.Unmarshal(d[k], &n)
		return n
	}
	switch r.Kind {
	case events.RunStarted:
		m.snap.Run, m.snap.Scenario, m.snap.World, m.snap.Stepping = r.Run, str("scenario"), str("world"), str("stepping")
		m.snap.Ticks = world.Tick(num("ticks"))
		_ = json.Unmarshal(d["seed"], &m.snap.Seed)
	case world.EventTickClosed:
		if r.Tick >= m.snap.Tick {
			m.snap.Tick, m.snap.WallUS = r.Tick, num("wall_us")
		}
		if m.snap.Status == "starting" {
			m.snap.Status = "running"
		}
		var acts []world.AppliedAction
		_ = json.Unmarshal(d["actions"], &acts)
		for _, a := range acts {
			row := m.agent(a.Agent)
			row.Last, row.LastTick, row.Filled = shorten(a.Data), r.Tick, a.Filled != ""
			if a.Filled != "" {
				row.Missing++
			} else {
				row.Actions++
			}
		}
	case world.EventRunPaused:
		m.snap.Status = "paused"
	case world.EventRunUnpaused:
		m.snap.Status = "running"
	case events.RunFinished:
		m.snap.Status = str("status")
		m.snap.Tick = r.Tick
	case events.AgentSpawned:
		a := m.agent(r.Agent)
		a.State, a.Pid, a.Group = "spawned", int(num("pid")), str("group")
		a.Restarts = int(num("restart"))
	case events.AgentReady:
		m.agent(r.Agent).State = "ready"
	case events.AgentExited:
		a := m.agent(r.Agent)
		switch {
		case a.State == "failed" || a.State == "spent":
		case string(d["during_run"]) == "true":
			a.State = "exited" // left while the run went on
		default:
			a.State = "stopped" // at the end, as told
		}
		a.Note = str("reason")
		if a.Note == "" && str("signal") != "" {
			a.Note = "killed by " + str("signal")
		}
	case events.AgentRestarting:
		a := m.agent(r.Agent)
		a.State, a.Note = "restarting", str("after")
	case events.AgentFailed:
		a := m.agent(r.Agent)
		a.State, a.Note = "failed", str("reason")
	case events.AgentSpent:
		m.agent(r.Agent).State = "spent"
	case events.AgentUnhealthy:
		m.agent(r.Agent).State = "unhealthy"
	case "lease.granted":
		m.leases[num("token")] = &LeaseRow{Path: str("path"), Prefix: string(d["prefix"]) == "true", Agent: r.Agent, Token: num("token"), Since: r.Tick}
	case "lease.released", "lease.expired":
		delete(m.leases, num("token"))
	case events.Violation:
		what := str("path")
		if what == "" {
			what = str("subject")
		}
		m.snap.ViolationsTotal++
		m.viols = append(m.viols, ViolationRow{Seq: r.Seq, Tick: r.Tick, Agent: r.Agent, What: what, Reason: str("reason")})
		if len(m.viols) > maxViolations {
			m.viols = m.viols[len(m.viols)-maxViolations:]
		}
	}
}

// frame takes in a tick's metrics and view.
func (m *model) frame(f Frame, view json.RawMessage) {
	// The loop's own report: the tick shows at once, even while the
	// events behind it are still on their way (EventTick says how far).
	if f.Tick > m.snap.Tick {
		m.snap.Tick = f.Tick
		if f.WallUS > 0 {
			m.snap.WallUS = f.WallUS
		}
		if m.snap.Status == "starting" {
			m.snap.Status = "running"
		}
	}
	if view != nil {
		m.view, m.snap.ViewTick = view, f.Tick
	}
	if len(f.Metrics) == 0 {
		return
	}
	s := &m.snap.Series
	if m.metrics == nil {
		for k := range f.Metrics {
			m.metrics = append(m.metrics, k)
		}
		sort.Strings(m.metrics)
		s.Names = m.metrics
	}
	if n := len(s.Ticks); n > 0 && f.Tick <= s.Ticks[n-1] {
		return // a tick seen already
	}
	// Between points on the stride only the newest point stays (and the
	// first, so a chart starts where the run did).
	if n := len(s.Ticks); n > 1 && s.Ticks[n-1]%m.stride != 0 {
		s.Ticks = s.Ticks[:n-1]
		for _, k := range m.metrics {
			s.Values[k] = s.Values[k][:n-1]
		}
	}
	s.Ticks = append(s.Ticks, f.Tick)
	for _, k := range m.metrics {
		s.Values[k] = append(s.Values[k], f.Metrics[k])
	}
	if len(s.Ticks) > maxPoints {
		m.stride *= 2
		m.thin()
	}
}

// thin keeps the points on the stride, the first and the newest.
func (m *model) thin() {
	s := &m.snap.Series
	n := len(s.Ticks)
	idx := make([]int, 0, n/2+1)
	for i, t := range s.Ticks {
		if t%m.stride == 0 || i == 0 || i == n-1 {
			idx = append(idx, i)
		}
	}
	ticks := make([]world.Tick, len(idx))
	for j, i := range idx {
		ticks[j] = s.Ticks[i]
	}
	s.Ticks = ticks
	for _, k := range m.metrics {
		v := s.Values[k]
		nv := make([]float64, len(idx))
		for j, i := range idx {
			nv[j] = v[i]
		}
		s.Values[k] = nv
	}
}

// snapshot encodes the state for the pages.
func (m *model) snapshot() ([]byte, error) {
	if !m.sorted {
		sort.Slice(m.order, func(i, j int) bool { return m.order[i] < m.order[j] })
		m.sorted = true
	}
	s := m.snap
	s.AgentsTotal = len(m.order)
	s.Agents = make([]AgentRow, 0, min(len(m.order), maxRosterRows))
	for _, id := range m.order[:min(len(m.order), maxRosterRows)] {
		s.Agents = append(s.Agents, *m.agents[id])
	}
	s.Leases = make([]LeaseRow, 0, len(m.leases))
	for _, l := range m.leases {
		s.Leases = append(s.Leases, *l)
	}
	sort.Slice(s.Leases, func(i, j int) bool { return s.Leases[i].Token < s.Leases[j].Token })
	s.Violations = make([]ViolationRow, 0, len(m.viols))
	for i := len(m.viols) - 1; i >= 0; i-- {
		s.Violations = append(s.Violations, m.viols[i])
	}
	s.Recent = make([]string, 0, maxRecent)
	for i := len(m.recent) - 1; i >= 0 && len(s.Recent) < maxRecent; i-- {
		m.line.Reset()
		_ = observe.WriteLine(&m.line, m.recent[i])
		s.Recent = append(s.Recent, strings.TrimSuffix(m.line.String(), "\n"))
	}
	s.View = m.view
	return json.Marshal(s)
}

// shorten renders an action's JSON for the roster.
func shorten(data json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, data) != nil {
		b.Reset()
		b.Write(data)
	}
	s := strings.ToValidUTF8(b.String(), "\uFFFD")
	if len(s) > maxActionText {
		s = s[:maxActionText] + "…"
	}
	return s
}
