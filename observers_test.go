package terrarium_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/internal/leaktest"
	"github.com/terrarium-sim/terrarium/internal/testenv"
	"github.com/terrarium-sim/terrarium/internal/testlog"
	"github.com/terrarium-sim/terrarium/observe"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

// burstKind is a test world: benchEchoWorld's shapes, plus Burst world
// events at tick BurstAt, and a gate: Step(GateAt) waits until the test
// opens the gate named Gate.
const burstKind = "test_burst"

// gate is a channel the burst world waits on, closed once.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

var (
	gatesMu sync.Mutex
	gates   = map[string]*gate{}
)

// openGates opens a scenario's gates, so a test that fails while its world
// waits ends instead of hanging (startRun does it before closing the host).
func openGates(name string) {
	gatesMu.Lock()
	defer gatesMu.Unlock()
	for _, n := range []string{name, name + "/hold"} {
		if g := gates[n]; g != nil {
			g.open()
		}
	}
}

// newGate makes a gate for one test, opened later by the test (or at its
// end): the world waits at gate_at for open, and at hold_at for hold.
func newGate(t testing.TB) (name string, open, hold func()) {
	t.Helper()
	name = fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
	mk := func(n string) func() {
		g := &gate{ch: make(chan struct{})}
		gatesMu.Lock()
		gates[n] = g
		gatesMu.Unlock()
		t.Cleanup(g.open)
		return g.open
	}
	return name, mk(name), mk(name + "/hold")
}

type burstConfig struct {
	Rounds  int    `hcl:"rounds,optional"`
	Burst   int    `hcl:"burst,optional"`
	BurstAt int    `hcl:"burst_at,optional"`
	GateAt  int    `hcl:"gate_at,optional"`
	HoldAt  int    `hcl:"hold_at,optional"`
	Gate    string `hcl:"gate,optional"`
}

func init() {
	world.Register(world.Kind{
		Name:      burstKind,
		Doc:       "tests only: bench_echo plus a burst of world events and a gate the test opens",
		NewConfig: func() any { return &burstConfig{Rounds: 20} },
		New: func(config any, seats []world.Seat) (world.World, error) {
			c := config.(*burstConfig)
			w := &burstWorld{benchEchoWorld: benchEchoWorld{rounds: world.Tick(c.Rounds)}, cfg: *c}
			if c.Gate != "" {
				gatesMu.Lock()
				if g := gates[c.Gate]; g != nil {
					w.gate = g.ch
				}
				if g := gates[c.Gate+"/hold"]; g != nil {
					w.hold = g.ch
				}
				gatesMu.Unlock()
			}
			return w, nil
		},
	})
}

type burstWorld struct {
	benchEchoWorld
	cfg        burstConfig
	gate, hold chan struct{}
}

func (w *burstWorld) Step(t world.Tick, a []world.Action, rng *rand.Rand) (world.StepResult, error) {
	if w.gate != nil && t == world.Tick(w.cfg.GateAt) {
		<-w.gate
	}
	if w.hold != nil && t == world.Tick(w.cfg.HoldAt) {
		<-w.hold
	}
	res, err := w.benchEchoWorld.Step(t, a, rng)
	if t == world.Tick(w.cfg.BurstAt) {
		for i := range w.cfg.Burst {
			res.Events = append(res.Events, world.Event{Kind: "burst", Fields: map[string]any{"i": i}})
		}
	}
	return res, err
}

// liveRun is a run started in the background.
type liveRun struct {
	h    *terrarium.Host
	info observe.Info
	done chan struct{}
	res  *terrarium.Result
	err  error
}

