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
	ready  chan *slot // each slot at most once
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  sync.Once
	close  sync.Once

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
	pending *Observation // latest observation not yet taken
	queued  bool         // in the ready channel

	acts, errs, coalesced atomic.Uint64
}

// New prepares a runtime; it starts nothing.
func New(cfg Config) (*Runtime, error) {
	if cfg.Deliver == nil {
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
	r := &Runtime{cfg: cfg, log: cfg.Logger, slots: make(map[world.AgentID]*slot, len(cfg.Agents)), ready: make(chan *slot, len(cfg.Agents)),
		ctxs: map[time.Time]deadlineCtx{}}
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
		return fmt.Errorf("inproc: no agent %s", id)
	}
	o := &Observation{Agent: id, Tick: t, Deadline: deadline, Data: obs}
	s.mu.Lock()
	if s.pending != nil {
		s.coalesced.Add(1)
	}
	s.pending = o
	if !s.queued {
		s.queued = true
		r.ready <- s // never blocks: room for every slot, each in it at most once
	}
	s.mu.Unlock()
	return nil
}

// Stats returns agent id's counters.
func (r *Runtime) Stats(id world.AgentID) Stats {
	s, ok := r.slots[id]
	if !ok {
		return Stats{}
	}
	return Stats{Acts: s.acts.Load(), Errors: s.errs.Load(), Coalesced: s.coalesced.Load()}
}

func (r *Runtime) work() {
	defer r.wg.Done()
	for {
		select {
		case <-r.ctx.Done():
			return
		case s := <-r.ready:
			s.mu.Lock()
			o := s.pending
			s.pending = nil
			s.mu.Unlock()
			if o != nil {
				r.act(s, o)
			}
			// Queued again only now, so no two workers act for one agent.
			s.mu.Lock()
			if s.pending != nil {
				r.ready <- s
			} else {
				s.queued = false
			}
			s.mu.Unlock()
		}
	}
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

func (r *Runtime) act(s *slot, o *Observation) {
	v, err := s.agent.Act(r.deadlineCtx(o.Deadline), *o)
	if err != nil {
		if r.ctx.Err() == nil {
			s.errs.Add(1)
			r.log.Warn("in-process agent failed", "agent", s.id, "tick", o.Tick, "error", err)
		}
		return
	}
	if v == nil {
		return
	}
	data, ok := v.(json.RawMessage)
	if !ok {
		b, err := json.Marshal(v)
		if err != nil {
			s.errs.Add(1)
			r.log.Warn("in-process agent's action is not JSON", "agent", s.id, "tick", o.Tick, "error", err)
			return
		}
		data = b
	}
	s.acts.Add(1)
	r.cfg.Deliver(world.Action{Agent: s.id, Tick: o.Tick, Data: data})
}

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
