package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/internal/jsonenc"
	"github.com/terrarium-sim/terrarium/world"
)

// Observation is one tick's observation for this agent.
type Observation struct {
	Tick     world.Tick
	Deadline time.Time
	Data     json.RawMessage
}

// Handler returns the action for an observation. The returned value is
// marshalled to JSON (a json.RawMessage is sent as is).
type Handler func(ctx context.Context, obs Observation) (any, error)

// ObservationBuffer is the capacity of the Observations channel.
const ObservationBuffer = 16

// closeTimeout bounds each step of Close (flush, close).
const closeTimeout = 5 * time.Second

// Reasons for Done, reported by Err.
var (
	// ErrClosed: Close was called.
	ErrClosed = errors.New("agent closed")
	// ErrConnectionLost: the connection to the bus was lost.
	ErrConnectionLost = errors.New("connection to the bus lost")
)

// Option changes how Connect works.
type Option func(*options)

type options struct {
	env    map[string]string
	logger hclog.Logger
}

// WithEnv makes Connect read its settings from env instead of the process
// environment (for tests). Keys are the agents.Env* names.
func WithEnv(env map[string]string) Option {
	return func(o *options) { o.env = env }
}

// WithLogger gives the agent a logger (default: none).
func WithLogger(l hclog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// Agent is a connected agent.
type Agent struct {
	id, run, workspace string
	shared             string
	seed               uint64

	nc         *nats.Conn
	log        hclog.Logger
	actSubject string // where actions go

	obs  chan Observation
	quit chan struct{} // closed by Close: handlers stop waiting on obs

	done     chan struct{}
	doneOnce sync.Once
	doneErr  error // written before done is closed

	connClosed chan struct{} // closed by the ClosedHandler

	pubMu sync.Mutex // keeps Seq order on the wire
	seq   atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// Connect reads the agent's settings from the environment (agents.EnvNATSURL,
// EnvNATSUser, EnvNATSPass, EnvInboxPrefix, EnvRun, EnvAgentID, EnvWorkspace,
// EnvSeed), connects to the bus, subscribes to the agent's subjects and the
// world broadcasts, and says hello. It returns once the host has answered the
// hello; ctx bounds that wait.
func Connect(ctx context.Context, opts ...Option) (*Agent, error) {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	get := os.Getenv
	if o.env != nil {
		get = func(k string) string { return o.env[k] }
	}
	url, run, id := get(agents.EnvNATSURL), get(agents.EnvRun), get(agents.EnvAgentID)
	for k, v := range map[string]string{agents.EnvNATSURL: url, agents.EnvRun: run, agents.EnvAgentID: id} {
		if v == "" {
			return nil, fmt.Errorf("connect agent: %s is not set", k)
		}
	}
	if !world.IDPattern.MatchString(run) || !world.IDPattern.MatchString(id) {
		return nil, fmt.Errorf("connect agent: run %q or agent id %q does not match %s", run, id, world.IDPattern)
	}
	a := &Agent{
		id:         id,
		run:        run,
		actSubject: bus.AgentSubject(run, id, bus.KindAct),
		workspace:  get(agents.EnvWorkspace),
		shared:     get(agents.EnvShared),
		log:        o.logger,
		obs:        make(chan Observation, ObservationBuffer),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		connClosed: make(chan struct{}),
	}
	if a.log == nil {
		a.log = hclog.NewNullLogger()
	}
	if s := get(agents.EnvSeed); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("connect agent %s: %s: %w", id, agents.EnvSeed, err)
		}
		a.seed = seed
	}
	nc, err := dialer{what: "agent", id: id, url: url, inbox: bus.InboxPrefix(run, id),
		subs: []string{bus.ToPrefix(run, id), bus.WorldPrefix(run)}, onMsg: a.onMsg,
		finish: a.finish, closed: a.connClosed, log: a.log, get: get}.dial()
	if err != nil {
		return nil, err
	}
	a.nc = nc
	if err := a.hello(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("connect agent %s: %w", id, err)
	}
	a.log.Debug("connected", "run", run, "url", url)
	return a, nil
}

// hello sends the hello request until the host answers or ctx is done.
func (a *Agent) hello(ctx context.Context) error {
	data, err := json.Marshal(map[string]any{"sdk": "go", "pid": os.Getpid()})
	if err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	subj := bus.AgentSubject(a.run, a.id, bus.KindHello)
	a.pubMu.Lock()
	msg, err := a.encode(bus.KindHello, 0, data)
	a.pubMu.Unlock()
	if err != nil {
		return err
	}
	reply, err := requestHello(ctx, a.nc, subj, msg)
	if err != nil {
		return err
	}
	if _, err := bus.Decode(reply.Data, ""); err != nil {
		return fmt.Errorf("hello reply: %w", err)
	}
	return nil
}

// onMsg handles every message to this agent and every broadcast. It runs on
// one client goroutine per subscription, so messages of a subscription are
// handled in order.
func (a *Agent) onMsg(m *nats.Msg) {
	env, err := bus.DecodeShared(m.Data, a.run) // the observation aliases the message
	if err != nil {
		a.finish(fmt.Errorf("agent %s: bad message on %s: %w", a.id, m.Subject, err))
		return
	}
	switch env.Kind {
	case bus.KindObs:
		o := Observation{Tick: world.Tick(env.Tick), Data: env.Data}
		if env.Deadline != nil {
			o.Deadline = *env.Deadline
		}
		select {
		case a.obs <- o:
		case <-a.done:
			a.log.Debug("observation after the end not delivered", "tick", env.Tick)
		case <-a.quit:
		}
	case bus.KindStop, bus.KindEnd:
		a.log.Debug("finishing", "kind", env.Kind, "subject", m.Subject)
		a.finish(nil)
	default:
		a.log.Trace("ignored message", "kind", env.Kind, "subject", m.Subject)
	}
}

