package sdk

import (
	"bytes"
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

// ErrNoAction, returned by a PoolHandler, sends no action for that member
// at that tick: the host applies the missing-action policy to it alone.
var ErrNoAction = errors.New("no action")

// PoolHandler returns member agent's action for an observation (see
// Handler). It is called for each member in the batch, one at a time, in
// the batch's order, from Run's goroutine.
type PoolHandler func(ctx context.Context, agent string, obs Observation) (any, error)

// Handlers makes a PoolHandler that gives every member its own Handler,
// made by newHandler on the member's first observation: per-member state
// lives in the Handler's closure.
func Handlers(newHandler func(agent string) Handler) PoolHandler {
	hs := map[string]Handler{}
	return func(ctx context.Context, agent string, obs Observation) (any, error) {
		h, ok := hs[agent]
		if !ok {
			h = newHandler(agent)
			hs[agent] = h
		}
		return h(ctx, obs)
	}
}

// PoolEntry is one member's part of a pool message: its observation (host
// to pool) or its action (pool to host).
type PoolEntry = bus.Entry

// PoolBatch is one observation message to a pool: the observations of
// some of its members for one tick.
type PoolBatch struct {
	Tick     world.Tick
	Deadline time.Time
	Obs      []PoolEntry
}

// Pool is a connected pool process (runtime "pool"): one connection
// serving many agent ids, one message in and one out per batch.
type Pool struct {
	id, run string
	members []string
	// memberSet holds the members (from hello's answer), each mapped to
	// itself.
	memberSet atomic.Pointer[map[string]string]
	nc        *nats.Conn
	log       hclog.Logger

	batches chan PoolBatch
	quit    chan struct{}

	done     chan struct{}
	doneOnce sync.Once
	doneErr  error

	connClosed chan struct{}
	pubMu      sync.Mutex
	seq        uint64 // under pubMu
	closeOnce  sync.Once
	closeErr   error
}

// ConnectPool reads the pool's settings from the environment (as Connect,
// with agents.EnvPool instead of EnvAgentID), connects, subscribes to the
// pool's subjects and the world broadcasts, and says hello; the host's
// answer lists the members.
func ConnectPool(ctx context.Context, opts ...Option) (*Pool, error) {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	get := os.Getenv
	if o.env != nil {
		get = func(k string) string { return o.env[k] }
	}
	url, run, id := get(agents.EnvNATSURL), get(agents.EnvRun), get(agents.EnvPool)
	for k, v := range map[string]string{agents.EnvNATSURL: url, agents.EnvRun: run, agents.EnvPool: id} {
		if v == "" {
			return nil, fmt.Errorf("connect pool: %s is not set", k)
		}
	}
	if !world.IDPattern.MatchString(run) || !world.IDPattern.MatchString(id) {
		return nil, fmt.Errorf("connect pool: run %q or pool id %q does not match %s", run, id, world.IDPattern)
	}
	p := &Pool{id: id, run: run, log: o.logger, batches: make(chan PoolBatch, ObservationBuffer),
		quit: make(chan struct{}), done: make(chan struct{}), connClosed: make(chan struct{})}
	if p.log == nil {
		p.log = hclog.NewNullLogger()
	}
	nc, err := dialer{what: "pool", id: id, url: url, inbox: bus.PoolInboxPrefix(run, id),
		subs: []string{bus.ToPoolPrefix(run, id), bus.WorldPrefix(run)}, onMsg: p.onMsg,
		finish: p.finish, closed: p.connClosed, log: p.log, get: get}.dial()
	if err != nil {
		return nil, err
	}
	p.nc = nc
	if err := p.hello(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("connect pool %s: %w", id, err)
	}
	return p, nil
}

func (p *Pool) hello(ctx context.Context) error {
	data := []byte(`{"sdk":"go","pool":true,"pid":` + strconv.Itoa(os.Getpid()) + `}`)
	msg, err := p.encode(bus.KindHello, 0, data)
	if err != nil {
		return err
	}
	reply, err := requestHello(ctx, p.nc, bus.PoolSubject(p.run, p.id, bus.KindHello), msg)
	if err != nil {
		return err
	}
	env, err := bus.Decode(reply.Data, "")
	if err != nil {
		return fmt.Errorf("hello reply: %w", err)
	}
	var d struct {
		Members []string `json:"members"`
	}
	if err := json.Unmarshal(env.Data, &d); err != nil {
		return fmt.Errorf("hello reply: members: %w", err)
	}
	p.members = d.Members
	set := make(map[string]string, len(d.Members))
	for _, m := range d.Members {
		if world.IDPattern.MatchString(m) {
			set[m] = m
		}
	}
	p.memberSet.Store(&set)
	return nil
}

func (p *Pool) onMsg(m *nats.Msg) {
	env, err := bus.DecodeShared(m.Data, p.run) // the observations alias the message
	if err != nil {
		p.finish(fmt.Errorf("pool %s: bad message on %s: %w", p.id, m.Subject, err))
		return
	}
	switch env.Kind {
	case bus.KindObs:
		b := PoolBatch{Tick: world.Tick(env.Tick)}
		if env.Deadline != nil {
			b.Deadline = *env.Deadline
		}
		if set := p.memberSet.Load(); set != nil {
			b.Obs = make([]PoolEntry, 0, len(*set))
		}
		if err := bus.EachEntryBytes(env.Data, func(agent, data []byte) {
			b.Obs = append(b.Obs, PoolEntry{Agent: p.memberID(agent), Data: data})
		}); err != nil {
			p.finish(fmt.Errorf("pool %s: bad observation batch at tick %d: %w", p.id, env.Tick, err))
			return
		}
		select {
		case p.batches <- b:
		case <-p.done:
		case <-p.quit:
		}
	case bus.KindStop, bus.KindEnd:
		p.finish(nil)
	}
}

func (p *Pool) finish(reason error) {
	p.doneOnce.Do(func() {
		p.doneErr = reason
		close(p.done)
	})
}

// encode builds the next envelope; it takes pubMu.
func (p *Pool) encode(kind string, tick uint64, data json.RawMessage) ([]byte, error) {
	p.pubMu.Lock()
	defer p.pubMu.Unlock()
	p.seq++
	return bus.Encode(bus.Envelope{Kind: kind, Run: p.run, Agent: p.id, Tick: tick, Seq: p.seq, Data: data})
}

// isMember reports whether id is one of the members (ids the host gave,
// which match world.IDPattern).
func (p *Pool) isMember(id string) bool {
	if set := p.memberSet.Load(); set != nil {
		_, ok := (*set)[id]
		return ok
	}
	return false
}

// memberID returns id as a string: the member's own string if it is one
// (no string made per entry of a batch), a new one otherwise.
func (p *Pool) memberID(id []byte) string {
	if set := p.memberSet.Load(); set != nil {
		if s, ok := (*set)[string(id)]; ok {
			return s
		}
	}
	return string(id)
}

// ID is the pool's id; Members the agent ids it serves, in id order.
func (p *Pool) ID() string        { return p.id }
func (p *Pool) Members() []string { return p.members }

// Batches delivers each observation message, in order (use Batches and
// Act, or Run, not both). It is never closed: select on Done too.
func (p *Pool) Batches() <-chan PoolBatch { return p.batches }

// Done is closed when the pool should stop; Err says why (nil: stop or end).
func (p *Pool) Done() <-chan struct{} { return p.done }

// Err is why Done was closed, nil while it is open.
func (p *Pool) Err() error {
	select {
	case <-p.done:
		return p.doneErr
	default:
		return nil
	}
}

// Act sends the members' actions for tick t in one message. Each entry's
// Agent must be a member's id and its Data valid JSON.
func (p *Pool) Act(t world.Tick, acts []PoolEntry) error {
	b := make([]byte, 0, 64*len(acts)+2)
	b = append(b, '[')
	var checked []byte // the last data found valid: most batches are runs of equal actions
	for i, e := range acts {
		okID := p.isMember(e.Agent) || world.IDPattern.MatchString(e.Agent)
		okData := len(e.Data) > 0 && bytes.Equal(e.Data, checked)
		if !okData && (jsonenc.Canonical(e.Data) || json.Valid(e.Data)) {
			okData, checked = true, e.Data
		}
		if !okID || !okData {
			return fmt.Errorf("pool %s: act at tick %d: entry %d (agent %q): want an agent id and a JSON action", p.id, t, i, e.Agent)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = bus.AppendEntry(b, e.Agent, e.Data)
	}
	b = append(b, ']')
	p.pubMu.Lock()
	p.seq++
	msg, err := bus.EncodeBatch(bus.Envelope{Kind: bus.KindActs, Run: p.run, Agent: p.id, Tick: uint64(t), Seq: p.seq, Data: b})
	p.pubMu.Unlock()
	if err != nil {
		return fmt.Errorf("pool %s: act at tick %d: %w", p.id, t, err)
	}
	if err := p.nc.Publish(bus.PoolSubject(p.run, p.id, bus.KindActs), msg); err != nil {
		return fmt.Errorf("pool %s: publish acts: %w", p.id, err)
	}
	return nil
}

// Run answers each batch with h's actions, one message per batch, until
// the host stops the pool or ends the run (nil), ctx is done, the pool
// fails (Err()), or h fails with an error other than ErrNoAction.
func (p *Pool) Run(ctx context.Context, h PoolHandler) error {
	var acts []PoolEntry
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return p.Err()
		case b := <-p.batches:
			acts = acts[:0]
			for _, o := range b.Obs {
				action, err := h(ctx, o.Agent, Observation{Tick: b.Tick, Deadline: b.Deadline, Data: o.Data})
				if errors.Is(err, ErrNoAction) {
					continue
				}
				if err != nil {
					return fmt.Errorf("pool %s: agent %s: tick %d: %w", p.id, o.Agent, b.Tick, err)
				}
				data, ok := action.(json.RawMessage)
				if !ok {
					if data, err = json.Marshal(action); err != nil {
						return fmt.Errorf("pool %s: agent %s: tick %d: %w", p.id, o.Agent, b.Tick, err)
					}
				}
				acts = append(acts, PoolEntry{Agent: o.Agent, Data: data})
			}
			if err := p.Act(b.Tick, acts); err != nil {
				return err
			}
		}
	}
}