// startRun starts sc and returns once its event stream is up; opts, if
// any, change the host's config first.
func startRun(t testing.TB, sc *scenarios.Scenario, opts ...func(*terrarium.Config)) *liveRun {
	t.Helper()
	leaktest.Goroutines(t)
	infoCh := make(chan observe.Info, 1)
	cfg := terrarium.Config{
		Scenario: sc, Logger: runLogger(t), Dir: filepath.Join(openTempDir(t), "run"), Env: raceEnv,
		Observers: func(in observe.Info) { infoCh <- in },
	}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := terrarium.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lr := &liveRun{h: h, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	go func() {
		defer close(lr.done)
		defer cancel()
		lr.res, lr.err = h.Run(ctx)
	}()
	t.Cleanup(func() {
		if c, ok := sc.World.Config.(*burstConfig); ok && c.Gate != "" {
			openGates(c.Gate) // a failed test must not leave the world waiting
		}
		_ = h.Close()
		<-lr.done
	})
	select {
	case lr.info = <-infoCh:
	case <-lr.done:
		t.Fatalf("run ended before its stream was up: %v", lr.err)
	}
	return lr
}

// runLogger is the test's logger; benchmarks log errors only.
func runLogger(t testing.TB) hclog.Logger {
	if b, ok := t.(*testing.B); ok {
		return benchLogger(b)
	}
	return testlog.New(t)
}

// wait waits for the run's end and returns its verified events.
func (lr *liveRun) wait(t *testing.T) []events.Record {
	t.Helper()
	<-lr.done
	if lr.err != nil {
		t.Fatalf("run: %v", lr.err)
	}
	recs := verifiedEvents(t, lr.res.Dir)
	return recs
}

// connectObserver connects with the run's printed observer credentials,
// over TCP, as an outside program would.
func connectObserver(t testing.TB, in observe.Info, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserInfo(in.User, in.Password), nats.CustomInboxPrefix(in.InboxPrefix),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatalf("connect observer to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// collector reads a feed in the background until run.finished.
type collector struct {
	mu     sync.Mutex
	recs   []events.Record
	err    error
	done   chan struct{}
	closed atomic.Uint64 // the last tick.closed's tick
}

func collect(t *testing.T, f *observe.Feed) *collector {
	t.Helper()
	c := &collector{done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	go func() {
		defer close(c.done)
		defer cancel()
		for {
			r, err := f.Next(ctx)
			c.mu.Lock()
			if err != nil {
				c.err = err
				c.mu.Unlock()
				return
			}
			c.recs = append(c.recs, r)
			c.mu.Unlock()
			if r.Kind == world.EventTickClosed {
				c.closed.Store(uint64(r.Tick))
			}
			if r.Kind == events.RunFinished {
				return
			}
		}
	}()
	t.Cleanup(func() { f.Close(); <-c.done })
	return c
}

func (c *collector) wait(t *testing.T) []events.Record {
	t.Helper()
	<-c.done
	if c.err != nil {
		t.Fatalf("feed: %v (after %d events)", c.err, len(c.recs))
	}
	return c.recs
}

// sameRecords checks got is exactly want: every event, in order, each
// identical to the file's (its hash covers all of it).
func sameRecords(t *testing.T, who string, got, want []events.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s got %d events, the file has %d", who, len(got), len(want))
	}
	for i := range want {
		if got[i].Seq != want[i].Seq || got[i].Hash != want[i].Hash {
			t.Fatalf("%s: event %d is seq %d (hash %.8s), the file's is seq %d (hash %.8s)", who, i, got[i].Seq, got[i].Hash, want[i].Seq, want[i].Hash)
		}
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// burstScenario is a run of the burst world with two builtin agents. The
// world waits at gateAt for the gate's open and at its last tick (rounds)
// for hold, when gate is set.
func burstScenario(t testing.TB, gate string, rounds, burst, burstAt, gateAt int) *scenarios.Scenario {
	return writeScenario(t, fmt.Sprintf(`
scenario "burst" {
  ticks           = %d
  action_deadline = "30s"
}
world "test_burst" {
  rounds   = %d
  burst    = %d
  burst_at = %d
  gate_at  = %d
  hold_at  = %d
  gate     = %q
}
agent "a" {
  runtime = "builtin"
  command = "cooperator"
  count   = 2
}
`, rounds, rounds, burst, burstAt, gateAt, rounds, gate))
}

// Case 1 of issue 4: an observer that fetches nothing during a burst of
// 10,000 events, then drains, gets all of them in order; a fast observer
// beside it saw them live; the world reached its tick target meanwhile.
func TestSlowObserverLosesNothingAndSlowsNothing(t *testing.T) {
	const burst, target = 10000, 10
	gate, open, hold := newGate(t)
	lr := startRun(t, burstScenario(t, gate, 20, burst, 2, target+2))

	// The slow observer: a pull consumer of its own, from the start, that
	// fetches nothing for now.
	slowNC := connectObserver(t, lr.info, lr.info.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js, err := jetstream.New(slowNC)
	if err != nil {
		t.Fatal(err)
	}
	slow, err := js.CreateConsumer(ctx, lr.info.Stream, jetstream.ConsumerConfig{Durable: "slow", AckPolicy: jetstream.AckNonePolicy})
	if err != nil {
		t.Fatalf("slow observer's consumer: %v", err)
	}
	// The fast observer reads live.
	fastF, err := observe.Open(ctx, connectObserver(t, lr.info, lr.info.URL), lr.info.Stream, observe.Start{})
	if err != nil {
		t.Fatal(err)
	}
	fast := collect(t, fastF)

	// The world closes its target tick, past the burst, while the slow
	// observer has fetched nothing.
	eventually(t, "tick.closed of the target tick", func() bool {
		return fast.closed.Load() >= target
	})
	ci, err := slow.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Delivered.Stream != 0 || ci.NumPending < burst {
		t.Fatalf("slow consumer: delivered up to %d, %d pending; want nothing delivered and the burst waiting", ci.Delivered.Stream, ci.NumPending)
	}

	// Now it drains what is there, then the run goes on to its end (the
	// host waits only a moment for observers at the end: one that is
	// seconds behind then reads the rest from events.jsonl).
	si, err := js.Stream(ctx, lr.info.Stream)
	if err != nil {
		t.Fatal(err)
	}
	held := si.CachedInfo().State.LastSeq
	var got []events.Record
	for len(got) == 0 || got[len(got)-1].Kind != events.RunFinished {
		if uint64(len(got)) >= held {
			open()
		}
		if fast.closed.Load() >= 19 {
			hold() // both observers are past tick 19: let the run end
		}
		b, err := slow.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			var r events.Record
			if err := json.Unmarshal(m.Data(), &r); err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		}
		finished := len(got) > 0 && got[len(got)-1].Kind == events.RunFinished
		// The batch still waiting when the host shuts down ends with an error.
		if b.Error() != nil && !errors.Is(b.Error(), nats.ErrTimeout) && !finished {
			t.Fatalf("fetch: %v", b.Error())
		}
		if ctx.Err() != nil {
			t.Fatalf("slow observer has %d events and no run.finished", len(got))
		}
	}
	recs := lr.wait(t)
	if lr.res.Ticks != 20 {
		t.Errorf("ticks %d, want 20", lr.res.Ticks)
	}
	if n := len(kinds(recs, "world.burst")); n != burst {
		t.Fatalf("the file has %d burst events, want %d", n, burst)
	}
	sameRecords(t, "the slow observer", got, recs)
	sameRecords(t, "the fast observer", fast.wait(t), recs)
	if st := lr.res.Stream; st == nil || st.Stored != uint64(len(recs)) || st.Dropped+st.Failed != 0 {
		t.Errorf("result.json stream counts %+v, want all %d stored", st, len(recs))
	}
}

// Case 2 of issue 4: an observer that connects halfway and asks for
// everything gets the history, then live events, without a gap or a
// duplicate at the seam.
func TestLateObserverGetsHistoryThenLive(t *testing.T) {
	gate, open, hold := newGate(t)
	lr := startRun(t, burstScenario(t, gate, 40, 2000, 25, 20))
	path := filepath.Join(lr.h.Dir(), "events.jsonl")
	eventually(t, "tick 19 in events.jsonl", func() bool {
		recs, _ := events.ReadFile(path)
		return len(kinds(recs, world.EventTickClosed)) >= 19
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, err := observe.Open(ctx, connectObserver(t, lr.info, lr.info.URL), lr.info.Stream, observe.Start{})
	if err != nil {
		t.Fatal(err)
	}
	// The world goes on at once: history and new events race to the seam.
	open()
	c := collect(t, f)
	eventually(t, "the late observer at tick 39", func() bool { return c.closed.Load() >= 39 })
	hold()
	got := c.wait(t)
	recs := lr.wait(t)
	sameRecords(t, "the late observer", got, recs)
}

// The host's own feed (for programs embedding the host) and a feed from a
// sequence number.
func TestHostObserveFromSeq(t *testing.T) {
	gate, open, hold := newGate(t)
	lr := startRun(t, burstScenario(t, gate, 10, 0, 0, 5))
	if _, err := (&terrarium.Host{}).Observe(context.Background(), observe.Start{}); !errors.Is(err, terrarium.ErrNotRunning) {
		t.Errorf("Observe on a host that is not running: %v, want ErrNotRunning", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eventually(t, "tick 4 in events.jsonl", func() bool {
		recs, _ := events.ReadFile(filepath.Join(lr.h.Dir(), "events.jsonl"))
		return len(kinds(recs, world.EventTickClosed)) >= 4
	})
	f, err := lr.h.Observe(ctx, observe.Start{Seq: 3})
	if err != nil {
		t.Fatal(err)
	}
	if info, ok := lr.h.Observer(); !ok || info.Password != lr.info.Password || info.URL != lr.info.URL {
		t.Errorf("Host.Observer() = %+v, %v; want the run's observer.json", info, ok)
	}
	open()
	c := collect(t, f)
	eventually(t, "the host's feed at tick 9", func() bool { return c.closed.Load() >= 9 })
	hold()
	got := c.wait(t)
	recs := lr.wait(t)
	sameRecords(t, "the host's feed from seq 3", got, recs[2:])
	if _, err := lr.h.Observe(ctx, observe.Start{}); !errors.Is(err, terrarium.ErrNotRunning) {
		t.Errorf("Observe after the run: %v, want ErrNotRunning", err)
	}
}

// Feeds from a time and of new events only: opened while the world holds,
// each starts with the first event written after it opened, then has
// every later one.
func TestHostObserveFromTimeAndNew(t *testing.T) {
	gate, open, hold := newGate(t)
	lr := startRun(t, burstScenario(t, gate, 10, 0, 0, 5))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var before []events.Record
	eventually(t, "tick 4 in events.jsonl", func() bool {
		before, _ = events.ReadFile(filepath.Join(lr.h.Dir(), "events.jsonl"))
		return len(kinds(before, world.EventTickClosed)) >= 4
	})
	// The world now waits inside tick 5 for the gate: nothing more is
	// written until it opens.
	fromTime, err := lr.h.Observe(ctx, observe.Start{Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	newOnly, err := lr.h.Observe(ctx, observe.Start{New: true})
	if err != nil {
		t.Fatal(err)
	}
	ct, cn := collect(t, fromTime), collect(t, newOnly)
	open()
	eventually(t, "both feeds at tick 9", func() bool { return ct.closed.Load() >= 9 && cn.closed.Load() >= 9 })
	hold()
	recs := lr.wait(t)
	k := len(before)
	sameRecords(t, "the feed from a time", ct.wait(t), recs[k:])
	sameRecords(t, "the feed of new events", cn.wait(t), recs[k:])
}

// Replaying a finished run directory with filters prints exactly the
// selected events, as the file has them.
func TestWatchReplaysFinishedRunWithFilters(t *testing.T) {
	lr := startRun(t, burstScenario(t, "", 12, 3, 4, 0))
	recs := lr.wait(t)
	dir := lr.res.Dir
	for _, tc := range []struct {
		name string
		f    observe.Filter
		want func(events.Record) bool
	}{
		{"all", observe.Filter{}, func(events.Record) bool { return true }},
		{"kind glob", observe.Filter{Kinds: []string{"agent.*", "run.finished"}}, func(r events.Record) bool {
			return len(r.Kind) > 6 && r.Kind[:6] == "agent." || r.Kind == events.RunFinished
		}},
		{"agent", observe.Filter{Agents: []string{"a-2"}}, func(r events.Record) bool { return r.Agent == "a-2" }},
		{"ticks", observe.Filter{FromTick: 3, ToTick: 5}, func(r events.Record) bool { return r.Tick >= 3 && r.Tick <= 5 }},
		{"since", observe.Filter{AfterSeq: 10}, func(r events.Record) bool { return r.Seq > 10 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, notes bytes.Buffer
			if err := observe.Watch(context.Background(), observe.WatchOptions{Target: dir, Filter: tc.f, JSON: true, Out: &out, Notes: &notes}); err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			for _, r := range recs {
				if tc.want(r) {
					if err := observe.WriteJSON(&want, r); err != nil {
						t.Fatal(err)
					}
				}
			}
			if want.Len() == 0 || out.String() != want.String() {
				t.Errorf("watch printed\n%s\nwant\n%s", out.String(), want.String())
			}
			if notes.Len() != 0 {
				t.Errorf("notes for a finished run: %s", notes.String())
			}
		})
	}
	// The readable form: one line per event.
	var out bytes.Buffer
	if err := observe.Watch(context.Background(), observe.WatchOptions{Target: dir, Out: &out}); err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(out.Bytes(), []byte("\n")); n != len(recs) {
		t.Errorf("%d lines for %d events", n, len(recs))
	}
}

// natsCLI finds the stock nats CLI: on PATH, or where go install puts it.
func natsCLI(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	// go install puts it in $(go env GOPATH)/bin, often not on PATH.
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "nats")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := "the nats CLI (natscli) is not installed: bash .ci/deps/natscli.sh installs it (CI does)"
	testenv.Missing(t, "%s", msg)
	return ""
}

// Part 5 of issue 4: the stock nats CLI reads a live run's events with the
// printed observer credentials.
func TestNatsCLIReadsLiveRun(t *testing.T) {
	cli := natsCLI(t)
	gate, open, hold := newGate(t)
	lr := startRun(t, burstScenario(t, gate, 10, 0, 0, 6))
	path := filepath.Join(lr.h.Dir(), "events.jsonl")
	eventually(t, "tick 5 in events.jsonl", func() bool {
		recs, _ := events.ReadFile(path)
		return len(kinds(recs, world.EventTickClosed)) >= 5
	})
	want, err := events.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	in := lr.info
	cmd := exec.Command(cli, "--no-context", "--server", in.URL, "--user", in.User, "--password", in.Password,
		"--inbox-prefix", in.InboxPrefix, "sub", "--stream", in.Stream, "--all", "--raw", in.Subjects)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no contexts of the machine's user
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan []byte)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			lines <- bytes.Clone(sc.Bytes())
		}
	}()
	var got []events.Record
	timeout := time.After(time.Minute)
	for len(got) < len(want) {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("nats sub ended after %d events; stderr:\n%s", len(got), stderr.String())
			}
			var r events.Record
			if err := json.Unmarshal(l, &r); err != nil {
				t.Fatalf("nats sub printed %q: %v", l, err)
			}
			got = append(got, r)
		case <-timeout:
			t.Fatalf("nats sub printed %d of %d events; stderr:\n%s", len(got), len(want), stderr.String())
		}
	}
	sameRecords(t, "nats sub", got, want)
	_ = cmd.Process.Kill()
	open()
	hold()
	recs := lr.wait(t)
	if v := kinds(recs, events.Violation); len(v) != 0 {
		t.Errorf("the nats CLI reading the stream caused violations: %s", v[0].Data)
	}
}

// Part 5 of issue 4: with Config.Websocket (terrarium run --ws) the bus
// also serves websocket clients; an observer reads the live run over ws://
// with the printed credentials.
func TestWebsocketObserverReadsLiveRun(t *testing.T) {
	gate, open, hold := newGate(t)
	lr := startRun(t, burstScenario(t, gate, 10, 0, 0, 3), func(c *terrarium.Config) { c.Websocket = "127.0.0.1:0" })
	if !strings.HasPrefix(lr.info.WebsocketURL, "ws://127.0.0.1:") {
		t.Fatalf("observer info ws_url %q", lr.info.WebsocketURL)
	}
	onDisk, err := observe.ReadInfo(lr.h.Dir())
	if err != nil || onDisk != lr.info {
		t.Fatalf("observer.json %+v, %v; want %+v", onDisk, err, lr.info)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, err := observe.Open(ctx, connectObserver(t, lr.info, lr.info.WebsocketURL), lr.info.Stream, observe.Start{})
	if err != nil {
		t.Fatal(err)
	}
	open()
	c := collect(t, f)
	eventually(t, "the websocket observer at tick 9", func() bool { return c.closed.Load() >= 9 })
	hold()
	got := c.wait(t)
	recs := lr.wait(t)
	sameRecords(t, "the websocket observer", got, recs)
}
