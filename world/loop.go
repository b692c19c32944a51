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
)

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
}

// AgentStats counts what the loop saw from one agent.
type AgentStats struct {
	Actions  int `json:"actions"`  // applied actions it sent
	Missing  int `json:"missing"`  // ticks it was observed at and sent nothing in time
	Late     int `json:"late"`     // actions for ticks already closed
	Rejected int `json:"rejected"` // duplicates, future ticks, invalid or unexpected actions
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
	}, nil
}

// Stop makes every pending and later Deliver and Gone return at once. Run
// calls it when it returns; a host whose Run never started calls it so that
// no sender is left blocked. Safe to call more than once.
func (l *Loop) Stop() {
	l.stopOnce.Do(func() { close(l.stopped) })
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

// appliedAction is one entry of a tick.closed event's "actions": the same
// JSON as a map with these keys (sorted), without a map per agent per tick.
type appliedAction struct {
	Agent  AgentID         `json:"agent"`
	Data   json.RawMessage `json:"data"`
	Filled string          `json:"filled,omitempty"` // the policy that filled a missing action
}

// tickState is the collection state of the tick being run.
type tickState struct {
	t        Tick
	expected map[AgentID]bool   // observed at t and still live
	got      map[AgentID]Action // first valid action per agent
	waiting  int
}

// Run steps the world until it is done, the tick limit is reached, ctx is
// done (it then returns ctx's error and the summary so far) or the missing
// policy aborts (ErrAborted).
func (l *Loop) Run(ctx context.Context) (Summary, error) {
	defer l.Stop()
	live := make(map[AgentID]bool, len(l.cfg.Seats))
	for _, s := range l.cfg.Seats {
		live[s.ID] = true
	}
	sum := Summary{Stats: make(map[AgentID]AgentStats, len(live)), Hash: l.cfg.World.StateHash()}
	last := make(map[AgentID]json.RawMessage)
	var closed Tick // last closed tick
	expected := make(map[AgentID]bool, len(l.cfg.Seats))
	got := make(map[AgentID]Action, len(l.cfg.Seats))
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

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
	bump := func(id AgentID, f func(*AgentStats)) {
		st := sum.Stats[id]
		f(&st)
		sum.Stats[id] = st
	}
	// judge takes one incoming action against the current tick (cur may be nil
	// between ticks).
	judge := func(a Action, cur *tickState) {
		if _, known := live[a.Agent]; !known {
			return // not an agent of this run (cannot happen through the bus)
		}
		switch {
		case a.Tick <= closed:
			bump(a.Agent, func(s *AgentStats) { s.Late++ })
			refused(EventActionLate, closed, a.Agent, map[string]any{"action_tick": a.Tick})
			return
		case cur == nil || a.Tick > cur.t:
			at := closed // between ticks: it belongs to the last closed one
			if cur != nil {
				at = cur.t
			}
			bump(a.Agent, func(s *AgentStats) { s.Rejected++ })
			refused(EventActionRejected, at, a.Agent, map[string]any{"action_tick": a.Tick, "reason": RejectFuture})
			return
		}
		reject := func(reason string, detail string) {
			bump(a.Agent, func(s *AgentStats) { s.Rejected++ })
			d := map[string]any{"action_tick": a.Tick, "reason": reason}
			if detail != "" {
				d["detail"] = detail
			}
			refused(EventActionRejected, cur.t, a.Agent, d)
		}
		if _, dup := cur.got[a.Agent]; dup {
			reject(RejectDuplicate, "")
			return
		}
		if !cur.expected[a.Agent] {
			reject(RejectUnexpected, "")
			return
		}
		if err := l.cfg.World.Validate(a); err != nil {
			reject(RejectInvalid, err.Error())
			return
		}
		cur.got[a.Agent] = a
		cur.waiting--
	}
	join := func(id AgentID) {
		if _, known := live[id]; known {
			live[id] = true // observed from the next tick on
		}
	}
	leave := func(id AgentID, cur *tickState) {
		if !live[id] {
			return
		}
		live[id] = false
		// An action it already sent for this tick stands; otherwise it is
		// no longer waited for and gets no action.
		if cur != nil && cur.expected[id] {
			if _, ok := cur.got[id]; !ok {
				delete(cur.expected, id)
				cur.waiting--
			}
		}
	}

	for {
		if l.cfg.World.Done() || (l.cfg.Ticks > 0 && closed >= l.cfg.Ticks) {
			return sum, nil
		}
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		// Take in what arrived between ticks (departures first).
		l.drain(judge, leave, join, nil)

		// The tick's maps are reused: clear keeps their room for N agents.
		clear(expected)
		clear(got)
		cur := &tickState{t: closed + 1, expected: expected, got: got}
		start := time.Now()
		deadline := start.Add(l.cfg.Deadline)
		for _, s := range l.cfg.Seats {
			if !live[s.ID] {
				continue
			}
			obs, ok, err := l.cfg.World.Observe(s.ID, cur.t)
			if err != nil {
				return sum, fmt.Errorf("tick %d: observe %s: %w", cur.t, s.ID, err)
			}
			if !ok {
				continue
			}
			cur.expected[s.ID] = true
			cur.waiting++
			// A failed send is logged by the host; the action will be missing.
			_ = l.cfg.Agents.Send(s.ID, cur.t, deadline, obs)
		}
		timer.Reset(time.Until(deadline))
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
			case <-timer.C:
				break collect
			case <-ctx.Done():
				return sum, ctx.Err()
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}

		// Close the tick: fill what is missing by policy.
		actions := make([]Action, 0, len(cur.expected))
		applied := make([]appliedAction, 0, len(cur.expected))
		var answered, missing []AgentID // counted once the tick is applied
		for _, s := range l.cfg.Seats {
			id := s.ID
			if !cur.expected[id] {
				continue
			}
			a, ok := cur.got[id]
			rec := appliedAction{Agent: id}
			if ok {
				answered = append(answered, id)
			} else {
				missing = append(missing, id)
				bump(id, func(s *AgentStats) { s.Missing++ })
				l.cfg.Events.Emit(EventActionMissing, cur.t, id, map[string]any{"policy": l.cfg.Missing})
				if l.cfg.Missing == PolicyAbort {
					return sum, fmt.Errorf("%w: agent %s sent no action for tick %d within %s", ErrAborted, id, cur.t, l.cfg.Deadline)
				}
				a = Action{Agent: id, Tick: cur.t}
				if prev, had := last[id]; had && l.cfg.Missing == PolicyRepeat {
					a.Data = prev
					rec.Filled = PolicyRepeat
				} else {
					a.Data = l.cfg.World.DefaultAction(id, cur.t)
					rec.Filled = PolicyDefault
				}
			}
			last[id] = a.Data
			rec.Data = a.Data
			actions = append(actions, a)
			applied = append(applied, rec)
		}
		res, err := l.cfg.World.Step(cur.t, actions, TickRNG(l.cfg.Seed, cur.t))
		if err != nil {
			return sum, fmt.Errorf("tick %d: step: %w", cur.t, err)
		}
		for _, id := range answered {
			bump(id, func(s *AgentStats) { s.Actions++ })
		}
		closed = cur.t
		sum.Ticks = closed
		sum.Hash = l.cfg.World.StateHash()
		elapsed := time.Since(start)
		for _, e := range res.Events {
			kind := e.Kind
			if !strings.Contains(kind, ".") {
				kind = "world." + kind
			}
			l.cfg.Events.Emit(kind, closed, e.Agent, e.Fields)
		}
		for _, s := range l.cfg.Seats {
			if n := noisy[s.ID] - MaxRefusalEvents; n > 0 {
				l.cfg.Events.Emit(EventActionRejected, closed, s.ID, map[string]any{"reason": RejectSuppressed, "count": n})
			}
		}
		clear(noisy)
		l.cfg.Events.Emit(EventTickClosed, closed, "", map[string]any{
			"actions": applied,
			"hash":    sum.Hash,
			"wall_us": elapsed.Microseconds(),
		})
		if l.cfg.OnTick != nil {
			l.cfg.OnTick(TickReport{Tick: closed, Elapsed: elapsed, Metrics: res.Metrics, Hash: sum.Hash, Answered: answered, Missing: missing})
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
