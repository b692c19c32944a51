package world

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Missing-action policies (the scenario's missing_action).
const (
	PolicyDefault = "default" // apply World.DefaultAction
	PolicyRepeat  = "repeat"  // repeat the agent's last applied action (default action if none)
	PolicyAbort   = "abort"   // end the run with ErrAborted
)

// Event kinds the loop emits (documented in docs/events.md).
const (
	EventTickClosed     = "tick.closed"
	EventActionLate     = "action.late"
	EventActionRejected = "action.rejected"
	EventActionMissing  = "action.missing"
	EventTickLag        = "tick.lag"
	EventRunPaused      = "run.paused"
	EventRunUnpaused    = "run.unpaused"
)

// Stepping modes (the scenario's stepping).
const (
	SteppingLockstep  = "lockstep"   // every tick waits for all agents or the deadline
	SteppingRealtime  = "realtime"   // fixed tick rate; never waits for an agent
	SteppingTurnBased = "turn_based" // one agent per tick, in the order the world declares
)

// DefaultMaxCatchUp is how many overdue realtime ticks run back to back
// before the rest of the lag is dropped (LoopConfig.MaxCatchUp).
const DefaultMaxCatchUp = 3

// ErrStopped is returned by Step when the loop is not running any more
// (the world ended, the tick limit was reached, or Run returned an error).
var ErrStopped = errors.New("loop stopped")

// ErrNotManual is returned by Step on a loop the clock drives.
var ErrNotManual = errors.New("loop is not manual: its clock drives the ticks")

// ErrManual is returned by Pause, Resume and StepPaused on a Manual loop:
// the embedding program's Step calls decide when it ticks.
var ErrManual = errors.New("loop is manual: its Step calls drive the ticks, pause them there")

// Turns is implemented by a World stepped turn-based: Turn names the one
// agent whose turn tick t is ("" for no one: the tick steps with no action).
// It is called once per tick, before Observe.
type Turns interface {
	Turn(t Tick) AgentID
}

// Rejection reasons carried by action.rejected events.
const (
	RejectDuplicate  = "duplicate"  // a second action for a tick already answered
	RejectFuture     = "future"     // tagged with a tick that has not started
	RejectUnexpected = "unexpected" // the agent was not observed at this tick
	RejectInvalid    = "invalid"    // World.Validate refused it
	// RejectSuppressed summarises the refusals of one agent at one tick
	// beyond MaxRefusalEvents, which got no event of their own.
	RejectSuppressed = "suppressed"
)

// MaxRefusalEvents is how many action.late and action.rejected events one
// agent gets per tick; the rest are counted (AgentStats) and summarised in
// one "suppressed" event when the tick closes.
const MaxRefusalEvents = 16

// ErrAborted is returned by Run when the missing-action policy is abort and an
// agent sent no action in time.
var ErrAborted = errors.New("run aborted")

// Agents is how the loop reaches agent processes; the host implements it.
type Agents interface {
	// Send delivers agent id's observation for tick t, to be answered before
	// deadline. It must not block for long. An error counts as an undelivered
	// observation: the agent's action will be missing.
	Send(id AgentID, t Tick, deadline time.Time, obs json.RawMessage) error
}

// SendBatcher is implemented by Agents that batch observations (agent
// pools): after the last Send of tick t the loop calls SendsDone(t), which
// sends what Send queued. It must not block for long.
type SendBatcher interface {
	SendsDone(t Tick)
}

// sendsDone tells a batching Agents that tick t's sends are done.
func sendsDone(a Agents, t Tick) {
	if b, ok := a.(SendBatcher); ok {
		b.SendsDone(t)
	}
}

// EventSink receives the loop's events, in order, from the loop's goroutine.
type EventSink interface {
	Emit(kind string, t Tick, agent AgentID, data map[string]any)
}

// TickReport is what the loop tells its observer after each tick.
type TickReport struct {
	Tick    Tick
	Elapsed time.Duration // from sending the first observation to the end of Step
	Metrics map[string]float64
	Hash    string
	// Answered lists the agents whose own action was applied at this tick;
	// Missing those observed at it whose action the policy filled in. Both
	// are sorted by agent id.
	Answered []AgentID
	Missing  []AgentID
	// Behind is, in realtime, how late the tick was applied after its
	// boundary (0 when on time; always 0 when Manual).
	Behind time.Duration
}

// LoopConfig configures a lockstep loop.
type LoopConfig struct {
	World    World
	Agents   Agents
	Events   EventSink
	Seats    []Seat
	Seed     uint64
	Ticks    Tick          // stop after this tick; 0 = when the world is done
	Deadline time.Duration // per-tick action deadline (> 0)
	Missing  string        // PolicyDefault, PolicyRepeat or PolicyAbort
	// OnTick, if set, is called from the loop's goroutine after every tick.
	OnTick func(TickReport)

	// Stepping is SteppingLockstep (default), SteppingRealtime or
	// SteppingTurnBased (the World must implement Turns).
	Stepping string
	// TickInterval is the time between realtime ticks (1 / tick rate).
	// Required for realtime unless Manual.
	TickInterval time.Duration
	// MaxCatchUp is how many overdue realtime ticks run back to back when
	// the loop fell behind; beyond that the lag is dropped and reported
	// (a tick.lag event). Default DefaultMaxCatchUp.
	MaxCatchUp int
	// Clock is the loop's time source (default WallClock()).
	Clock Clock
	// Manual makes the loop run a tick only when Step is called: the
	// embedding program's loop drives, and the clock decides nothing but
	// lockstep and turn-based deadlines.
	Manual bool
	// From, if set, is where the loop goes on from (a resumed or forked
	// run): its first tick is From.Tick+1. The world must already be in the
	// state of that tick (World.Restore). Lockstep and turn-based only.
	From *LoopState
}

// LoopState is what the loop carries from one tick to the next, besides
// the world: the last closed tick, each agent's last applied action (for
// the repeat policy) and the counts so far. A checkpoint stores it.
type LoopState struct {
	Tick  Tick                        `json:"tick"`
	Last  map[AgentID]json.RawMessage `json:"last,omitempty"`
	Stats map[AgentID]AgentStats      `json:"stats,omitempty"`
}

// AppliedAction is one entry of a tick.closed event's "actions": an action
// applied at the tick. Its fields are in the JSON's (alphabetical) order.
type AppliedAction struct {
	// ActionTick is, for a realtime action applied after its own tick, the
	// tick it answered; LateTicks how many ticks later it was applied and
	// LateUS how long after that tick closed it arrived (when known).
	ActionTick Tick            `json:"action_tick,omitempty"`
	Agent      AgentID         `json:"agent"`
	Data       json.RawMessage `json:"data"`
	Filled     string          `json:"filled,omitempty"` // the policy that supplied it, if any
	LateTicks  Tick            `json:"late_ticks,omitempty"`
	LateUS     *int64          `json:"late_us,omitempty"`
}

// AgentStats counts what the loop saw from one agent.
type AgentStats struct {
	Actions  int `json:"actions"`  // applied actions it sent
	Missing  int `json:"missing"`  // ticks it was observed at and sent nothing in time
	Late     int `json:"late"`     // actions for ticks already closed
	Rejected int `json:"rejected"` // duplicates, future ticks, invalid or unexpected actions
	// Replaced counts, in realtime, actions replaced by a later one of the
	// same agent before they were applied (the latest wins).
	Replaced int `json:"replaced,omitempty"`
}

// Summary is the loop's outcome.
type Summary struct {
	Ticks Tick                   // ticks completed
	Hash  string                 // state hash after the last completed tick
	Stats map[AgentID]AgentStats // per agent
}

// Loop steps a World in lockstep: at each tick every live agent the world
// observes gets its observation; the tick closes when all of them answered,
// left, or the deadline passed. One goroutine (Run's) owns the world.
//
// Deliver and Gone may be called from any goroutine, at any time, including
// before Run starts and after it returned (then they are dropped).
type Loop struct {
	cfg LoopConfig
	// Delivered actions wait in inQ (at most inCap); inReady tells the
	// loop that inQ became non-empty, so a tick's N actions wake the loop
	// a few times, not N times. A sender finding inQ full waits for inRoom,
	// closed when the loop empties it.
	inMu    sync.Mutex
	inQ     []Action
	inSpare []Action // the batch the loop gave back, reused as inQ
	inCap   int
	inRoom  chan struct{}
	inReady chan struct{}
	// Membership changes (Gone, Back) wait in mem, latest per agent wins;
	// memCh tells the loop there are some. Senders never block.
	memMu    sync.Mutex
	mem      map[AgentID]bool
	memCh    chan struct{}
	stopped  chan struct{}
	stopOnce sync.Once
	clock    Clock
	steps    chan chan stepResult // Step's requests (Manual)

	// The pause gate (Pause, Resume, StepPaused), checked between ticks.
	pause *Gate

	// Owned by Run's goroutine; State reads them from OnTick. seats is
	// the lockstep loop's; last and sum the realtime loop's.
	closed Tick
	seats  *seatState
	last   map[AgentID]json.RawMessage
	sum    *Summary
}

// State returns a copy of the loop's state after the last closed tick.
// Call it only from OnTick, or after Run returned.
func (l *Loop) State() LoopState {
	if ss := l.seats; ss != nil {
		return LoopState{Tick: l.closed, Last: ss.lastMap(l.cfg.Seats), Stats: ss.statsMap(l.cfg.Seats)}
	}
	st := LoopState{Tick: l.closed, Last: make(map[AgentID]json.RawMessage, len(l.last)), Stats: map[AgentID]AgentStats{}}
	for k, v := range l.last {
		st.Last[k] = v
	}
	if l.sum != nil {
		for k, v := range l.sum.Stats {
			st.Stats[k] = v
		}
	}
	return st
}

type stepResult struct {
	rep TickReport
	err error
}

// NewLoop checks cfg and returns a loop ready to Run.
func NewLoop(cfg LoopConfig) (*Loop, error) {
	switch {
	case cfg.World == nil:
		return nil, errors.New("new loop: no world")
	case cfg.Agents == nil:
		return nil, errors.New("new loop: no agents")
	case cfg.Events == nil:
		return nil, errors.New("new loop: no event sink")
	case cfg.Deadline <= 0:
		return nil, errors.New("new loop: action deadline must be > 0")
	}
	switch cfg.Missing {
	case PolicyDefault, PolicyRepeat, PolicyAbort:
	case "":
		cfg.Missing = PolicyDefault
	default:
		return nil, fmt.Errorf("new loop: unknown missing-action policy %q", cfg.Missing)
	}
	switch cfg.Stepping {
	case "":
		cfg.Stepping = SteppingLockstep
	case SteppingLockstep:
	case SteppingRealtime:
		if cfg.TickInterval <= 0 && !cfg.Manual {
			return nil, errors.New("new loop: realtime needs a tick interval > 0 (or Manual)")
		}
		if cfg.Missing == PolicyAbort {
			return nil, errors.New(`new loop: realtime never waits for an agent, so missing-action policy "abort" does not apply: use "default" or "repeat"`)
		}
		if cfg.From != nil {
			return nil, errors.New("new loop: going on from a checkpoint (resume, fork) is not supported with realtime stepping yet")
		}
	case SteppingTurnBased:
		if _, ok := cfg.World.(Turns); !ok {
			return nil, fmt.Errorf("new loop: turn-based stepping needs a world that declares the order (implements world.Turns); %T does not", cfg.World)
		}
	default:
		return nil, fmt.Errorf("new loop: unknown stepping %q (want lockstep, realtime or turn_based)", cfg.Stepping)
	}
	if cfg.MaxCatchUp <= 0 {
		cfg.MaxCatchUp = DefaultMaxCatchUp
	}
	clock := cfg.Clock
	if clock == nil {
		clock = WallClock()
	}
	seats := slices.Clone(cfg.Seats)
	sort.Slice(seats, func(i, j int) bool { return seats[i].ID < seats[j].ID })
	cfg.Seats = seats
	return &Loop{
		cfg:     cfg,
		inCap:   max(1024, 2*len(seats)),
		inReady: make(chan struct{}, 1),
		mem:     map[AgentID]bool{},
		memCh:   make(chan struct{}, 1),
		stopped: make(chan struct{}),
		clock:   clock,
		steps:   make(chan chan stepResult),
		pause:   NewGate(),
	}, nil
}

// Pause makes the loop stop before its next tick until Resume: between
// ticks, so no agent is waited for and no deadline runs while it is
// paused. In realtime the rate starts afresh on Resume (no catch-up for
// the time paused). It returns ErrManual on a Manual loop. Pause, Resume
// and StepPaused may be called from any goroutine, at any time.
func (l *Loop) Pause() error { return l.setGate(l.pause.Pause) }

// Resume lets a paused loop go on.
func (l *Loop) Resume() error { return l.setGate(l.pause.Resume) }

// StepPaused lets a paused loop run one more tick (each call one tick),
// then wait again; on a loop that is not paused it does nothing.
func (l *Loop) StepPaused() error { return l.setGate(func() { l.pause.Step() }) }

// Paused reports whether Pause was called without a Resume since.
func (l *Loop) Paused() bool { return l.pause.Paused() }

func (l *Loop) setGate(f func()) error {
	if l.cfg.Manual {
		return ErrManual
	}
	f()
	return nil
}

// gate waits, between ticks, while the loop is paused and has no credit
// to run a tick. It emits run.paused (at the last closed tick) when it
// starts waiting and run.unpaused when Resume ends the wait. onActions
// and onMembers take in the actions and membership changes that arrive
// while it waits. waited reports that it did wait (realtime then starts
// its rate afresh).
func (l *Loop) gate(ctx context.Context, closed Tick, onActions, onMembers func()) (waited bool, err error) {
	var since time.Time
	for {
		pass, paused := l.pause.Pass()
		if pass {
			if waited && !paused {
				l.cfg.Events.Emit(EventRunUnpaused, closed, "", map[string]any{"paused_ms": l.clock.Now().Sub(since).Milliseconds()})
			}
			return waited, nil
		}
		if !waited {
			waited, since = true, l.clock.Now()
			l.cfg.Events.Emit(EventRunPaused, closed, "", map[string]any{})
		}
		select {
		case <-l.pause.Changed():
		case <-l.inReady:
			onActions()
		case <-l.memCh:
			onMembers()
		case <-ctx.Done():
			return waited, ctx.Err()
		}
	}
}

// Stop makes every pending and later Deliver and Gone return at once. Run
// calls it when it returns; a host whose Run never started calls it so that
// no sender is left blocked. Safe to call more than once.
func (l *Loop) Stop() {
	l.stopOnce.Do(func() { close(l.stopped) })
}

// Step runs exactly one tick of a Manual loop and returns its report. It
// may be called from any goroutine, one call at a time; it returns
// ErrStopped once the loop has ended (its last tick's Step got the report),
// ErrNotManual on a loop its clock drives, and ctx's error if ctx ends
// first (the tick it asked for still runs).
func (l *Loop) Step(ctx context.Context) (TickReport, error) {
	if !l.cfg.Manual {
		return TickReport{}, ErrNotManual
	}
	req := make(chan stepResult, 1)
	select {
	case l.steps <- req:
	case <-l.stopped:
		return TickReport{}, ErrStopped
	case <-ctx.Done():
		return TickReport{}, ctx.Err()
	}
	select {
	case res := <-req:
		return res.rep, res.err
	case <-l.stopped:
		select {
		case res := <-req: // answered just before the loop ended
			return res.rep, res.err
		default:
			return TickReport{}, ErrStopped
		}
	case <-ctx.Done():
		return TickReport{}, ctx.Err()
	}
}

// waitStep waits for a Step call (Manual loops only).
func (l *Loop) waitStep(ctx context.Context) (chan stepResult, error) {
	select {
	case req := <-l.steps:
		return req, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Deliver hands the loop an action received from agent a.Agent. It blocks
// while the loop's inbox is full (1024 actions, or two per seat if more),
// until the loop takes them or stops.
func (l *Loop) Deliver(a Action) {
	for {
		l.inMu.Lock()
		if len(l.inQ) < l.inCap {
			l.inQ = append(l.inQ, a)
			first := len(l.inQ) == 1
			l.inMu.Unlock()
			if first {
				select {
				case l.inReady <- struct{}{}:
				default: // the loop has been told already
				}
			}
			return
		}
		if l.inRoom == nil {
			l.inRoom = make(chan struct{})
		}
		room := l.inRoom
		l.inMu.Unlock()
		select {
		case <-room:
		case <-l.stopped:
			return
		}
	}
}

// DeliverAll hands the loop several actions at once (an agent pool's
// batch, a worker's share of in-process agents), in order: as Deliver for
// each, with one lock round trip while the inbox has room.
func (l *Loop) DeliverAll(as []Action) {
	for len(as) > 0 {
		l.inMu.Lock()
		n := min(len(as), l.inCap-len(l.inQ))
		if n > 0 {
			first := len(l.inQ) == 0
			l.inQ = append(l.inQ, as[:n]...)
			as = as[n:]
			l.inMu.Unlock()
			if first {
				select {
				case l.inReady <- struct{}{}:
				default: // the loop has been told already
				}
			}
			continue
		}
		l.inMu.Unlock()
		// Full: wait for room as Deliver does.
		l.Deliver(as[0])
		as = as[1:]
	}
}

// takeInbox returns every action delivered so far, in delivery order, and
// empties the inbox; the caller hands the batch back with giveBack.
func (l *Loop) takeInbox() []Action {
	l.inMu.Lock()
	defer l.inMu.Unlock()
	q := l.inQ
	l.inQ, l.inSpare = l.inSpare[:0], nil
	if l.inRoom != nil {
		close(l.inRoom)
		l.inRoom = nil
	}
	return q
}

// giveBack returns a judged batch for reuse.
func (l *Loop) giveBack(q []Action) {
	clear(q) // drop the payloads
	l.inMu.Lock()
	if l.inSpare == nil {
		l.inSpare = q[:0]
	}
	l.inMu.Unlock()
}

// Gone tells the loop that agent id has left (exited or was stopped): it is
// not waited for at the current tick and not observed again until Back.
// It never blocks.
func (l *Loop) Gone(id AgentID) { l.setMember(id, false) }

// Back tells the loop that agent id is live again (restarted and ready): it
// is observed from the next tick on. It never blocks.
func (l *Loop) Back(id AgentID) { l.setMember(id, true) }

func (l *Loop) setMember(id AgentID, live bool) {
	l.memMu.Lock()
	l.mem[id] = live
	l.memMu.Unlock()
	select {
	case l.memCh <- struct{}{}:
	default:
	}
}

// members takes the pending membership changes, sorted by agent id.
func (l *Loop) members() []memberChange {
	l.memMu.Lock()
	defer l.memMu.Unlock()
	out := make([]memberChange, 0, len(l.mem))
	for id, live := range l.mem {
		out = append(out, memberChange{id, live})
	}
	clear(l.mem)
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

type memberChange struct {
	id   AgentID
	live bool
}

// TickRNG is the seeded generator the loop gives World.Step at tick t. It
// depends only on the scenario seed and the tick.
func TickRNG(seed uint64, t Tick) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(t)^0x9e3779b97f4a7c15))
}

// AgentSeed derives a per-agent seed from the scenario seed.
func AgentSeed(seed uint64, id AgentID) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(seed >> (8 * i))
	}
	h.Write(b[:])
	h.Write([]byte(id))
	return h.Sum64()
}

