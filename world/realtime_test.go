package world_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/internal/leaktest"
	"github.com/terrarium-sim/terrarium/world"
	"github.com/terrarium-sim/terrarium/world/worldtest"
)

// Realtime, manual and turn-based loops, driven by a manual clock: every
// assertion is about ticks and clock readings the test itself set, never
// about how fast the machine is.

const rtInterval = 50 * time.Millisecond

var rtEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// rtWorld records what the loop did: every validated action (agent@tag),
// every step's applied actions as "agent@tag=value" and the clock reading
// at each step. stall, if set, is called in Step (to move the clock).
type rtWorld struct {
	ids   []world.AgentID
	turns []world.AgentID // turn order, for turn-based

	mu        sync.Mutex
	changed   chan struct{}
	validated map[string]bool
	steps     map[world.Tick][]string
	stepAt    map[world.Tick]time.Time
	observed  map[world.Tick][]world.AgentID
	clock     world.Clock
	stall     func(t world.Tick)
	ticks     world.Tick
}

func newRTWorld(clock world.Clock, ids ...world.AgentID) *rtWorld {
	return &rtWorld{ids: ids, changed: make(chan struct{}), validated: map[string]bool{},
		steps: map[world.Tick][]string{}, stepAt: map[world.Tick]time.Time{}, observed: map[world.Tick][]world.AgentID{}, clock: clock}
}

func (w *rtWorld) update(f func()) {
	w.mu.Lock()
	f()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// waitValidated waits until the loop has taken in every key (agent@tick).
func (w *rtWorld) waitValidated(t *testing.T, keys ...string) {
	t.Helper()
	guard := time.NewTimer(hangGuard)
	defer guard.Stop()
	for {
		w.mu.Lock()
		ok := true
		for _, k := range keys {
			ok = ok && w.validated[k]
		}
		ch := w.changed
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-guard.C:
			t.Fatalf("loop never took in %v", keys)
		}
	}
}

func (w *rtWorld) Observe(id world.AgentID, t world.Tick) (json.RawMessage, bool, error) {
	w.update(func() { w.observed[t] = append(w.observed[t], id) })
	return json.RawMessage(fmt.Sprint(t)), true, nil
}

func (w *rtWorld) Validate(a world.Action) error {
	w.update(func() { w.validated[fmt.Sprintf("%s@%d", a.Agent, a.Tick)] = true })
	return nil
}

func (w *rtWorld) DefaultAction(world.AgentID, world.Tick) json.RawMessage {
	return json.RawMessage(`0`)
}

func (w *rtWorld) Step(t world.Tick, actions []world.Action, _ *rand.Rand) (world.StepResult, error) {
	var got []string
	for _, a := range actions {
		got = append(got, fmt.Sprintf("%s@%d=%s", a.Agent, a.Tick, a.Data))
	}
	w.update(func() {
		w.steps[t] = got
		w.stepAt[t] = w.clock.Now()
		w.ticks = t
	})
	if w.stall != nil {
		w.stall(t)
	}
	return world.StepResult{}, nil
}

func (w *rtWorld) Turn(t world.Tick) world.AgentID {
	return w.turns[int(t-1)%len(w.turns)]
}

func (w *rtWorld) Done() bool                { return false }
func (w *rtWorld) Metrics() []string         { return nil }
func (w *rtWorld) Result() any               { return nil }
func (w *rtWorld) Snapshot() ([]byte, error) { return nil, nil }
func (w *rtWorld) Restore([]byte) error      { return nil }
func (w *rtWorld) StateHash() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprint(w.ticks)
}

// obsSink records the observations the loop sends, per tick.
type obsSink struct {
	mu   sync.Mutex
	sent map[world.Tick][]world.AgentID
	fn   func(id world.AgentID, t world.Tick) // called for each, from the loop
}

func (s *obsSink) Send(id world.AgentID, t world.Tick, _ time.Time, _ json.RawMessage) error {
	s.mu.Lock()
	if s.sent == nil {
		s.sent = map[world.Tick][]world.AgentID{}
	}
	s.sent[t] = append(s.sent[t], id)
	s.mu.Unlock()
	if s.fn != nil {
		s.fn(id, t)
	}
	return nil
}