// Close says bye, flushes and closes the connection. Idempotent.
func (p *Pool) Close() error {
	p.closeOnce.Do(func() {
		close(p.quit)
		p.finish(ErrClosed)
		if p.nc.IsClosed() {
			return
		}
		var errs []error
		if bye, err := p.encode(bus.KindBye, 0, nil); err == nil {
			errs = append(errs, p.nc.Publish(bus.PoolSubject(p.run, p.id, bus.KindBye), bye))
		}
		if err := p.nc.FlushTimeout(closeTimeout); err != nil {
			errs = append(errs, fmt.Errorf("flush: %w", err))
		}
		if err := p.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("drain: %w", err))
		}
		t := time.NewTimer(2 * closeTimeout)
		defer t.Stop()
		select {
		case <-p.connClosed:
		case <-t.C:
			p.nc.Close()
			errs = append(errs, errors.New("drain did not finish"))
		}
		if err := errors.Join(errs...); err != nil {
			p.closeErr = fmt.Errorf("close pool %s: %w", p.id, err)
		}
	})
	return p.closeErr
}

// RunPool is a Go pool's whole main: ConnectPool, Run with h, Close.
func RunPool(ctx context.Context, h PoolHandler, opts ...Option) error {
	p, err := ConnectPool(ctx, opts...)
	if err != nil {
		return err
	}
	err = p.Run(ctx, h)
	return errors.Join(err, p.Close())
}
