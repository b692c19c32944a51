package inproc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/agents/inproc"
	"github.com/terrarium-sim/terrarium/internal/leaktest"
	"github.com/terrarium-sim/terrarium/world"
)

const hangGuard = time.Minute

// An agent still acting when newer observations come gets only the latest
// one afterwards (the rest are counted as coalesced), and Act is never
// called concurrently for one agent, however many workers there are.
func TestSlowAgentGetsLatestObservationOnly(t *testing.T) {
	leaktest.Goroutines(t)
	release := make(chan struct{})
	var inAct, maxInAct atomic.Int32
	var mu sync.Mutex
	var seen []world.Tick
	agent := inproc.Func(func(_ context.Context, o inproc.Observation) (any, error) {
		if n := inAct.Add(1); n > maxInAct.Load() {
			maxInAct.Store(n)
		}
		defer inAct.Add(-1)
		mu.Lock()
		seen = append(seen, o.Tick)
		mu.Unlock()
		if o.Tick == 1 {
			<-release
		}
		return o.Tick, nil
	})
	got := make(chan world.Action, 16)
	rt, err := inproc.New(inproc.Config{Agents: map[world.AgentID]inproc.Agent{"a": agent}, Workers: 4,
		Deliver: func(a world.Action) { got <- a }})
	if err != nil {
		t.Fatal(err)
	}
	rt.Start()
	defer rt.Close()
	far := time.Now().Add(hangGuard)
	_ = rt.Send("a", 1, far, json.RawMessage(`1`))
	waitFor(t, func() bool { return inAct.Load() == 1 })
	for tk := world.Tick(2); tk <= 5; tk++ {
		_ = rt.Send("a", tk, far, json.RawMessage(`0`))
	}
	close(release)
	for _, want := range []string{"1", "5"} {
		select {
		case a := <-got:
			if string(a.Data) != want {
				t.Errorf("delivered %s, want %s", a.Data, want)
			}
		case <-time.After(hangGuard):
			t.Fatal("nothing delivered")
		}
	}
	if st := rt.Stats("a"); st.Coalesced != 3 || st.Acts != 2 {
		t.Errorf("stats %+v, want 3 coalesced, 2 acts", st)
	}
	if maxInAct.Load() != 1 {
		t.Errorf("Act ran %d at once for one agent", maxInAct.Load())
	}
}

// Close cancels Act's context; an Act that ignores it is abandoned after
// the grace period and Close says so instead of hanging.
func TestCloseAbandonsAnActThatIgnoresItsContext(t *testing.T) {
	stuck := make(chan struct{})
	defer close(stuck) // lets the abandoned worker go at the end
	var started atomic.Bool
	rt, err := inproc.New(inproc.Config{Grace: 50 * time.Millisecond, Deliver: func(world.Action) {},
		Agents: map[world.AgentID]inproc.Agent{"a": inproc.Func(func(context.Context, inproc.Observation) (any, error) {
			started.Store(true)
			<-stuck
			return nil, nil
		})}})
	if err != nil {
		t.Fatal(err)
	}
	rt.Start()
	_ = rt.Send("a", 1, time.Now().Add(hangGuard), nil)
	waitFor(t, started.Load)
	if err := rt.Close(); !errors.Is(err, inproc.ErrAbandoned) {
		t.Errorf("Close = %v, want ErrAbandoned", err)
	}
	if err := rt.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// An action that cannot be encoded, or an error, sends nothing and is counted.
func TestBadActionsAreCounted(t *testing.T) {
	delivered := make(chan world.Action, 4)
	rt, err := inproc.New(inproc.Config{Deliver: func(a world.Action) { delivered <- a },
		Agents: map[world.AgentID]inproc.Agent{"a": inproc.Func(func(_ context.Context, o inproc.Observation) (any, error) {
			switch o.Tick {
			case 1:
				return make(chan int), nil
			case 2:
				return nil, errors.New("no idea")
			}
			return "ok", nil
		})}})
	if err != nil {
		t.Fatal(err)
	}
	rt.Start()
	defer rt.Close()
	for tk := world.Tick(1); tk <= 3; tk++ {
		_ = rt.Send("a", tk, time.Now().Add(hangGuard), nil)
		waitFor(t, func() bool { st := rt.Stats("a"); return st.Acts+st.Errors == uint64(tk) })
	}
	if a := <-delivered; a.Tick != 3 || string(a.Data) != `"ok"` {
		t.Errorf("delivered %+v", a)
	}
	if st := rt.Stats("a"); st.Errors != 2 || st.Acts != 1 {
		t.Errorf("stats %+v", st)
	}
	if err := rt.Send("nobody", 1, time.Now(), nil); err == nil {
		t.Error("Send to an unknown agent was accepted")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(time.Millisecond)
	}
}

// With SendsDone (world.SendBatcher) and DeliverAll, every agent of a
// tick acts once and its action is delivered once, tick after tick.
func TestBatchedTicksDeliverEveryAction(t *testing.T) {
	leaktest.Goroutines(t)
	const n, ticks = 1000, 5
	agents := map[world.AgentID]inproc.Agent{}
	for i := range n {
		agents[world.AgentID(fmt.Sprintf("a%04d", i))] = inproc.Func(func(_ context.Context, o inproc.Observation) (any, error) {
			return json.RawMessage(strconv.Itoa(int(o.Tick))), nil
		})
	}
	got := make(chan []world.Action, n)
	rt, err := inproc.New(inproc.Config{Agents: agents, Workers: 3,
		DeliverAll: func(as []world.Action) { got <- slices.Clone(as) }})
	if err != nil {
		t.Fatal(err)
	}
	rt.Start()
	defer rt.Close()
	for tk := world.Tick(1); tk <= ticks; tk++ {
		for id := range agents {
			_ = rt.Send(id, tk, time.Now().Add(hangGuard), json.RawMessage(`0`))
		}
		rt.SendsDone(tk)
		seen := map[world.AgentID]bool{}
		for len(seen) < n {
			select {
			case as := <-got:
				for _, a := range as {
					if a.Tick != tk || string(a.Data) != strconv.Itoa(int(tk)) || seen[a.Agent] {
						t.Fatalf("tick %d: delivered %+v (seen before: %v)", tk, a, seen[a.Agent])
					}
					seen[a.Agent] = true
				}
			case <-time.After(hangGuard):
				t.Fatalf("tick %d: %d of %d actions delivered", tk, len(seen), n)
			}
		}
	}
	for id := range agents {
		if st := rt.Stats(id); st.Acts != ticks || st.Coalesced != 0 {
			t.Fatalf("%s: stats %+v", id, st)
		}
	}
}
