package world_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/internal/leaktest"
	"github.com/terrarium-sim/terrarium/world"
	"github.com/terrarium-sim/terrarium/world/worldtest"
)

// countPrefix counts the board's events that start with p.
func countPrefix(p string) func(*board) int {
	return func(b *board) int {
		n := 0
		for _, e := range b.events {
			if strings.HasPrefix(e, p) {
				n++
			}
		}
		return n
	}
}

func atLeast(p string, n int) func(*board) bool {
	c := countPrefix(p)
	return func(b *board) bool { return c(b) >= n }
}

// A loop paused before it starts sends nothing until a step or Resume;
// each StepPaused runs exactly one tick and the loop waits again.
func TestLoopPauseStepResume(t *testing.T) {
	h := newHarness(t, map[world.AgentID]agentSpec{"a": {value: 1}, "b": {value: 2}})
	stop := make(chan struct{})
	defer close(stop)
	var problems []string
	done := make(chan struct{})
	sum, err := h.run(world.LoopConfig{Ticks: 5, Deadline: hangGuard}, func(l *world.Loop) {
		if err := l.Pause(); err != nil {
			t.Fatalf("pause: %v", err)
		}
		go func() {
			defer close(done)
			fail := func(s string) { problems = append(problems, s) }
			// Paused before tick 1: run.paused at tick 0, nothing sent.
			if !h.board.waitFor(stop, hasEventPrefix("run.paused t=0")) {
				return
			}
			if s := h.sends(); len(s) != 0 {
				fail("sent while paused: " + strings.Join(s, " "))
			}
			if !l.Paused() {
				fail("Paused() is false while paused")
			}
			// Two steps: ticks 1 and 2, each followed by a new run.paused.
			_ = l.StepPaused()
			if !h.board.waitFor(stop, hasEventPrefix("run.paused t=1")) {
				return
			}
			_ = l.StepPaused()
			if !h.board.waitFor(stop, hasEventPrefix("run.paused t=2")) {
				return
			}
			if got := h.sends(); !slices.Equal(got, []string{"a@1", "b@1", "a@2", "b@2"}) {
				fail("sends after two steps: " + strings.Join(got, " "))
			}
			_ = l.Resume()
		}()
	})
	<-done
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if sum.Ticks != 5 {
		t.Errorf("ticks %d, want 5", sum.Ticks)
	}
	evs, _ := h.board.snapshot()
	var gate []string
	for _, e := range evs {
		if strings.HasPrefix(e, "run.") {
			gate = append(gate, e[:strings.Index(e, " {")])
		}
	}
	want := []string{"run.paused t=0 ", "run.paused t=1 ", "run.paused t=2 ", "run.unpaused t=2 "}
	equal(t, "pause events", gate, want)
	if n := countPrefix("tick.closed")(h.board); n != 5 {
		t.Errorf("%d ticks closed, want 5", n)
	}
	if !slices.ContainsFunc(evs, func(e string) bool { return strings.HasPrefix(e, "run.unpaused t=2  {\"paused_ms\":") }) {
		t.Errorf("run.unpaused carries no paused_ms: %v", evs)
	}
}

// Pause on a manual loop is refused: the game's Step calls drive it.
func TestLoopPauseManualRefused(t *testing.T) {
	h := newHarness(t, map[world.AgentID]agentSpec{"a": {value: 1}})
	l, err := world.NewLoop(world.LoopConfig{World: h.world, Agents: h, Events: h.board, Seats: h.seats, Deadline: hangGuard, Manual: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{"pause": l.Pause, "resume": l.Resume, "step": l.StepPaused} {
		if err := f(); err != world.ErrManual {
			t.Errorf("%s on a manual loop: %v, want ErrManual", name, err)
		}
	}
}

// StepPaused and Resume on a loop that is not paused change nothing.
func TestLoopStepWhileRunningIsNoop(t *testing.T) {
	h := newHarness(t, map[world.AgentID]agentSpec{"a": {value: 1}})
	sum, err := h.run(world.LoopConfig{Ticks: 3, Deadline: hangGuard}, func(l *world.Loop) {
		_ = l.StepPaused()
		_ = l.Resume()
	})
	if err != nil || sum.Ticks != 3 {
		t.Fatalf("run: %d ticks, %v", sum.Ticks, err)
	}
	if n := countPrefix("run.")(h.board); n != 0 {
		evs, _ := h.board.snapshot()
		t.Errorf("pause events on a loop never paused: %v", evs)
	}
}

// waitRec polls s until it holds an event of kind (the loop runs on its
// own goroutine; the clock does not move meanwhile).
func waitRec(t *testing.T, s *recSink, kind string, n int) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for len(s.of(kind)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %d %s events (have %v)", n, kind, s.of(kind))
		}
		time.Sleep(time.Millisecond)
	}
}

// Realtime: time spent paused is not caught up; the rate starts afresh
// one interval after Resume, with no tick.lag.
func TestRealtimePauseRestartsTheRate(t *testing.T) {
	leaktest.Goroutines(t)
	clock := worldtest.NewManualClock(rtEpoch)
	w := newRTWorld(clock, "a")
	ev := &recSink{}
	l, err := world.NewLoop(world.LoopConfig{World: w, Agents: &obsSink{}, Events: ev, Seats: seatsOf("a"),
		Ticks: 3, Deadline: time.Minute, Stepping: world.SteppingRealtime, TickInterval: rtInterval, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Pause(); err != nil {
		t.Fatal(err)
	}
	wait := runLoop(t, l)
	// Tick 1 was open before the pause took hold; it closes at its boundary.
	if err := clock.WaitTimer(rtEpoch.Add(rtInterval), hangGuard); err != nil {
		t.Fatal(err)
	}
	clock.Advance(rtInterval)
	waitRec(t, ev, world.EventRunPaused, 1)
	clock.Advance(10 * rtInterval) // paused: no tick runs, none is owed
	if got := len(ev.of(world.EventTickClosed)); got != 1 {
		t.Fatalf("%d ticks closed while paused, want 1", got)
	}
	resumed := clock.Now()
	if err := l.Resume(); err != nil {
		t.Fatal(err)
	}
	for tk := 2; tk <= 3; tk++ {
		at := resumed.Add(time.Duration(tk-1) * rtInterval)
		if err := clock.WaitTimer(at, hangGuard); err != nil {
			t.Fatalf("tick %d: no timer at resume + %d intervals: %v", tk, tk-1, err)
		}
		clock.Advance(rtInterval)
	}
	sum, err := wait()
	if err != nil || sum.Ticks != 3 {
		t.Fatalf("Run = %d ticks, %v", sum.Ticks, err)
	}
	if lag := ev.of(world.EventTickLag); len(lag) != 0 {
		t.Errorf("tick.lag after a pause: %+v", lag)
	}
	un := ev.of(world.EventRunUnpaused)
	if len(un) != 1 || un[0].t != 1 || un[0].data["paused_ms"] != int64(10*rtInterval/time.Millisecond) {
		t.Errorf("run.unpaused = %+v, want one at tick 1 with paused_ms 500", un)
	}
}