// tickState is the collection state of the tick being run. Its slices
// are indexed by seat (seats.key), reused from tick to tick.
type tickState struct {
	t        Tick
	expected []bool   // observed at t and still live
	got      []Action // first valid action per agent (where gotOK)
	gotOK    []bool
	waiting  int
}

// seatState is what the lockstep loop keeps per agent, in slices indexed
// by seat: at 10,000 agents maps keyed by id were a sixth of a tick.
// Seats with the same id share the index of the first of them (key).
type seatState struct {
	index map[AgentID]int // id -> index of its first seat
	key   []int           // seat position -> index
	live  []bool
	last  []json.RawMessage // last applied action (where hasLast)
	has   []bool
	stats []AgentStats // where touched
	touch []bool
	// What a LoopState carried for ids that are not seats of this run.
	extraLast  map[AgentID]json.RawMessage
	extraStats map[AgentID]AgentStats
}

func newSeatState(seats []Seat, from *LoopState) *seatState {
	n := len(seats)
	s := &seatState{index: make(map[AgentID]int, n), key: make([]int, n), live: make([]bool, n),
		last: make([]json.RawMessage, n), has: make([]bool, n), stats: make([]AgentStats, n), touch: make([]bool, n),
		extraLast: map[AgentID]json.RawMessage{}, extraStats: map[AgentID]AgentStats{}}
	for p, seat := range seats {
		k, dup := s.index[seat.ID]
		if !dup {
			k = p
			s.index[seat.ID] = p
		}
		s.key[p] = k
		s.live[k] = true
	}
	if from != nil {
		for id, v := range from.Last {
			if k, ok := s.index[id]; ok {
				s.last[k], s.has[k] = v, true
			} else {
				s.extraLast[id] = v
			}
		}
		for id, v := range from.Stats {
			if k, ok := s.index[id]; ok {
				s.stats[k], s.touch[k] = v, true
			} else {
				s.extraStats[id] = v
			}
		}
	}
	return s
}

