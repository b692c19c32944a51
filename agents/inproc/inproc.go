package inproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium/world"
)

// Observation is what an in-process agent gets at a tick.
type Observation struct {
	Agent    world.AgentID
	Tick     world.Tick
	Deadline time.Time
	Data     json.RawMessage
}

// Agent is an NPC written in Go.
type Agent interface {
	// Act returns the agent's action for obs: a json.RawMessage, or any
	// value encoding/json can encode. A nil action sends none (the missing
	// policy fills it in); so does an error, which is logged. ctx ends at
	// obs.Deadline or when the run stops.
	Act(ctx context.Context, obs Observation) (any, error)
}

// Func makes an Agent of a function.
type Func func(ctx context.Context, obs Observation) (any, error)

// Act calls f.
func (f Func) Act(ctx context.Context, obs Observation) (any, error) { return f(ctx, obs) }

// Factory makes the Agent of one seat (one per agent id, so each NPC may
// keep its own state).
type Factory func(seat world.Seat) Agent

// Config configures a Runtime.
type Config struct {
	// Agents are the in-process agents, by id.
	Agents map[world.AgentID]Agent
	// Deliver hands an action to the loop (world.Loop.Deliver). It may block
	// while the loop is busy.
	Deliver func(world.Action)
	// DeliverAll, if set, hands several actions at once (world.Loop.DeliverAll):
	// a worker delivers what one batch of agents answered in one call, not
	// one call per action. Deliver is then unused.
	DeliverAll func([]world.Action)
	// Workers is how many Act calls run at once (default GOMAXPROCS).
	Workers int
	// Grace is how long Close waits for Act calls to return (default 2s).
	Grace  time.Duration
	Logger hclog.Logger
}

// Stats counts what one agent did.
type Stats struct {
	Acts      uint64 // actions delivered
	Errors    uint64 // Act returned an error or an action that is not JSON
	Coalesced uint64 // observations replaced by a newer one before Act saw them
}

// Runtime runs in-process agents. Make it with New, Start it, Close it.
type Runtime struct {
	cfg    Config
	log    hclog.Logger
	slots  map[world.AgentID]*slot
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  sync.Once
	close  sync.Once

	// Agents with an observation waiting for a worker, each at most once
	// (slot.queued): workers take them in chunks, so a tick of thousands
	// of agents costs a few lock round trips, not one channel operation
	// per agent. wake (room for one) tells the workers there is work;
	// after the first SendsDone (world.SendBatcher) only SendsDone wakes
	// them, once per tick.
	qmu     sync.Mutex
	q       []*slot
	wake    chan struct{}
	batched atomic.Bool
	// In batched mode Send stages the agents here (its own lock, which the
	// workers never take) and SendsDone moves them to q at once.
	smu    sync.Mutex
	staged []*slot

	// Every agent of a tick shares its deadline: one context (and one
	// timer) per deadline, not per Act.
	ctxMu sync.Mutex
	ctxs  map[time.Time]deadlineCtx
}

type deadlineCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

type slot struct {
	id    world.AgentID
	agent Agent

	mu      sync.Mutex
	pending Observation // latest observation not yet taken (if has)
	has     bool
	queued  bool // in the queue or being acted for

	acts, errs, coalesced atomic.Uint64
}

