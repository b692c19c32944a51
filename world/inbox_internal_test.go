package world

import (
	"encoding/json"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

type nopWorld struct{}

func (nopWorld) Observe(AgentID, Tick) (json.RawMessage, bool, error) { return nil, true, nil }
func (nopWorld) Validate(Action) error                                { return nil }
func (nopWorld) DefaultAction(AgentID, Tick) json.RawMessage          { return nil }
func (nopWorld) Step(Tick, []Action, *rand.Rand) (StepResult, error)  { return StepResult{}, nil }
func (nopWorld) Done() bool                                           { return false }
func (nopWorld) Metrics() []string                                    { return nil }
func (nopWorld) Result() any                                          { return nil }
func (nopWorld) Snapshot() ([]byte, error)                            { return nil, nil }
func (nopWorld) Restore([]byte) error                                 { return nil }
func (nopWorld) StateHash() string                                    { return "" }

type nopAgents struct{}

func (nopAgents) Send(AgentID, Tick, time.Time, json.RawMessage) error { return nil }

type nopEvents struct{}

func (nopEvents) Emit(string, Tick, AgentID, map[string]any) {}

func newTestLoop(t *testing.T, seats int) *Loop {
	t.Helper()
	ss := make([]Seat, seats)
	for i := range ss {
		ss[i] = Seat{ID: AgentID(rune('a' + i%26)), Group: "g"}
	}
	l, err := NewLoop(LoopConfig{World: nopWorld{}, Agents: nopAgents{}, Events: nopEvents{}, Seats: ss, Deadline: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// waitUntil polls cond until it holds or a minute passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A full inbox blocks the sender (so a flooding agent's own subscription
// backs up and drops, not the host's memory) until the loop takes the
// queue; the blocked action is then delivered, in order.
func TestDeliverBlocksWhileTheInboxIsFull(t *testing.T) {
	l := newTestLoop(t, 1)
	defer l.Stop()
	for i := 0; i < l.inCap; i++ {
		l.Deliver(Action{Agent: "a", Tick: Tick(i)})
	}
	var done sync.WaitGroup
	done.Go(func() { l.Deliver(Action{Agent: "a", Tick: 9999}) })
	waitUntil(t, "the sender to wait for room", func() bool {
		l.inMu.Lock()
		defer l.inMu.Unlock()
		return l.inRoom != nil
	})
	q := l.takeInbox()
	if len(q) != l.inCap || q[0].Tick != 0 || q[len(q)-1].Tick != Tick(l.inCap-1) {
		t.Fatalf("took %d actions (first %v), want %d in delivery order", len(q), q[0].Tick, l.inCap)
	}
	l.giveBack(q)
	done.Wait()
	q = l.takeInbox()
	if len(q) != 1 || q[0].Tick != 9999 {
		t.Fatalf("after the blocked send: %v, want the one blocked action", q)
	}
}

// Stop releases a sender blocked on a full inbox.
func TestStopReleasesABlockedDeliver(t *testing.T) {
	l := newTestLoop(t, 1)
	for i := 0; i < l.inCap; i++ {
		l.Deliver(Action{Agent: "a"})
	}
	var done sync.WaitGroup
	done.Go(func() { l.Deliver(Action{Agent: "a"}) })
	waitUntil(t, "the sender to wait for room", func() bool {
		l.inMu.Lock()
		defer l.inMu.Unlock()
		return l.inRoom != nil
	})
	l.Stop()
	done.Wait()
}

// The inbox holds two actions per seat when there are more than 512
// seats, so one tick's actions never block a sender.
func TestInboxCapacityScalesWithSeats(t *testing.T) {
	if c := newTestLoop(t, 1).inCap; c != 1024 {
		t.Errorf("1 seat: capacity %d, want 1024", c)
	}
	if c := newTestLoop(t, 5000).inCap; c != 10000 {
		t.Errorf("5000 seats: capacity %d, want 10000", c)
	}
}
