package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/agenttest"
	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/bus"
)

const (
	run = "r1"
	id  = "a1"
)

// host plays the host side of the protocol on a real embedded server.
type host struct {
	t      *testing.T
	srv    *server.Server
	nc     *nats.Conn
	hellos chan bus.Envelope
	acts   chan bus.Envelope
	byes   chan bus.Envelope
	seq    uint64
}

func newHost(t *testing.T, answerHello bool) *host {
	t.Helper()
	agenttest.NoGoroutineLeaks(t)
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	h := &host{t: t, srv: srv, nc: nc,
		hellos: make(chan bus.Envelope, 10), acts: make(chan bus.Envelope, 100), byes: make(chan bus.Envelope, 10)}
	collect := func(kind string, ch chan bus.Envelope, reply bool) {
		_, err := nc.Subscribe(bus.AllAgents(run, kind), func(m *nats.Msg) {
			e, err := bus.Decode(m.Data, run)
			if err != nil {
				t.Errorf("host: bad %s message: %v", kind, err)
				return
			}
			if reply {
				b, _ := bus.Encode(bus.Envelope{Kind: bus.KindHello, Run: run})
				if err := m.Respond(b); err != nil {
					t.Errorf("host: respond: %v", err)
				}
			}
			ch <- e
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if answerHello {
		collect(bus.KindHello, h.hellos, true)
	}
	collect(bus.KindAct, h.acts, false)
	collect(bus.KindBye, h.byes, false)
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *host) env() map[string]string {
	return map[string]string{
		agents.EnvNATSURL:   h.srv.ClientURL(),
		agents.EnvRun:       run,
		agents.EnvAgentID:   id,
		agents.EnvSeed:      "42",
		agents.EnvWorkspace: "/ws/a1",
	}
}

func (h *host) connect() *sdk.Agent {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := sdk.Connect(ctx, sdk.WithEnv(h.env()), sdk.WithLogger(agenttest.Logger(h.t)))
	if err != nil {
		h.t.Fatalf("Connect: %v", err)
	}
	h.t.Cleanup(func() { _ = a.Close() })
	return a
}

func (h *host) send(subject, kind string, tick uint64, data any) {
	h.t.Helper()
	h.seq++
	e := bus.Envelope{Kind: kind, Run: run, Tick: tick, Seq: h.seq}
	if kind == bus.KindObs {
		d := time.Now().Add(time.Minute).UTC()
		e.Deadline = &d
	}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			h.t.Fatal(err)
		}
		e.Data = b
	}
	b, err := bus.Encode(e)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.nc.Publish(subject, b); err != nil {
		h.t.Fatal(err)
	}
}

func (h *host) obs(tick uint64, data any) {
	h.send(bus.ToSubject(run, id, bus.KindObs), bus.KindObs, tick, data)
}

func receive(t *testing.T, ch chan bus.Envelope, what string) bus.Envelope {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return bus.Envelope{}
	}
}

func waitErr(t *testing.T, errc chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for Run to return")
		return nil
	}
}

// echo answers with the observation's tick and data.
func echo(_ context.Context, o sdk.Observation) (any, error) {
	if o.Deadline.IsZero() {
		return nil, errors.New("observation without deadline")
	}
	return map[string]any{"tick": o.Tick, "obs": o.Data}, nil
}

func TestRunActsAndStops(t *testing.T) {
	h := newHost(t, true)
	a := h.connect()

	hello := receive(t, h.hellos, "hello")
	var hd struct {
		SDK string `json:"sdk"`
		Pid int    `json:"pid"`
	}
	if err := json.Unmarshal(hello.Data, &hd); err != nil || hd.SDK != "go" || hd.Pid != os.Getpid() {
		t.Errorf("hello data %s (%v), want sdk go and pid %d", hello.Data, err, os.Getpid())
	}
	if hello.Agent != id || hello.Run != run || hello.Seq != 1 {
		t.Errorf("hello = %+v", hello)
	}
	if a.ID() != id || a.RunID() != run || a.Seed() != 42 || a.Workspace() != "/ws/a1" {
		t.Errorf("ID, RunID, Seed, Workspace = %q %q %d %q", a.ID(), a.RunID(), a.Seed(), a.Workspace())
	}

	errc := make(chan error, 1)
	go func() { errc <- a.Run(context.Background(), echo) }()

	lastSeq := hello.Seq
	for tick := uint64(1); tick <= 3; tick++ {
		h.obs(tick, map[string]uint64{"n": tick * 10})
		act := receive(t, h.acts, "act "+strconv.FormatUint(tick, 10))
		var ad struct {
			Tick uint64
			Obs  struct{ N uint64 }
		}
		if err := json.Unmarshal(act.Data, &ad); err != nil {
			t.Fatalf("act data %s: %v", act.Data, err)
		}
		if act.Kind != bus.KindAct || act.Tick != tick || act.Agent != id || ad.Tick != tick || ad.Obs.N != tick*10 {
			t.Errorf("act = %+v data %s, want tick %d", act, act.Data, tick)
		}
		if act.Seq <= lastSeq {
			t.Errorf("act seq %d after %d: not increasing", act.Seq, lastSeq)
		}
		lastSeq = act.Seq
	}
	// A broadcast tick is ignored; stop ends Run with nil.
	h.send(bus.WorldSubject(run, bus.KindTick), bus.KindTick, 4, nil)
	h.send(bus.ToSubject(run, id, bus.KindStop), bus.KindStop, 0, nil)
	if err := waitErr(t, errc); err != nil {
		t.Errorf("Run after stop = %v, want nil", err)
	}
	<-a.Done()
	if a.Err() != nil {
		t.Errorf("Err after stop = %v", a.Err())
	}

	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	bye := receive(t, h.byes, "bye")
	if bye.Seq <= lastSeq || bye.Agent != id {
		t.Errorf("bye = %+v, want seq > %d", bye, lastSeq)
	}
}