// finish closes Done with reason (nil for a normal end); the first reason wins.
func (a *Agent) finish(reason error) {
	a.doneOnce.Do(func() {
		a.doneErr = reason
		close(a.done)
	})
}

// encode builds the next envelope; the caller holds pubMu.
func (a *Agent) encode(kind string, tick uint64, data json.RawMessage) ([]byte, error) {
	return bus.Encode(bus.Envelope{
		Kind:  kind,
		Run:   a.run,
		Agent: a.id,
		Tick:  tick,
		Seq:   a.seq.Add(1),
		Data:  data,
	})
}

func (a *Agent) publish(kind string, tick uint64, data json.RawMessage) error {
	a.pubMu.Lock()
	defer a.pubMu.Unlock()
	b, err := a.encode(kind, tick, data)
	if err != nil {
		return err
	}
	subject := a.actSubject
	if kind != bus.KindAct || subject == "" {
		subject = bus.AgentSubject(a.run, a.id, kind)
	}
	if err := a.nc.Publish(subject, b); err != nil {
		return fmt.Errorf("agent %s: publish %s: %w", a.id, kind, err)
	}
	return nil
}

// ID is the agent's id.
func (a *Agent) ID() string { return a.id }

// RunID is the run's id.
func (a *Agent) RunID() string { return a.run }

// Seed is the agent's seed (EnvSeed), 0 when none was given.
func (a *Agent) Seed() uint64 { return a.seed }

// Workspace is the agent's private directory (EnvWorkspace).
func (a *Agent) Workspace() string { return a.workspace }

// Observations delivers one observation per tick, in order. It is never
// closed: select on Done too. Use either Observations or Run, not both.
func (a *Agent) Observations() <-chan Observation { return a.obs }

// Done is closed when the agent should stop (see the package doc); Err says why.
func (a *Agent) Done() <-chan struct{} { return a.done }

// Err is why Done was closed: nil for stop or the end of the run, ErrClosed,
// ErrConnectionLost, or a protocol error. It is nil while Done is open.
func (a *Agent) Err() error {
	select {
	case <-a.done:
		return a.doneErr
	default:
		return nil
	}
}

// Act sends the action for tick t. action is marshalled to JSON.
func (a *Agent) Act(t world.Tick, action any) error {
	// A json.RawMessage already in the form Marshal gives it is sent as
	// it is (the same bytes, without reflection).
	data, ok := action.(json.RawMessage)
	if !ok || !jsonenc.Canonical(data) {
		var err error
		if data, err = json.Marshal(action); err != nil {
			return fmt.Errorf("agent %s: act at tick %d: %w", a.id, t, err)
		}
	}
	return a.publish(bus.KindAct, uint64(t), data)
}

// Run answers each observation with h's action until the host stops the
// agent or ends the run (nil), ctx is done (ctx.Err()), the agent fails or is
// closed (Err()), or h fails (its error).
func (a *Agent) Run(ctx context.Context, h Handler) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.done:
			return a.Err()
		case o := <-a.obs:
			action, err := h(ctx, o)
			if err != nil {
				return fmt.Errorf("agent %s: tick %d: %w", a.id, o.Tick, err)
			}
			if err := a.Act(o.Tick, action); err != nil {
				return err
			}
		}
	}
}

// Close says bye, flushes (so that everything the agent sent, bye
// included, has reached the server) and closes the connection. It does not
// drain: nothing the host sends after bye matters to a closing agent, and
// unsubscribing one subscription at a time makes the server take its
// subscription lock once per subscription per agent, which at the end of
// a run with hundreds of agents stalls every connection for seconds; a
// closed connection's subscriptions are removed in one batch. It is
// idempotent: later calls return the first call's result.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		close(a.quit)
		a.finish(ErrClosed)
		if a.nc.IsClosed() {
			return
		}
		var errs []error
		if err := a.publish(bus.KindBye, 0, nil); err != nil {
			errs = append(errs, err)
		}
		if err := a.nc.FlushTimeout(closeTimeout); err != nil {
			errs = append(errs, fmt.Errorf("flush: %w", err))
		}
		a.nc.Close()
		t := time.NewTimer(closeTimeout)
		defer t.Stop()
		select {
		case <-a.connClosed:
		case <-t.C:
			errs = append(errs, errors.New("connection did not close"))
		}
		if err := errors.Join(errs...); err != nil {
			a.closeErr = fmt.Errorf("close agent %s: %w", a.id, err)
		}
	})
	return a.closeErr
}

// Run is a Go agent's whole main: Connect, Run with h, Close. It returns nil
// when the host stops the agent or ends the run.
func Run(ctx context.Context, h Handler, opts ...Option) error {
	a, err := Connect(ctx, opts...)
	if err != nil {
		return err
	}
	err = a.Run(ctx, h)
	return errors.Join(err, a.Close())
}