// New prepares a runtime; it starts nothing.
func New(cfg Config) (*Runtime, error) {
	if cfg.Deliver == nil && cfg.DeliverAll == nil {
		return nil, errors.New("inproc: no Deliver")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	r := &Runtime{cfg: cfg, log: cfg.Logger, slots: make(map[world.AgentID]*slot, len(cfg.Agents)),
		q: make([]*slot, 0, len(cfg.Agents)), wake: make(chan struct{}, 1), ctxs: map[time.Time]deadlineCtx{}}
	for id, a := range cfg.Agents {
		if a == nil {
			return nil, fmt.Errorf("inproc: agent %s is nil", id)
		}
		r.slots[id] = &slot{id: id, agent: a}
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// Start starts the workers. Later calls do nothing.
func (r *Runtime) Start() {
	r.start.Do(func() {
		for range min(r.cfg.Workers, max(len(r.slots), 1)) {
			r.wg.Add(1)
			go r.work()
		}
	})
}

// Len is the number of agents.
func (r *Runtime) Len() int { return len(r.slots) }

// Has reports whether id is one of the runtime's agents.
func (r *Runtime) Has(id world.AgentID) bool {
	_, ok := r.slots[id]
	return ok
}

// Send hands agent id its observation for tick t. It never blocks: if the
// agent has not yet taken its previous observation, the new one replaces it.
func (r *Runtime) Send(id world.AgentID, t world.Tick, deadline time.Time, obs json.RawMessage) error {
	s, ok := r.slots[id]
	if !ok {
		return fmt.Errorf("%w %s", ErrUnknownAgent, id)
	}
	s.mu.Lock()
	if s.has {
		s.coalesced.Add(1)
	}
	s.pending, s.has = Observation{Agent: id, Tick: t, Deadline: deadline, Data: obs}, true
	queue := !s.queued
	s.queued = true
	s.mu.Unlock()
	if !queue {
		return nil
	}
	if r.batched.Load() {
		r.smu.Lock()
		r.staged = append(r.staged, s)
		r.smu.Unlock()
		return nil
	}
	r.qmu.Lock()
	r.q = append(r.q, s)
	first := len(r.q) == 1
	r.qmu.Unlock()
	if first {
		r.signal()
	}
	return nil
}

// SendsDone implements world.SendBatcher: the loop calls it after the
// last Send of a tick, and it hands the workers all of them at once.
// Once it was called, Send leaves that to it.
func (r *Runtime) SendsDone(world.Tick) {
	r.batched.Store(true)
	r.smu.Lock()
	staged := r.staged
	r.staged = nil
	r.smu.Unlock()
	if len(staged) > 0 {
		r.qmu.Lock()
		if len(r.q) == 0 {
			r.q, staged = staged, r.q[:0] // swap: the old queue's room is the next tick's staging
		} else {
			r.q = append(r.q, staged...)
			staged = staged[:0]
		}
		r.qmu.Unlock()
		r.smu.Lock()
		if r.staged == nil {
			r.staged = staged
		}
		r.smu.Unlock()
	}
	r.signal()
}

func (r *Runtime) signal() {
	select {
	case r.wake <- struct{}{}:
	default: // told already
	}
}

// Stats returns agent id's counters.
func (r *Runtime) Stats(id world.AgentID) Stats {
	s, ok := r.slots[id]
	if !ok {
		return Stats{}
	}
	return Stats{Acts: s.acts.Load(), Errors: s.errs.Load(), Coalesced: s.coalesced.Load()}
}

// take returns the next chunk of queued agents (appended to buf), nil if
// none. Chunks are small enough that every worker gets a share.
func (r *Runtime) take(buf []*slot) []*slot {
	r.qmu.Lock()
	defer r.qmu.Unlock()
	n := len(r.q)
	if n == 0 {
		return buf[:0]
	}
	k := min(n, max(1, min(256, n/(4*r.cfg.Workers))))
	buf = append(buf[:0], r.q[n-k:]...)
	clear(r.q[n-k:])
	r.q = r.q[:n-k]
	if n > k {
		r.signal() // more for another worker
	}
	return buf
}

func (r *Runtime) work() {
	defer r.wg.Done()
	var chunk []*slot
	var out []world.Action
	var dl deadlineMemo
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.wake:
		}
		for {
			if chunk = r.take(chunk); len(chunk) == 0 {
				break
			}
			out = out[:0]
			for _, s := range chunk {
				s.mu.Lock()
				o, has := s.pending, s.has
				s.pending, s.has = Observation{}, false
				s.mu.Unlock()
				if has {
					if a, ok := r.act(s, &o, &dl); ok {
						if r.cfg.DeliverAll != nil {
							out = append(out, a)
						} else {
							r.cfg.Deliver(a)
						}
					}
				}
			}
			if len(out) > 0 {
				r.cfg.DeliverAll(out)
				clear(out)
			}
			// Queued again only now, so no two workers act for one agent.
			for _, s := range chunk {
				s.mu.Lock()
				again := s.has
				s.queued = again
				s.mu.Unlock()
				if again {
					r.qmu.Lock()
					r.q = append(r.q, s)
					r.qmu.Unlock()
					r.signal()
				}
			}
			clear(chunk)
			if r.ctx.Err() != nil {
				return
			}
		}
	}
}

// deadlineMemo is a worker's last deadline context: a tick's agents share
// one, so most Acts find it here without the runtime's lock.
type deadlineMemo struct {
	at  time.Time
	ctx context.Context
}

// deadlineCtx returns the context ending at deadline (or with the runtime).
// Contexts whose deadline has passed are released when a new one is made.
func (r *Runtime) deadlineCtx(deadline time.Time) context.Context {
	if deadline.IsZero() {
		return r.ctx
	}
	r.ctxMu.Lock()
	defer r.ctxMu.Unlock()
	if c, ok := r.ctxs[deadline]; ok {
		return c.ctx
	}
	now := time.Now()
	for d, c := range r.ctxs {
		if d.Before(now) {
			c.cancel() // its deadline passed: done already, now released
			delete(r.ctxs, d)
		}
	}
	ctx, cancel := context.WithDeadline(r.ctx, deadline)
	r.ctxs[deadline] = deadlineCtx{ctx, cancel}
	return ctx
}

// act calls s's agent and returns its action (ok false for none).
func (r *Runtime) act(s *slot, o *Observation, dl *deadlineMemo) (world.Action, bool) {
	if dl.ctx == nil || !dl.at.Equal(o.Deadline) {
		dl.at, dl.ctx = o.Deadline, r.deadlineCtx(o.Deadline)
	}
	v, err := s.agent.Act(dl.ctx, *o)
	if err != nil {
		if r.ctx.Err() == nil {
			s.errs.Add(1)
			r.log.Warn("in-process agent failed", "agent", s.id, "tick", o.Tick, "error", err)
		}
		return world.Action{}, false
	}
	if v == nil {
		return world.Action{}, false
	}
	data, ok := v.(json.RawMessage)
	if !ok {
		b, err := json.Marshal(v)
		if err != nil {
			s.errs.Add(1)
			r.log.Warn("in-process agent's action is not JSON", "agent", s.id, "tick", o.Tick, "error", err)
			return world.Action{}, false
		}
		data = b
	}
	s.acts.Add(1)
	return world.Action{Agent: s.id, Tick: o.Tick, Data: data}, true
}

// ErrUnknownAgent is returned by Send for an id that is not one of the
// runtime's agents.
var ErrUnknownAgent = errors.New("inproc: no agent")

// ErrAbandoned is returned by Close when some Act calls did not return
// within the grace period after their context ended.
var ErrAbandoned = errors.New("in-process agents still acting after their context ended")

// Close cancels every Act's context and waits up to the grace period for
// the workers. Safe to call more than once; Deliver must not block forever
// (stop the loop first).
func (r *Runtime) Close() error {
	var err error
	r.close.Do(func() {
		r.cancel()
		r.ctxMu.Lock()
		for d, c := range r.ctxs {
			c.cancel()
			delete(r.ctxs, d)
		}
		r.ctxMu.Unlock()
		done := make(chan struct{})
		go func() { r.wg.Wait(); close(done) }()
		t := time.NewTimer(r.cfg.Grace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			err = fmt.Errorf("%w (after %s): a worker is abandoned", ErrAbandoned, r.cfg.Grace)
			r.log.Error("in-process agents ignore their context", "grace", r.cfg.Grace)
		}
	})
	return err
}
