package terrarium_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/agenttest"
	"github.com/terrarium-sim/terrarium/agents/inproc"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/internal/leaktest"
	"github.com/terrarium-sim/terrarium/replay"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
	"github.com/terrarium-sim/terrarium/world/worldtest"
)

// The embedding API as a game uses it: a scenario built in Go, the game's
// own world, hosts started and stepped from the test.

// hangGuard turns a hang into a failure; it never decides a passing test.
const hangGuard = 2 * time.Minute

// gameWorld is a game's world: every observed agent is told the tick; any
// JSON action is valid. It records what the loop took in (agent@tag) and
// what each step applied; stall, if set, runs in Step.
type gameWorld struct {
	mu        sync.Mutex
	changed   chan struct{}
	validated map[string]bool
	applied   map[world.Tick][]world.Action
	ticks     world.Tick
	stall     func(t world.Tick)
}

func newGameWorld() *gameWorld {
	return &gameWorld{changed: make(chan struct{}), validated: map[string]bool{}, applied: map[world.Tick][]world.Action{}}
}

func (w *gameWorld) update(f func()) {
	w.mu.Lock()
	f()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// waitFor waits until cond holds (under the world's lock).
func (w *gameWorld) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	guard := time.NewTimer(hangGuard)
	defer guard.Stop()
	for {
		w.mu.Lock()
		ok, ch := cond(), w.changed
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-guard.C:
			t.Fatalf("never: %s", what)
		}
	}
}

func (w *gameWorld) tick() world.Tick {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ticks
}

func (w *gameWorld) Observe(id world.AgentID, t world.Tick) (json.RawMessage, bool, error) {
	return json.RawMessage(fmt.Sprintf(`{"tick":%d}`, t)), true, nil
}

func (w *gameWorld) Validate(a world.Action) error {
	w.update(func() { w.validated[fmt.Sprintf("%s@%d", a.Agent, a.Tick)] = true })
	return nil
}

func (w *gameWorld) DefaultAction(world.AgentID, world.Tick) json.RawMessage {
	return json.RawMessage(`null`)
}

func (w *gameWorld) Step(t world.Tick, actions []world.Action, _ *rand.Rand) (world.StepResult, error) {
	w.update(func() {
		w.applied[t] = actions
		w.ticks = t
	})
	if w.stall != nil {
		w.stall(t)
	}
	return world.StepResult{Metrics: map[string]float64{"actions": float64(len(actions))}}, nil
}

func (w *gameWorld) Done() bool                { return false }
func (w *gameWorld) Metrics() []string         { return []string{"actions"} }
func (w *gameWorld) Result() any               { return map[string]any{"ticks": w.tick()} }
func (w *gameWorld) Snapshot() ([]byte, error) { return nil, nil }
func (w *gameWorld) Restore([]byte) error      { return nil }
func (w *gameWorld) StateHash() string         { return fmt.Sprint(w.tick()) }

// taggedWorld is a gameWorld whose state is every action it applied, with
// the tick the action was tagged with (Action.Tick): a replay that tags an
// action otherwise than the loop did diverges from the record.
type taggedWorld struct {
	*gameWorld
	sum string // the loop's goroutine only
}

func newTaggedWorld() *taggedWorld { return &taggedWorld{gameWorld: newGameWorld()} }

func (w *taggedWorld) Step(t world.Tick, actions []world.Action, rng *rand.Rand) (world.StepResult, error) {
	res, err := w.gameWorld.Step(t, actions, rng)
	h := sha256.New()
	h.Write([]byte(w.sum))
	for _, a := range actions {
		fmt.Fprintf(h, "%s@%d=%s;", a.Agent, a.Tick, a.Data)
	}
	w.sum = hex.EncodeToString(h.Sum(nil))
	return res, err
}

func (w *taggedWorld) StateHash() string         { return w.sum }
func (w *taggedWorld) Snapshot() ([]byte, error) { return json.Marshal(w.sum) }
func (w *taggedWorld) Restore(b []byte) error    { return json.Unmarshal(b, &w.sum) }