// recSink keeps the loop's events with their data.
type recSink struct {
	mu     sync.Mutex
	events []rec
}

type rec struct {
	kind  string
	t     world.Tick
	agent world.AgentID
	data  map[string]any
}

func (s *recSink) Emit(kind string, t world.Tick, agent world.AgentID, data map[string]any) {
	s.mu.Lock()
	s.events = append(s.events, rec{kind, t, agent, data})
	s.mu.Unlock()
}

func (s *recSink) of(kind string) []rec {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []rec
	for _, e := range s.events {
		if e.kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func seatsOf(ids ...world.AgentID) []world.Seat {
	out := make([]world.Seat, len(ids))
	for i, id := range ids {
		out[i] = world.Seat{ID: id, Group: "g", Index: i + 1}
	}
	return out
}

func deliver(l *world.Loop, id world.AgentID, t world.Tick, v string) {
	l.Deliver(world.Action{Agent: id, Tick: t, Data: json.RawMessage(v)})
}

// runLoop runs l in the background and returns a function waiting for its
// end (and cancelling its context then).
func runLoop(t *testing.T, l *world.Loop) func() (world.Summary, error) {
	wait, _ := runLoopCancel(t, l)
	return wait
}

func runLoopCancel(t *testing.T, l *world.Loop) (func() (world.Summary, error), context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type out struct {
		s   world.Summary
		err error
	}
	done := make(chan out, 1)
	go func() {
		s, err := l.Run(ctx)
		done <- out{s, err}
	}()
	var once sync.Once
	var res out
	wait := func() (world.Summary, error) {
		once.Do(func() {
			select {
			case res = <-done:
			case <-time.After(hangGuard):
				t.Fatal("loop did not end")
			}
			cancel()
		})
		return res.s, res.err
	}
	t.Cleanup(func() { cancel(); wait() })
	return wait, cancel
}

// An action received before its tick's boundary is applied at that tick; a
// slow agent's actions land later, recorded with their lateness; the loop
// never waits for it.
func TestRealtimeLateActionsLandLaterWithTheirLateness(t *testing.T) {
	leaktest.Goroutines(t)
	clock := worldtest.NewManualClock(rtEpoch)
	ids := []world.AgentID{"a", "b", "slow"}
	w := newRTWorld(clock, ids...)
	ev := &recSink{}
	const lag, ticks = 3, 8
	l, err := world.NewLoop(world.LoopConfig{World: w, Agents: &obsSink{}, Events: ev, Seats: seatsOf(ids...),
		Ticks: ticks, Deadline: time.Minute, Stepping: world.SteppingRealtime, TickInterval: rtInterval, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	wait := runLoop(t, l)
	for tk := world.Tick(1); tk <= ticks; tk++ {
		boundary := rtEpoch.Add(time.Duration(tk) * rtInterval)
		if err := clock.WaitTimer(boundary, hangGuard); err != nil {
			t.Fatal(err)
		}
		deliver(l, "a", tk, "1")
		deliver(l, "b", tk, "2")
		want := []string{fmt.Sprintf("a@%d", tk), fmt.Sprintf("b@%d", tk)}
		if tk > lag {
			deliver(l, "slow", tk-lag, "3") // answers tick t-3 only now
			want = append(want, fmt.Sprintf("slow@%d", tk-lag))
		}
		w.waitValidated(t, want...)
		clock.Advance(rtInterval)
	}
	sum, err := wait()
	if err != nil || sum.Ticks != ticks {
		t.Fatalf("Run = %d ticks, %v", sum.Ticks, err)
	}
	for tk := world.Tick(1); tk <= ticks; tk++ {
		want := []string{fmt.Sprintf("a@%d=1", tk), fmt.Sprintf("b@%d=2", tk), fmt.Sprintf("slow@%d=0", tk)}
		if tk > lag {
			want[2] = fmt.Sprintf("slow@%d=3", tk-lag)
		}
		if got := w.steps[tk]; !slices.Equal(got, want) {
			t.Errorf("tick %d applied %v, want %v", tk, got, want)
		}
		if at, want := w.stepAt[tk], rtEpoch.Add(time.Duration(tk)*rtInterval); !at.Equal(want) {
			t.Errorf("tick %d applied at %s, want its boundary %s", tk, at, want)
		}
	}
	closed := ev.of(world.EventTickClosed)
	if len(closed) != ticks {
		t.Fatalf("%d tick.closed events, want %d", len(closed), ticks)
	}
	for _, c := range closed[lag:] {
		recs := c.data["actions"].([]world.AppliedAction)
		slow := recs[2]
		if slow.Agent != "slow" || slow.LateTicks != lag || slow.ActionTick != c.t-lag || slow.LateUS == nil ||
			*slow.LateUS != ((lag-1)*rtInterval).Microseconds() {
			// it arrived in tick t's window, lag-1 intervals after its own tick's boundary
			t.Errorf("tick %d: slow's record %v, want late_ticks %d, late_us %d", c.t, slow, lag, ((lag - 1) * rtInterval).Microseconds())
		}
		if recs[0].LateTicks != 0 || recs[0].LateUS != nil {
			t.Errorf("tick %d: a on time recorded late: %v", c.t, recs[0])
		}
	}
	if st := sum.Stats["slow"]; st.Actions != ticks-lag || st.Missing != lag {
		t.Errorf("slow's stats %+v, want %d actions, %d missing", st, ticks-lag, lag)
	}
}

// Within a tick an agent's latest action wins; one older than an action
// already applied is late.
func TestRealtimeLatestActionWins(t *testing.T) {
	clock := worldtest.NewManualClock(rtEpoch)
	w := newRTWorld(clock, "a")
	l, err := world.NewLoop(world.LoopConfig{World: w, Agents: &obsSink{}, Events: &recSink{}, Seats: seatsOf("a"),
		Ticks: 2, Deadline: time.Minute, Stepping: world.SteppingRealtime, TickInterval: rtInterval, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	wait := runLoop(t, l)
	if err := clock.WaitTimer(rtEpoch.Add(rtInterval), hangGuard); err != nil {
		t.Fatal(err)
	}
	deliver(l, "a", 1, "1")
	deliver(l, "a", 1, "2")
	w.waitValidated(t, "a@1")
	l.Deliver(world.Action{Agent: "a", Tick: 1, Data: json.RawMessage("5")}) // the last one wins
	w.mu.Lock()
	delete(w.validated, "a@1")
	w.mu.Unlock()
	w.waitValidated(t, "a@1")
	clock.Advance(rtInterval)
	if err := clock.WaitTimer(rtEpoch.Add(2*rtInterval), hangGuard); err != nil {
		t.Fatal(err)
	}
	deliver(l, "a", 1, "9") // tick 1 was applied already: late
	clock.Advance(rtInterval)
	sum, err := wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := w.steps[1]; !slices.Equal(got, []string{"a@1=5"}) {
		t.Errorf("tick 1 applied %v, want the latest action a@1=5", got)
	}
	if st := sum.Stats["a"]; st.Replaced != 2 || st.Actions != 1 || st.Missing != 1 {
		t.Errorf("stats %+v, want 2 replaced, 1 action, 1 missing", st)
	}
}

// A world step that takes three ticks' worth of clock time once: the loop
// runs at most MaxCatchUp overdue ticks back to back, drops the rest of the
// lag with a tick.lag event, and returns to the rate.
func TestRealtimeCatchUpIsCappedAndLagReported(t *testing.T) {
	clock := worldtest.NewManualClock(rtEpoch)
	w := newRTWorld(clock, "a")
	w.stall = func(t world.Tick) {
		if t == 2 {
			clock.Advance(3 * rtInterval)
		}
	}
	ev := &recSink{}
	const ticks = 7
	l, err := world.NewLoop(world.LoopConfig{World: w, Agents: &obsSink{}, Events: ev, Seats: seatsOf("a"),
		Ticks: ticks, Deadline: time.Minute, Stepping: world.SteppingRealtime, TickInterval: rtInterval,
		MaxCatchUp: 2, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	wait := runLoop(t, l)
	// Ticks 1 and 2 at their boundaries; tick 2's step takes until 5i.
	for _, b := range []int{1, 2} {
		if err := clock.WaitTimer(rtEpoch.Add(time.Duration(b)*rtInterval), hangGuard); err != nil {
			t.Fatal(err)
		}
		clock.Advance(rtInterval)
	}
	// Ticks 3 and 4 ran at once (the cap); tick 5 waits for 6i, then the rate holds.
	for b := 6; b <= 8; b++ {
		if err := clock.WaitTimer(rtEpoch.Add(time.Duration(b)*rtInterval), hangGuard); err != nil {
			t.Fatal(err)
		}
		clock.Advance(rtInterval)
	}
	if _, err := wait(); err != nil {
		t.Fatal(err)
	}
	want := map[world.Tick]int{1: 1, 2: 2, 3: 5, 4: 5, 5: 6, 6: 7, 7: 8} // in intervals
	for tk, n := range want {
		if got := w.stepAt[tk]; !got.Equal(rtEpoch.Add(time.Duration(n) * rtInterval)) {
			t.Errorf("tick %d applied at %s, want %d intervals in", tk, got.Sub(rtEpoch), n)
		}
	}
	lag := ev.of(world.EventTickLag)
	if len(lag) != 1 {
		t.Fatalf("tick.lag events %v, want one", lag)
	}
	if d := lag[0].data; lag[0].t != 2 || d["behind_ticks"] != 3 || d["caught_up"] != 2 || d["dropped_ticks"] != 1 ||
		d["lag_us"] != (2*rtInterval).Microseconds() {
		t.Errorf("tick.lag = t=%d %v, want t=2 behind 3, caught up 2, dropped 1, lag 2 intervals", lag[0].t, d)
	}
}

// A manual loop runs exactly one tick per Step call and never touches the
// clock's timers; in realtime the window is the time between calls.
func TestManualLoopRunsOneTickPerStep(t *testing.T) {
	for _, mode := range []string{world.SteppingRealtime, world.SteppingLockstep} {
		t.Run(mode, func(t *testing.T) {
			leaktest.Goroutines(t)
			clock := worldtest.NewManualClock(rtEpoch)
			w := newRTWorld(clock, "a", "b")
			var l *world.Loop
			agents := &obsSink{fn: func(id world.AgentID, tk world.Tick) {
				if id == "a" {
					go deliver(l, id, tk, "1") // b never answers (lockstep: the deadline would pass)
				}
			}}
			cfg := world.LoopConfig{World: w, Agents: agents, Events: &recSink{}, Seats: seatsOf("a", "b"),
				Deadline: time.Minute, Stepping: mode, Manual: true, Clock: clock}
			var err error
			if l, err = world.NewLoop(cfg); err != nil {
				t.Fatal(err)
			}
			wait, cancel := runLoopCancel(t, l)
			ctx := context.Background()
			for i := 1; i <= 5; i++ {
				if mode == world.SteppingRealtime {
					w.waitValidated(t, fmt.Sprintf("a@%d", i))
				} else {
					// lockstep waits for b until its deadline: let it pass on the clock
					go func() {
						_ = clock.WaitTimer(clock.Now().Add(time.Minute), hangGuard)
						w.waitValidated(t, fmt.Sprintf("a@%d", i))
						clock.Advance(time.Minute)
					}()
				}
				rep, err := l.Step(ctx)
				if err != nil || rep.Tick != world.Tick(i) {
					t.Fatalf("Step %d = tick %d, %v", i, rep.Tick, err)
				}
				w.mu.Lock()
				n := w.ticks
				w.mu.Unlock()
				if n != world.Tick(i) {
					t.Fatalf("after %d Step calls the world stepped %d ticks", i, n)
				}
				if !slices.Equal(rep.Answered, []world.AgentID{"a"}) || !slices.Equal(rep.Missing, []world.AgentID{"b"}) {
					t.Errorf("tick %d answered %v missing %v", i, rep.Answered, rep.Missing)
				}
			}
			if mode == world.SteppingRealtime && len(clock.Timers()) != 0 {
				t.Errorf("a manual realtime loop set timers: %v", clock.Timers())
			}
			cancel()
			if _, err := wait(); !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v, want context.Canceled", err)
			}
			if _, err := l.Step(ctx); !errors.Is(err, world.ErrStopped) {
				t.Errorf("Step after the loop ended = %v, want ErrStopped", err)
			}
		})
	}
}

// Step on a loop its clock drives is refused.
func TestStepOnClockDrivenLoop(t *testing.T) {
	l, err := world.NewLoop(world.LoopConfig{World: newRTWorld(world.WallClock(), "a"), Agents: &obsSink{}, Events: &recSink{},
		Seats: seatsOf("a"), Deadline: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Step(context.Background()); !errors.Is(err, world.ErrNotManual) {
		t.Fatalf("Step = %v, want ErrNotManual", err)
	}
}

// Turn-based: only the agent whose turn it is gets an observation; one that
// times out forfeits its turn per the policy.
func TestTurnBasedOneAgentPerTickAndTimeoutForfeits(t *testing.T) {
	clock := worldtest.NewManualClock(rtEpoch)
	w := newRTWorld(clock, "a", "b", "c")
	w.turns = []world.AgentID{"c", "a", "b"}
	var l *world.Loop
	agents := &obsSink{fn: func(id world.AgentID, tk world.Tick) {
		if id != "b" {
			go deliver(l, id, tk, "7")
		}
	}}
	ev := &recSink{}
	var err error
	l, err = world.NewLoop(world.LoopConfig{World: w, Agents: agents, Events: ev, Seats: seatsOf("a", "b", "c"),
		Ticks: 6, Deadline: time.Second, Stepping: world.SteppingTurnBased, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	wait := runLoop(t, l)
	for _, tk := range []world.Tick{3, 6} { // b's turns: its deadline passes on the clock
		w.waitValidated(t, fmt.Sprintf("a@%d", tk-1))
		if err := clock.WaitTimer(clock.Now().Add(time.Second), hangGuard); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
	}
	if _, err := wait(); err != nil {
		t.Fatal(err)
	}
	want := map[world.Tick]string{1: "c@1=7", 2: "a@2=7", 3: "b@3=0", 4: "c@4=7", 5: "a@5=7", 6: "b@6=0"}
	for tk, s := range want {
		if got := w.steps[tk]; !slices.Equal(got, []string{s}) {
			t.Errorf("tick %d applied %v, want [%s]", tk, got, s)
		}
		if obs := w.observed[tk]; len(obs) != 1 || !strings.HasPrefix(s, string(obs[0])+"@") {
			t.Errorf("tick %d observed %v, want only the agent whose turn it is", tk, obs)
		}
	}
	if m := ev.of(world.EventActionMissing); len(m) != 2 || m[0].agent != "b" || m[0].t != 3 {
		t.Errorf("action.missing events %v, want b at 3 and 6", m)
	}
}

func TestNewLoopRefusesBadStepping(t *testing.T) {
	w := newRTWorld(world.WallClock(), "a")
	base := world.LoopConfig{World: w, Agents: &obsSink{}, Events: &recSink{}, Seats: seatsOf("a"), Deadline: time.Second}
	cases := map[string]func(*world.LoopConfig){
		"realtime without interval": func(c *world.LoopConfig) { c.Stepping = world.SteppingRealtime },
		"realtime with abort": func(c *world.LoopConfig) {
			c.Stepping, c.TickInterval, c.Missing = world.SteppingRealtime, time.Second, world.PolicyAbort
		},
		"turn-based without order": func(c *world.LoopConfig) { c.Stepping, c.World = world.SteppingTurnBased, plainWorld{w} },
		"unknown":                  func(c *world.LoopConfig) { c.Stepping = "sometimes" },
	}
	for name, f := range cases {
		cfg := base
		f(&cfg)
		if _, err := world.NewLoop(cfg); err == nil {
			t.Errorf("%s: NewLoop accepted it", name)
		}
	}
}

// plainWorld hides rtWorld's Turn method.
type plainWorld struct{ world.World }