// statsMap returns the counts as Summary.Stats has them: every agent
// counted at least once.
func (s *seatState) statsMap(seats []Seat) map[AgentID]AgentStats {
	m := make(map[AgentID]AgentStats, len(seats)+len(s.extraStats))
	for id, v := range s.extraStats {
		m[id] = v
	}
	for p, seat := range seats {
		if k := s.key[p]; k == p && s.touch[k] {
			m[seat.ID] = s.stats[k]
		}
	}
	return m
}

func (s *seatState) lastMap(seats []Seat) map[AgentID]json.RawMessage {
	m := make(map[AgentID]json.RawMessage, len(seats)+len(s.extraLast))
	for id, v := range s.extraLast {
		m[id] = v
	}
	for p, seat := range seats {
		if k := s.key[p]; k == p && s.has[k] {
			m[seat.ID] = s.last[k]
		}
	}
	return m
}

// Run steps the world until it is done, the tick limit is reached, ctx is
// done (it then returns ctx's error and the summary so far) or the missing
// policy aborts (ErrAborted).
func (l *Loop) Run(ctx context.Context) (Summary, error) {
	defer l.Stop()
	if l.cfg.Stepping == SteppingRealtime {
		return l.runRealtime(ctx)
	}
	seats := l.cfg.Seats
	ss := newSeatState(seats, l.cfg.From)
	sum := Summary{Hash: l.cfg.World.StateHash()}
	var closed Tick // last closed tick
	if f := l.cfg.From; f != nil {
		closed, sum.Ticks = f.Tick, f.Tick
	}
	// ret fills in the counts: every return goes through it.
	ret := func(err error) (Summary, error) {
		sum.Stats = ss.statsMap(seats)
		return sum, err
	}
	l.seats, l.closed = ss, closed
	cur := &tickState{expected: make([]bool, len(seats)), got: make([]Action, len(seats)), gotOK: make([]bool, len(seats))}
	turns, _ := l.cfg.World.(Turns)
	if l.cfg.Stepping != SteppingTurnBased {
		turns = nil
	}
	var tc tickClosed
	_, rawSink := l.cfg.Events.(RawEventSink)
	var spare []AppliedAction // the last tick's, when the sink did not keep it

	// refused emits an action.late or action.rejected event, at most
	// MaxRefusalEvents per agent per tick: a flooding agent is counted in full
	// but summarised in the event log (reason "suppressed").
	noisy := map[AgentID]int{}
	refused := func(kind string, t Tick, id AgentID, data map[string]any) {
		noisy[id]++
		if noisy[id] <= MaxRefusalEvents {
			l.cfg.Events.Emit(kind, t, id, data)
		}
	}
	bump := func(k int) *AgentStats {
		ss.touch[k] = true
		return &ss.stats[k]
	}
	// judge takes one incoming action against the current tick (cur may be nil
	// between ticks).
	judge := func(a Action, cur *tickState) {
		k, known := ss.index[a.Agent]
		if !known {
			return // not an agent of this run (cannot happen through the bus)
		}
		switch {
		case a.Tick <= closed:
			bump(k).Late++
			refused(EventActionLate, closed, a.Agent, map[string]any{"action_tick": a.Tick})
			return
		case cur == nil || a.Tick > cur.t:
			at := closed // between ticks: it belongs to the last closed one
			if cur != nil {
				at = cur.t
			}
			bump(k).Rejected++
			refused(EventActionRejected, at, a.Agent, map[string]any{"action_tick": a.Tick, "reason": RejectFuture})
			return
		}
		reject := func(reason string, detail string) {
			bump(k).Rejected++
			d := map[string]any{"action_tick": a.Tick, "reason": reason}
			if detail != "" {
				d["detail"] = detail
			}
			refused(EventActionRejected, cur.t, a.Agent, d)
		}
		if cur.gotOK[k] {
			reject(RejectDuplicate, "")
			return
		}
		if !cur.expected[k] {
			reject(RejectUnexpected, "")
			return
		}
		if err := l.cfg.World.Validate(a); err != nil {
			reject(RejectInvalid, err.Error())
			return
		}
		cur.got[k], cur.gotOK[k] = a, true
		cur.waiting--
	}
	join := func(id AgentID) {
		if k, known := ss.index[id]; known {
			ss.live[k] = true // observed from the next tick on
		}
	}
	leave := func(id AgentID, cur *tickState) {
		k, known := ss.index[id]
		if !known || !ss.live[k] {
			return
		}
		ss.live[k] = false
		// An action it already sent for this tick stands; otherwise it is
		// no longer waited for and gets no action.
		if cur != nil && cur.expected[k] && !cur.gotOK[k] {
			cur.expected[k] = false
			cur.waiting--
		}
	}

	for {
		if l.cfg.World.Done() || (l.cfg.Ticks > 0 && closed >= l.cfg.Ticks) {
			return ret(nil)
		}
		if err := ctx.Err(); err != nil {
			return ret(err)
		}
		var reply chan stepResult
		if l.cfg.Manual {
			var err error
			if reply, err = l.waitStep(ctx); err != nil {
				return ret(err)
			}
		} else {
			onMembers := func() {
				for _, m := range l.members() {
					if m.live {
						join(m.id)
					} else {
						leave(m.id, nil)
					}
				}
			}
			if _, err := l.gate(ctx, closed, func() { l.drainInbox(judge, nil) }, onMembers); err != nil {
				return ret(err)
			}
		}
		// Take in what arrived between ticks (departures first).
		l.drain(judge, leave, join, nil)

		// The tick's slices are reused: cleared, they keep their room.
		clear(cur.expected)
		clear(cur.gotOK)
		clear(cur.got) // drop last tick's payloads
		cur.t, cur.waiting = closed+1, 0
		start := l.clock.Now()
		deadline := start.Add(l.cfg.Deadline)
		var turn AgentID
		if turns != nil {
			turn = turns.Turn(cur.t)
			if k, known := ss.index[turn]; turn != "" && (!known || !ss.live[k]) {
				// Its turn passes with no action: it has left.
				l.cfg.Events.Emit(EventActionMissing, cur.t, turn, map[string]any{"policy": l.cfg.Missing, "reason": "gone"})
			}
		}
		nObserved := 0
		for p, s := range seats {
			k := ss.key[p]
			if !ss.live[k] || (turns != nil && s.ID != turn) {
				continue
			}
			obs, ok, err := l.cfg.World.Observe(s.ID, cur.t)
			if err != nil {
				return ret(fmt.Errorf("tick %d: observe %s: %w", cur.t, s.ID, err))
			}
			if !ok {
				continue
			}
			cur.expected[k] = true
			cur.waiting++
			nObserved++
			// A failed send is logged by the host; the action will be missing.
			_ = l.cfg.Agents.Send(s.ID, cur.t, deadline, obs)
		}
		sendsDone(l.cfg.Agents, cur.t)
		timer := l.clock.NewTimer(l.cfg.Deadline)
	collect:
		for cur.waiting > 0 {
			select {
			case <-l.inReady:
				l.drainInbox(judge, cur)
			case <-l.memCh:
				// An action the agent sent before it left may already be
				// queued: take it first, so it stands.
				l.drainInbox(judge, cur)
				for _, m := range l.members() {
					if m.live {
						join(m.id)
					} else {
						leave(m.id, cur)
					}
				}
			case <-timer.C():
				break collect
			case <-ctx.Done():
				timer.Stop()
				return ret(ctx.Err())
			}
		}
		timer.Stop()

		// Close the tick: fill what is missing by policy.
		actions := make([]Action, 0, nObserved)
		applied := spare[:0]
		if cap(applied) < nObserved {
			applied = make([]AppliedAction, 0, nObserved)
		}
		answered := make([]AgentID, 0, nObserved) // counted once the tick is applied
		var missing []AgentID
		for p, s := range seats {
			id, k := s.ID, ss.key[p]
			if !cur.expected[k] {
				continue
			}
			a, ok := cur.got[k], cur.gotOK[k]
			rec := AppliedAction{Agent: id}
			if ok {
				answered = append(answered, id)
			} else {
				missing = append(missing, id)
				bump(k).Missing++
				l.cfg.Events.Emit(EventActionMissing, cur.t, id, map[string]any{"policy": l.cfg.Missing})
				if l.cfg.Missing == PolicyAbort {
					return ret(fmt.Errorf("%w: agent %s sent no action for tick %d within %s", ErrAborted, id, cur.t, l.cfg.Deadline))
				}
				a = Action{Agent: id, Tick: cur.t}
				if ss.has[k] && l.cfg.Missing == PolicyRepeat {
					a.Data = ss.last[k]
					rec.Filled = PolicyRepeat
				} else {
					a.Data = l.cfg.World.DefaultAction(id, cur.t)
					rec.Filled = PolicyDefault
				}
			}
			ss.last[k], ss.has[k] = a.Data, true
			rec.Data = a.Data
			actions = append(actions, a)
			applied = append(applied, rec)
		}
		if len(answered) == 0 {
			answered = nil
		}
		res, err := l.cfg.World.Step(cur.t, actions, TickRNG(l.cfg.Seed, cur.t))
		if err != nil {
			return ret(fmt.Errorf("tick %d: step: %w", cur.t, err))
		}
		for p := range seats {
			if k := ss.key[p]; cur.gotOK[k] {
				bump(k).Actions++
			}
		}
		closed = cur.t
		l.closed = closed
		sum.Ticks = closed
		sum.Hash = l.cfg.World.StateHash()
		elapsed := l.clock.Now().Sub(start)
		for _, e := range res.Events {
			kind := e.Kind
			if !strings.Contains(kind, ".") {
				kind = "world." + kind
			}
			l.cfg.Events.Emit(kind, closed, e.Agent, e.Fields)
		}
		if len(noisy) > 0 {
			for _, s := range seats {
				if n := noisy[s.ID] - MaxRefusalEvents; n > 0 {
					l.cfg.Events.Emit(EventActionRejected, closed, s.ID, map[string]any{"reason": RejectSuppressed, "count": n})
				}
			}
			clear(noisy)
		}
		tc.emit(l.cfg.Events, closed, applied, sum.Hash, elapsed.Microseconds(), 0)
		if rawSink {
			clear(applied) // encoded, not kept: reused next tick
			spare = applied
		}
		rep := TickReport{Tick: closed, Elapsed: elapsed, Metrics: res.Metrics, Hash: sum.Hash, Answered: answered, Missing: missing}
		if l.cfg.OnTick != nil {
			l.cfg.OnTick(rep)
		}
		if reply != nil {
			reply <- stepResult{rep: rep}
		}
	}
}

// drain judges everything already queued without waiting.
func (l *Loop) drain(judge func(Action, *tickState), leave func(AgentID, *tickState), join func(AgentID), cur *tickState) {
	for {
		select {
		case <-l.memCh:
			for _, m := range l.members() {
				if m.live {
					join(m.id)
				} else {
					leave(m.id, cur)
				}
			}
		default:
			l.drainInbox(judge, cur)
			return
		}
	}
}

// drainInbox judges the actions already queued without waiting.
func (l *Loop) drainInbox(judge func(Action, *tickState), cur *tickState) {
	q := l.takeInbox()
	for _, a := range q {
		judge(a, cur)
	}
	l.giveBack(q)
}