func TestObservationsInOrderNoneDropped(t *testing.T) {
	h := newHost(t, true)
	a := h.connect()
	const n = 10 * sdk.ObservationBuffer
	release := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- a.Run(context.Background(), func(ctx context.Context, o sdk.Observation) (any, error) {
			<-release // hold the first observation until all are sent
			return o.Tick, nil
		})
	}()
	for tick := uint64(1); tick <= n; tick++ {
		h.obs(tick, nil)
	}
	if err := h.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	close(release)
	var last uint64
	for tick := uint64(1); tick <= n; tick++ {
		act := receive(t, h.acts, "act")
		if act.Tick != tick || act.Seq <= last {
			t.Fatalf("act %d: tick %d seq %d (last seq %d)", tick, act.Tick, act.Seq, last)
		}
		last = act.Seq
	}
	h.send(bus.WorldSubject(run, bus.KindEnd), bus.KindEnd, 0, nil)
	if err := waitErr(t, errc); err != nil {
		t.Errorf("Run after world end = %v, want nil", err)
	}
}

func TestRunEndsOnContextCancel(t *testing.T) {
	h := newHost(t, true)
	a := h.connect()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx, echo) }()
	h.obs(1, nil)
	receive(t, h.acts, "act")
	cancel()
	if err := waitErr(t, errc); !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel = %v, want context.Canceled", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if !errors.Is(a.Err(), sdk.ErrClosed) {
		t.Errorf("Err after Close = %v, want ErrClosed", a.Err())
	}
	if err := a.Act(2, "late"); err == nil {
		t.Error("Act after Close succeeded")
	}
}

func TestHandlerErrorIsReturned(t *testing.T) {
	h := newHost(t, true)
	a := h.connect()
	boom := errors.New("boom")
	errc := make(chan error, 1)
	go func() {
		errc <- a.Run(context.Background(), func(context.Context, sdk.Observation) (any, error) { return nil, boom })
	}()
	h.obs(7, nil)
	if err := waitErr(t, errc); !errors.Is(err, boom) {
		t.Errorf("Run = %v, want boom", err)
	}
}

func TestConnectionLossEndsRun(t *testing.T) {
	h := newHost(t, true)
	a := h.connect()
	errc := make(chan error, 1)
	go func() { errc <- a.Run(context.Background(), echo) }()
	h.srv.Shutdown()
	if err := waitErr(t, errc); !errors.Is(err, sdk.ErrConnectionLost) {
		t.Errorf("Run after server shutdown = %v, want ErrConnectionLost", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close after connection loss: %v", err)
	}
}

func TestTopLevelRun(t *testing.T) {
	h := newHost(t, true)
	errc := make(chan error, 1)
	go func() {
		errc <- sdk.Run(context.Background(), echo, sdk.WithEnv(h.env()), sdk.WithLogger(agenttest.Logger(t)))
	}()
	receive(t, h.hellos, "hello")
	h.obs(1, nil)
	if act := receive(t, h.acts, "act"); act.Tick != 1 {
		t.Errorf("act tick %d, want 1", act.Tick)
	}
	h.send(bus.ToSubject(run, id, bus.KindStop), bus.KindStop, 0, nil)
	if err := waitErr(t, errc); err != nil {
		t.Errorf("sdk.Run = %v, want nil", err)
	}
	receive(t, h.byes, "bye")
}

func TestConnectErrors(t *testing.T) {
	h := newHost(t, false) // nobody answers hello
	t.Run("missing env", func(t *testing.T) {
		env := h.env()
		delete(env, agents.EnvAgentID)
		_, err := sdk.Connect(context.Background(), sdk.WithEnv(env))
		if err == nil || !strings.Contains(err.Error(), agents.EnvAgentID) {
			t.Errorf("Connect without agent id = %v, want error naming %s", err, agents.EnvAgentID)
		}
	})
	t.Run("bad seed", func(t *testing.T) {
		env := h.env()
		env[agents.EnvSeed] = "minus one"
		if _, err := sdk.Connect(context.Background(), sdk.WithEnv(env)); err == nil || !strings.Contains(err.Error(), agents.EnvSeed) {
			t.Errorf("Connect with bad seed = %v", err)
		}
	})
	t.Run("no host", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, err := sdk.Connect(ctx, sdk.WithEnv(h.env())); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Connect without host = %v, want DeadlineExceeded", err)
		}
	})
}