// newGameHost makes a host for a Go-built scenario in a fresh directory.
func newGameHost(t *testing.T, sc *scenarios.Scenario, w world.World, with func(*terrarium.Config)) *terrarium.Host {
	t.Helper()
	cfg := terrarium.Config{Scenario: sc, World: w, Logger: testLogger(t), Dir: filepath.Join(openTempDir(t), "run"),
		Env: raceEnv, StopGrace: 500 * time.Millisecond}
	if with != nil {
		with(&cfg)
	}
	h, err := terrarium.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func npcs(name, program string, n int) scenarios.Agent {
	a := scenarios.NewAgent(name, scenarios.RuntimeBuiltin, program)
	a.Count = n
	return a
}

// runEvents reads and verifies a finished run's event log and checks no
// agent process is left.
func runEvents(t *testing.T, res *terrarium.Result) []events.Record {
	t.Helper()
	recs := verifiedEvents(t, res.Dir)
	return recs
}

type actionRecord struct {
	Agent      string          `json:"agent"`
	Data       json.RawMessage `json:"data"`
	Filled     string          `json:"filled"`
	ActionTick world.Tick      `json:"action_tick"`
	LateTicks  world.Tick      `json:"late_ticks"`
	LateUS     *int64          `json:"late_us"`
}

func tickActions(t *testing.T, rec events.Record) []actionRecord {
	t.Helper()
	var d struct {
		Actions []actionRecord `json:"actions"`
	}
	if err := json.Unmarshal(rec.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d.Actions
}

// Case 2: realtime with 50 NPC processes, one of which answers only after
// 30 ticks' worth of clock time. Every other NPC's actions land at their
// tick; the slow one's land 30 ticks later, recorded with their lateness.
// The test moves the clock to each boundary only once the loop has taken
// in the actions that must land at that tick. The run replays: a fresh
// copy of the game's world, given every action where it landed and tagged
// with the tick it answered, reproduces every recorded state hash.
func TestRealtimeFiftyNPCsOneSlow(t *testing.T) {
	leaktest.Goroutines(t)
	const ticks, rate = 40, 20
	interval := time.Second / rate
	sc := scenarios.New("rt50").Realtime(rate)
	sc.Ticks = ticks
	sc.Add(npcs("npc", "test_npc_echo", 49), npcs("slow", "test_npc_lag30", 1))
	clock := worldtest.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	epoch := clock.Now()
	w := newTaggedWorld()
	h := newGameHost(t, sc, w, func(c *terrarium.Config) { c.Clock = clock })
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for tk := world.Tick(1); tk <= ticks; tk++ {
		if err := clock.WaitTimer(epoch.Add(time.Duration(tk)*interval), hangGuard); err != nil {
			t.Fatal(err)
		}
		w.waitFor(t, fmt.Sprintf("all actions for tick %d", tk), func() bool {
			for i := 1; i <= 49; i++ {
				if !w.validated[fmt.Sprintf("npc-%d@%d", i, tk)] {
					return false
				}
			}
			return tk <= 30 || w.validated[fmt.Sprintf("slow@%d", tk-30)]
		})
		clock.Advance(interval)
	}
	res, err := h.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.Ticks != ticks {
		t.Fatalf("ran %d ticks, want %d", res.Ticks, ticks)
	}
	for tk := world.Tick(1); tk <= ticks; tk++ {
		for _, a := range w.applied[tk] {
			switch {
			case a.Agent != "slow" && a.Tick != tk:
				t.Errorf("tick %d: %s's action of tick %d applied", tk, a.Agent, a.Tick)
			case a.Agent == "slow" && tk > 30 && a.Tick != tk-30:
				t.Errorf("tick %d: slow's action of tick %d applied, want %d", tk, a.Tick, tk-30)
			}
		}
		if len(w.applied[tk]) != 50 {
			t.Errorf("tick %d applied %d actions, want 50", tk, len(w.applied[tk]))
		}
	}
	closed := kinds(runEvents(t, res), world.EventTickClosed)
	if len(closed) != ticks {
		t.Fatalf("%d tick.closed events", len(closed))
	}
	for _, c := range closed {
		for _, a := range tickActions(t, c) {
			late := a.Agent == "slow" && c.Tick > 30
			switch {
			case late && (a.LateTicks != 30 || a.ActionTick != c.Tick-30 || a.LateUS == nil || *a.LateUS != (29*interval).Microseconds()):
				t.Errorf("tick %d: slow recorded %+v, want 30 ticks (29 intervals) late", c.Tick, a)
			case !late && (a.LateTicks != 0 || a.LateUS != nil):
				t.Errorf("tick %d: %s recorded late: %+v", c.Tick, a.Agent, a)
			case a.Agent == "slow" && c.Tick <= 30 && a.Filled != "default":
				t.Errorf("tick %d: slow's missing action recorded %+v, want filled by default", c.Tick, a)
			}
		}
	}
	if st := agentResult(t, res, "slow"); st.Actions != ticks-30 || st.Missing != 30 {
		t.Errorf("slow: %+v", st.AgentStats)
	}

	if _, err := replay.Run(res.Dir, replay.Options{}); !errors.Is(err, replay.ErrProgramWorld) {
		t.Errorf("replay without the game's world: %v, want ErrProgramWorld", err)
	}
	rp, err := replay.Run(res.Dir, replay.Options{World: func() world.World { return newTaggedWorld() }})
	if err != nil {
		t.Fatal(err)
	}
	if !rp.Certified || rp.Ticks != ticks || rp.Hash != res.StateHash {
		t.Errorf("replay: certified %v after %d ticks, hash %.12s (result %.12s); problems %v", rp.Certified, rp.Ticks, rp.Hash, res.StateHash, rp.Problems)
	}
}

// Case 3: a world step takes 3 ticks' worth of clock time once; the loop
// runs at most max_catch_up overdue ticks back to back, reports the lag and
// returns to the rate.
func TestRealtimeHostCatchUpCapped(t *testing.T) {
	const rate = 10
	interval := time.Second / rate
	sc := scenarios.New("lag").Realtime(rate)
	sc.Ticks, sc.MaxCatchUp = 7, 2
	sc.Add(npcs("npc", "test_npc_echo", 1))
	clock := worldtest.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	epoch := clock.Now()
	w := newGameWorld()
	var stepAt sync.Map
	w.stall = func(tk world.Tick) {
		stepAt.Store(tk, clock.Now().Sub(epoch)/interval)
		if tk == 2 {
			clock.Advance(3 * interval)
		}
	}
	h := newGameHost(t, sc, w, func(c *terrarium.Config) { c.Clock = clock })
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, b := range []int{1, 2, 6, 7, 8} { // after tick 2: ticks 3, 4 at once, then 5 at 6 intervals ...
		if err := clock.WaitTimer(epoch.Add(time.Duration(b)*interval), hangGuard); err != nil {
			t.Fatal(err)
		}
		clock.Advance(interval)
	}
	res, err := h.Wait()
	if err != nil {
		t.Fatal(err)
	}
	for tk, want := range map[world.Tick]time.Duration{1: 1, 2: 2, 3: 5, 4: 5, 5: 6, 6: 7, 7: 8} {
		if got, _ := stepAt.Load(tk); got != want {
			t.Errorf("tick %d stepped at %v intervals, want %d", tk, got, want)
		}
	}
	lag := kinds(runEvents(t, res), world.EventTickLag)
	if len(lag) != 1 || lag[0].Tick != 2 {
		t.Fatalf("tick.lag events %v, want one at tick 2", lag)
	}
	var d struct {
		Behind, CaughtUp, Dropped int
	}
	var raw map[string]int
	_ = json.Unmarshal(lag[0].Data, &raw)
	d.Behind, d.CaughtUp, d.Dropped = raw["behind_ticks"], raw["caught_up"], raw["dropped_ticks"]
	if d.Behind != 3 || d.CaughtUp != 2 || d.Dropped != 1 {
		t.Errorf("tick.lag %s, want 3 behind, 2 caught up, 1 dropped", lag[0].Data)
	}
}

// Case 4: a game that calls Step from its own loop, and never starts
// Terrarium's clock, gets exactly one tick per call.
func TestStepManuallyOneTickPerCall(t *testing.T) {
	leaktest.Goroutines(t)
	for _, stepping := range []string{scenarios.SteppingRealtime, scenarios.SteppingLockstep} {
		t.Run(stepping, func(t *testing.T) {
			sc := scenarios.New("manual")
			if stepping == scenarios.SteppingRealtime {
				sc.Realtime(60)
			}
			sc.Add(npcs("npc", "test_npc_echo", 3))
			clock := worldtest.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			w := newGameWorld()
			h := newGameHost(t, sc, w, func(c *terrarium.Config) { c.Clock, c.StepManually = clock, true })
			ctx := context.Background()
			if err := h.Start(ctx); err != nil {
				t.Fatal(err)
			}
			for i := world.Tick(1); i <= 10; i++ {
				if stepping == scenarios.SteppingRealtime {
					// The agents answered tick i: still the loop waits for the call.
					w.waitFor(t, fmt.Sprintf("answers for tick %d", i), func() bool {
						return w.validated[fmt.Sprintf("npc-1@%d", i)] && w.validated[fmt.Sprintf("npc-2@%d", i)] && w.validated[fmt.Sprintf("npc-3@%d", i)]
					})
					if got := w.tick(); got != i-1 {
						t.Fatalf("before Step %d the world is at tick %d", i, got)
					}
				}
				rep, err := h.Step(ctx)
				if err != nil || rep.Tick != i || w.tick() != i {
					t.Fatalf("Step %d = tick %d (world at %d), %v", i, rep.Tick, w.tick(), err)
				}
				if len(rep.Answered) != 3 {
					t.Errorf("tick %d: answered %v", i, rep.Answered)
				}
			}
			if stepping == scenarios.SteppingRealtime && len(clock.Timers()) != 0 {
				t.Errorf("the clock got timers: %v", clock.Timers())
			}
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := h.Step(ctx); !errors.Is(err, terrarium.ErrEnded) {
				t.Errorf("Step after Close = %v, want ErrEnded", err)
			}
			res, err := h.Wait()
			if !errors.Is(err, context.Canceled) || res.Ticks != 10 || res.Status != terrarium.StatusInterrupted {
				t.Errorf("Wait = %d ticks, %s, %v", res.Ticks, res.Status, err)
			}
			runEvents(t, res)
		})
	}
}

// Case 1: two hosts in one process, each with its own world and agents:
// both run; closing one leaves the other running; nothing collides.
func TestTwoHostsInOneProcess(t *testing.T) {
	leaktest.Goroutines(t)
	type room struct {
		h *terrarium.Host
		w *gameWorld
	}
	var rooms [2]room
	for i := range rooms {
		sc := scenarios.New("room").Realtime(50)
		sc.Add(npcs("npc", "test_npc_echo", 2), scenarios.NewAgent("crowd", scenarios.RuntimeInProc, "echo"))
		w := newGameWorld()
		h := newGameHost(t, sc, w, func(c *terrarium.Config) {
			c.EventBuffer = 1 << 14
			c.InProc = map[string]inproc.Factory{"echo": func(world.Seat) inproc.Agent {
				return inproc.Func(func(_ context.Context, o inproc.Observation) (any, error) { return map[string]any{"n": o.Tick}, nil })
			}}
		})
		rooms[i] = room{h, w}
	}
	ctx := context.Background()
	for _, r := range rooms {
		if err := r.h.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a, b := rooms[0], rooms[1]
	if a.h.RunID() == b.h.RunID() || a.h.Dir() == b.h.Dir() || a.h.BusURL() == b.h.BusURL() || a.h.BusURL() == "" {
		t.Fatalf("hosts share: run %s / %s, dir %s / %s, bus %s / %s", a.h.RunID(), b.h.RunID(), a.h.Dir(), b.h.Dir(), a.h.BusURL(), b.h.BusURL())
	}
	for _, r := range rooms {
		r.w.waitFor(t, "5 ticks", func() bool { return r.w.ticks >= 5 })
	}
	if err := a.h.Close(); err != nil {
		t.Fatal(err)
	}
	resA, _ := a.h.Wait()
	after := b.w.tick()
	b.w.waitFor(t, "the other room going on", func() bool { return b.w.ticks >= after+5 })
	if err := b.h.Close(); err != nil {
		t.Fatal(err)
	}
	resB, _ := b.h.Wait()
	for i, res := range []*terrarium.Result{resA, resB} {
		if res.Status != terrarium.StatusInterrupted || res.Ticks < 5 {
			t.Errorf("room %d: %s after %d ticks", i, res.Status, res.Ticks)
		}
		runEvents(t, res)
	}
	// Each host's event channel carries its own run only, and ends with run.finished.
	for i, r := range rooms {
		var last events.Record
		n := 0
		for rec := range r.h.Events() {
			if rec.Run != r.h.RunID() {
				t.Errorf("room %d got an event of run %s", i, rec.Run)
			}
			last = rec
			n++
		}
		if last.Kind != events.RunFinished || n == 0 {
			t.Errorf("room %d: %d events, last %q", i, n, last.Kind)
		}
	}
}

// Case 5: closing the host while agents are in the middle of acting
// returns, leaves no process, and does not touch the game's goroutines.
func TestCloseWhileAgentsMidAction(t *testing.T) {
	sc := scenarios.New("busy")
	sc.ActionDeadline = time.Hour
	sc.Add(npcs("npc", "test_npc_busy", 3))
	w := newGameWorld()
	h := newGameHost(t, sc, w, func(c *terrarium.Config) { c.StopGrace = 200 * time.Millisecond })

	// The game's own goroutine, ticking on its own.
	var gameTicks atomic.Int64
	stopGame, gameDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(gameDone)
		for {
			select {
			case <-stopGame:
				return
			default:
				gameTicks.Add(1)
				time.Sleep(time.Millisecond)
			}
		}
	}()
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ { // every agent is in the middle of its action for tick 1
		marker := filepath.Join(h.Dir(), "workspace", "agents", fmt.Sprintf("npc-%d", i), "acting")
		deadline := time.Now().Add(hangGuard)
		for {
			if _, err := os.Stat(marker); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("npc-%d never started acting", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	_ = h.Close()
	res, err := h.Wait()
	if !errors.Is(err, context.Canceled) || res.Status != terrarium.StatusInterrupted || res.Ticks != 0 {
		t.Fatalf("Wait = %v, %s, %d ticks", err, res.Status, res.Ticks)
	}
	recs := runEvents(t, res)
	if n := len(kinds(recs, events.AgentExited)); n != 3 {
		t.Errorf("%d agent.exited events, want 3", n)
	}
	for _, a := range res.Agents {
		if a.Status != "killed" { // it ignored the stop and SIGTERM: killed after the grace
			t.Errorf("agent %s: %s (%s), want killed", a.ID, a.Status, a.Signal)
		}
		if agenttest.Alive(a.Pid) {
			t.Errorf("agent %s (pid %d) still running", a.ID, a.Pid)
		}
	}
	before := gameTicks.Load()
	deadline := time.Now().Add(hangGuard)
	for gameTicks.Load() <= before+3 {
		if time.Now().After(deadline) {
			t.Fatal("the game's goroutine stopped with the host")
		}
		time.Sleep(time.Millisecond)
	}
	close(stopGame)
	<-gameDone
}

// In-process agents keep the protocol's semantics: one action per tick,
// recorded like a process's; one that takes too long misses its tick and
// the policy fills it in; both run in one world with process agents.
func TestInProcAgentsInLockstep(t *testing.T) {
	leaktest.Goroutines(t)
	sc := scenarios.New("crowd")
	sc.Ticks = 5
	sc.ActionDeadline = 3 * time.Second // only sleepy's tick 3 waits for it
	crowd := scenarios.NewAgent("crowd", scenarios.RuntimeInProc, "counter")
	crowd.Count = 500
	sc.Add(crowd, scenarios.NewAgent("sleepy", scenarios.RuntimeInProc, "sleepy"), npcs("npc", "test_npc_echo", 1))
	w := newGameWorld()
	var acted atomic.Int64
	h := newGameHost(t, sc, w, func(c *terrarium.Config) {
		c.InProc = map[string]inproc.Factory{
			"counter": func(seat world.Seat) inproc.Agent {
				n := 0 // its own state
				return inproc.Func(func(_ context.Context, o inproc.Observation) (any, error) {
					n++
					acted.Add(1)
					return map[string]any{"seat": seat.Index, "n": n}, nil
				})
			},
			"sleepy": func(world.Seat) inproc.Agent {
				return inproc.Func(func(ctx context.Context, o inproc.Observation) (any, error) {
					if o.Tick == 3 {
						<-ctx.Done() // past its deadline: it misses tick 3
						return nil, ctx.Err()
					}
					return "ok", nil
				})
			},
		}
	})
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := h.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if acted.Load() != 500*5 {
		t.Errorf("crowd acted %d times, want %d", acted.Load(), 500*5)
	}
	for tk := world.Tick(1); tk <= 5; tk++ {
		if n := len(w.applied[tk]); n != 502 {
			t.Errorf("tick %d applied %d actions", tk, n)
		}
	}
	closed := kinds(runEvents(t, res), world.EventTickClosed)
	for _, c := range closed {
		for _, a := range tickActions(t, c) {
			if strings.HasPrefix(a.Agent, "crowd-") && (a.Filled != "" || !strings.Contains(string(a.Data), fmt.Sprintf(`"n":%d`, c.Tick))) {
				t.Errorf("tick %d: %s recorded %+v", c.Tick, a.Agent, a)
			}
			if a.Agent == "sleepy" && (a.Filled != "") != (c.Tick == 3) {
				t.Errorf("tick %d: sleepy recorded %+v", c.Tick, a)
			}
		}
	}
	if s := agentResult(t, res, "sleepy"); s.Missing != 1 || s.Actions != 4 || s.Status != "stopped" {
		t.Errorf("sleepy: %+v", s)
	}
}

// A game that reads nothing from its event channel for many ticks slows
// nothing and loses nothing: the world reaches its tick target with room
// for 4 events in the channel, then the game drains every event of the
// run, in seq order, each once: those of the live run from the stream,
// and the rest after the run ended.
func TestEventsChannelNeverBlocksTheWorld(t *testing.T) {
	leaktest.Goroutines(t)
	const target, ticks = 40, 50
	sc := scenarios.New("unread")
	sc.Ticks = ticks
	sc.Add(scenarios.NewAgent("crowd", scenarios.RuntimeInProc, "echo"))
	w := newGameWorld()
	h := newGameHost(t, sc, w, func(c *terrarium.Config) {
		c.EventBuffer, c.StepManually = 4, true
		c.InProc = map[string]inproc.Factory{"echo": func(world.Seat) inproc.Agent {
			return inproc.Func(func(context.Context, inproc.Observation) (any, error) { return 1, nil })
		}}
	})
	ctx := context.Background()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The world reaches its target while the game reads nothing.
	for i := world.Tick(1); i <= target; i++ {
		if rep, err := h.Step(ctx); err != nil || rep.Tick != i {
			t.Fatalf("Step %d = tick %d, %v", i, rep.Tick, err)
		}
	}
	if got := w.tick(); got != target {
		t.Fatalf("the world is at tick %d, want %d", got, target)
	}
	// The game catches up with the live run: the run cannot end before the
	// next Step, so these come from the stream.
	var got []events.Record
	for rec := range h.Events() {
		got = append(got, rec)
		if rec.Kind == world.EventTickClosed && rec.Tick == target {
			break
		}
	}
	if len(got) <= target {
		t.Fatalf("caught up with tick %d after %d events", target, len(got))
	}
	// ...the run ends, and the game reads the rest after Wait.
	for {
		if _, err := h.Step(ctx); errors.Is(err, terrarium.ErrEnded) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	res, err := h.Wait()
	if err != nil {
		t.Fatal(err)
	}
	for rec := range h.Events() {
		got = append(got, rec)
	}
	want := runEvents(t, res)
	if res.Ticks != ticks || len(got) != len(want) {
		t.Fatalf("%d ticks; the channel had %d events, events.jsonl %d", res.Ticks, len(got), len(want))
	}
	for i := range want {
		if got[i].Seq != want[i].Seq || got[i].Hash != want[i].Hash {
			t.Fatalf("event %d: channel has seq %d %s, events.jsonl seq %d %s", i, got[i].Seq, got[i].Kind, want[i].Seq, want[i].Kind)
		}
	}
}

// A game that stops reading and closes the host releases the channel: it
// is closed, and nothing of the host goes on running.
func TestEventsChannelClosedByClose(t *testing.T) {
	leaktest.Goroutines(t)
	sc := scenarios.New("closed")
	sc.Ticks = 20
	sc.Add(scenarios.NewAgent("crowd", scenarios.RuntimeInProc, "echo"))
	h := newGameHost(t, sc, newGameWorld(), func(c *terrarium.Config) {
		c.EventBuffer = 2
		c.InProc = map[string]inproc.Factory{"echo": func(world.Seat) inproc.Agent {
			return inproc.Func(func(context.Context, inproc.Observation) (any, error) { return 1, nil })
		}}
	})
	res, err := h.Run(context.Background())
	if err != nil || res.Ticks != 20 {
		t.Fatalf("run: %d ticks, %v", res.Ticks, err)
	}
	if rec := <-h.Events(); rec.Kind != events.RunStarted {
		t.Errorf("first event %s, want %s", rec.Kind, events.RunStarted)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for range h.Events() {
		n++
	}
	if n > 2 {
		t.Errorf("%d events after Close, want at most the 2 buffered", n)
	}
}

// Bad embedding settings are refused by New, before anything runs.
func TestNewRefusesBadEmbedding(t *testing.T) {
	sc := scenarios.New("bad")
	sc.Add(scenarios.NewAgent("crowd", scenarios.RuntimeInProc, "nobody"))
	_, err := terrarium.New(terrarium.Config{Scenario: sc, World: newGameWorld(), Dir: filepath.Join(t.TempDir(), "run")})
	if err == nil || !strings.Contains(err.Error(), `names "nobody", which Config.InProc does not supply`) {
		t.Errorf("New = %v", err)
	}
	sc = scenarios.New("noworld")
	sc.Add(npcs("npc", "test_npc_echo", 1))
	if _, err := terrarium.New(terrarium.Config{Scenario: sc, Dir: filepath.Join(t.TempDir(), "run")}); err == nil || !strings.Contains(err.Error(), "no world") {
		t.Errorf("New without a world = %v", err)
	}
	sc = scenarios.New("turns")
	sc.Stepping = scenarios.SteppingTurnBased
	sc.Add(npcs("npc", "test_npc_echo", 1))
	if _, err := terrarium.New(terrarium.Config{Scenario: sc, World: newGameWorld(), Dir: filepath.Join(t.TempDir(), "run")}); err == nil || !strings.Contains(err.Error(), "world.Turns") {
		t.Errorf("New of a turn-based run without a turn order = %v", err)
	}
	sc = scenarios.New("manual")
	sc.Add(npcs("npc", "test_npc_echo", 1))
	h, err := terrarium.New(terrarium.Config{Scenario: sc, World: newGameWorld(), StepManually: true, Dir: filepath.Join(t.TempDir(), "run")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Run(context.Background()); err == nil {
		t.Error("Run of a manual host was accepted")
	}
	if _, err := h.Step(context.Background()); !errors.Is(err, terrarium.ErrNotStarted) {
		t.Errorf("Step before Start = %v", err)
	}
}

// Many hosts made in the same second (one per game room) get distinct run
// ids, hence distinct run directories. (Regression: 16 random bits made a
// clash likely with a few hundred rooms.)
func TestRunIDsOfOneSecondAreDistinct(t *testing.T) {
	now := time.Now()
	seen := map[string]bool{}
	for range 200 {
		id := terrarium.NewRunID("room", now)
		if seen[id] {
			t.Fatalf("run id %s made twice", id)
		}
		seen[id] = true
	}
}

// turnWorld is a board game: the world names whose turn each tick is.
type turnWorld struct {
	*gameWorld
	order []world.AgentID
}

func (w turnWorld) Turn(t world.Tick) world.AgentID { return w.order[int(t-1)%len(w.order)] }

// Turn-based through the host: one agent per tick, in the world's order.
func TestTurnBasedHost(t *testing.T) {
	sc := scenarios.New("board")
	sc.Stepping, sc.Ticks = scenarios.SteppingTurnBased, 6
	sc.Add(npcs("p", "test_npc_echo", 3))
	w := turnWorld{newGameWorld(), []world.AgentID{"p-2", "p-3", "p-1"}}
	h := newGameHost(t, sc, w, nil)
	res, err := h.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for tk := world.Tick(1); tk <= 6; tk++ {
		got := w.applied[tk]
		if len(got) != 1 || got[0].Agent != w.Turn(tk) || got[0].Tick != tk {
			t.Errorf("tick %d applied %v, want only %s's move", tk, got, w.Turn(tk))
		}
	}
	runEvents(t, res)
}
