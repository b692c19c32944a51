package world_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/world"
)

// The loop is tested as pure logic: a tiny deterministic world (each agent
// sends an integer, the state is the running sum per agent), scripted agents
// answering from their own goroutines through Loop.Deliver, and a recording
// event sink. Runs that must not wait for a deadline use a long one
// (longDeadline) so they complete by construction; only the cases where a
// deadline must pass use a short one. No assertion depends on durations.

const (
	defaultValue  = 100 // sumWorld.DefaultAction
	longDeadline  = time.Minute
	shortDeadline = 150 * time.Millisecond
	// hangGuard only turns a hang into a readable failure; it never decides
	// a passing run.
	hangGuard = 30 * time.Second
)

type obsKey struct {
	id world.AgentID
	t  world.Tick
}

// sumWorld is the test world. The loop's goroutine owns it; the test reads
// its records after Run returned.
type sumWorld struct {
	ids        []world.AgentID
	sums       map[world.AgentID]int
	ticks      world.Tick
	doneAfter  int             // Done once this many ticks ran; -1 = never
	skip       map[obsKey]bool // Observe says ok=false
	events     map[world.Tick][]world.Event
	failAt     map[string]world.Tick // "observe" or "step" -> tick that fails
	unobserved func(id world.AgentID, t world.Tick)
	board      *board

	steps []string // "t: a=1 b=2" per Step, actions in the order received
	rngs  []uint64 // first value of each Step's rng
}

func newSumWorld(ids []world.AgentID, b *board) *sumWorld {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	w := &sumWorld{ids: ids, sums: map[world.AgentID]int{}, doneAfter: -1, skip: map[obsKey]bool{}, failAt: map[string]world.Tick{}, board: b}
	for _, id := range ids {
		w.sums[id] = 0
	}
	return w
}

func (w *sumWorld) Observe(id world.AgentID, t world.Tick) (json.RawMessage, bool, error) {
	if w.failAt["observe"] == t {
		return nil, false, errors.New("observe broke")
	}
	if w.skip[obsKey{id, t}] {
		if w.unobserved != nil {
			w.unobserved(id, t)
		}
		return nil, false, nil
	}
	b, err := json.Marshal(map[string]any{"tick": t, "sum": w.sums[id]})
	return b, true, err
}

func (w *sumWorld) Validate(a world.Action) error {
	w.board.update(func() { w.board.validated = append(w.board.validated, fmt.Sprintf("%s@%d", a.Agent, a.Tick)) })
	var v int
	if err := json.Unmarshal(a.Data, &v); err != nil {
		return fmt.Errorf("not an integer: %w", err)
	}
	if v < 0 {
		return fmt.Errorf("negative value %d", v)
	}
	return nil
}

func (w *sumWorld) DefaultAction(world.AgentID, world.Tick) json.RawMessage {
	return json.RawMessage(strconv.Itoa(defaultValue))
}

func (w *sumWorld) Step(t world.Tick, actions []world.Action, rng *rand.Rand) (world.StepResult, error) {
	if w.failAt["step"] == t {
		return world.StepResult{}, errors.New("step broke")
	}
	parts := []string{fmt.Sprintf("%d:", t)}
	for _, a := range actions {
		var v int
		if err := json.Unmarshal(a.Data, &v); err != nil {
			return world.StepResult{}, fmt.Errorf("action of %s: %w", a.Agent, err)
		}
		if a.Tick != t {
			return world.StepResult{}, fmt.Errorf("action of %s tagged %d at tick %d", a.Agent, a.Tick, t)
		}
		w.sums[a.Agent] += v
		parts = append(parts, fmt.Sprintf("%s=%d", a.Agent, v))
	}
	w.steps = append(w.steps, strings.Join(parts, " "))
	w.rngs = append(w.rngs, rng.Uint64())
	w.ticks = t
	total := 0
	for _, v := range w.sums {
		total += v
	}
	return world.StepResult{Events: w.events[t], Metrics: map[string]float64{"total": float64(total)}}, nil
}

func (w *sumWorld) Done() bool                { return w.doneAfter >= 0 && int(w.ticks) >= w.doneAfter }
func (w *sumWorld) Metrics() []string         { return []string{"total"} }
func (w *sumWorld) Result() any               { return w.sums }
func (w *sumWorld) Snapshot() ([]byte, error) { return json.Marshal(w.sums) }
func (w *sumWorld) Restore(b []byte) error    { return json.Unmarshal(b, &w.sums) }

func (w *sumWorld) StateHash() string {
	parts := make([]string, 0, len(w.ids))
	for _, id := range w.ids {
		parts = append(parts, fmt.Sprintf("%s=%d", id, w.sums[id]))
	}
	return strings.Join(parts, ",")
}

// board records the loop's events (it is the EventSink) and the world's
// Validate calls, and lets agent goroutines wait for a condition on them.
type board struct {
	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	events    []string
	validated []string
}

func newBoard() *board { return &board{changed: make(chan struct{})} }

func (b *board) update(f func()) {
	b.mu.Lock()
	f()
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

func (b *board) Emit(kind string, t world.Tick, agent world.AgentID, data map[string]any) {
	b.update(func() { b.events = append(b.events, eventString(kind, t, agent, data)) })
}

// waitFor blocks until cond holds (true) or stop is closed (false).
func (b *board) waitFor(stop <-chan struct{}, cond func(b *board) bool) bool {
	for {
		b.mu.Lock()
		ok, ch := cond(b), b.changed
		b.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-stop:
			return false
		}
	}
}

func (b *board) snapshot() (events, validated []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.events), slices.Clone(b.validated)
}

// eventString renders an event as "kind t=N agent {json}" with the
// nondeterministic wall_us of tick.closed checked and removed.
func eventString(kind string, t world.Tick, agent world.AgentID, data map[string]any) string {
	d := map[string]any{}
	for k, v := range data {
		d[k] = v
	}
	if kind == world.EventTickClosed {
		if us, ok := d["wall_us"].(int64); !ok || us < 0 {
			d["wall_us_bad"] = fmt.Sprint(d["wall_us"])
		}
		delete(d, "wall_us")
	}
	b, err := json.Marshal(d)
	if err != nil {
		b = []byte("marshal error: " + err.Error())
	}
	return fmt.Sprintf("%s t=%d %s %s", kind, t, agent, b)
}

func hasEventPrefix(p string) func(*board) bool {
	return func(b *board) bool {
		return slices.ContainsFunc(b.events, func(e string) bool { return strings.HasPrefix(e, p) })
	}
}

func wasValidated(id world.AgentID, t world.Tick) func(*board) bool {
	s := fmt.Sprintf("%s@%d", id, t)
	return func(b *board) bool { return slices.Contains(b.validated, s) }
}

// closedEv is the expected tick.closed event; acts are the applied actions'
// JSON objects in agent order.
func closedEv(t world.Tick, hash string, acts ...string) string {
	return fmt.Sprintf(`tick.closed t=%d  {"actions":[%s],"hash":"%s"}`, t, strings.Join(acts, ","), hash)
}

func applied(id world.AgentID, v int) string {
	return fmt.Sprintf(`{"agent":"%s","data":%d}`, id, v)
}

func filled(id world.AgentID, v int, how string) string {
	return fmt.Sprintf(`{"agent":"%s","data":%d,"filled":"%s"}`, id, v, how)
}

// op is one step of an agent's script.
type op struct {
	kind  string // "act", "gone", "wait", "cancel"
	dt    int    // act: tick offset from the tick the script runs for
	val   int
	as    world.AgentID // act: deliver under this id instead of the agent's own
	until func(*board) bool
}

func act(v int) op                     { return op{kind: "act", val: v} }
func actAt(dt, v int) op               { return op{kind: "act", dt: dt, val: v} }
func actAs(id world.AgentID, v int) op { return op{kind: "act", val: v, as: id} }
func gone() op                         { return op{kind: "gone"} }
func backOf(id world.AgentID) op       { return op{kind: "back", as: id} }
func waitUntil(c func(*board) bool) op { return op{kind: "wait", until: c} }
func cancelRun() op                    { return op{kind: "cancel"} }

// agentSpec scripts one agent. For a tick listed in at, the agent runs those
// ops (an empty list: it never answers); for ticks given by every, those;
// otherwise, when observed, it answers at once with value. A tick at which
// the world does not observe the agent runs only a listed script.
type agentSpec struct {
	value int
	at    map[world.Tick][]op
	every func(t world.Tick) []op
}

type message struct {
	t        world.Tick
	observed bool
}

// harness is the in-test world.Agents: Send queues the observation to the
// agent's goroutine, which answers through Loop.Deliver by its script.
type harness struct {
	t      *testing.T
	board  *board
	world  *sumWorld
	specs  map[world.AgentID]agentSpec
	seats  []world.Seat // in the order given to NewLoop
	loop   *world.Loop
	cancel context.CancelFunc
	stop   chan struct{}
	queues map[world.AgentID]chan message
	wg     sync.WaitGroup

	mu   sync.Mutex
	sent []string // "a@1" per Send, in call order
}

// newHarness makes agents with the given specs; order is the seat order
// handed to the loop (nil: sorted).
func newHarness(t *testing.T, specs map[world.AgentID]agentSpec, order ...world.AgentID) *harness {
	t.Helper()
	if order == nil {
		for id := range specs {
			order = append(order, id)
		}
		slices.Sort(order)
	}
	b := newBoard()
	h := &harness{t: t, board: b, world: newSumWorld(order, b), specs: specs, stop: make(chan struct{}), queues: map[world.AgentID]chan message{}}
	for i, id := range order {
		h.seats = append(h.seats, world.Seat{ID: id, Group: "g", Index: i + 1})
		h.queues[id] = make(chan message, 256)
	}
	h.world.unobserved = func(id world.AgentID, t world.Tick) { h.queues[id] <- message{t: t} }
	return h
}

func (h *harness) Send(id world.AgentID, t world.Tick, deadline time.Time, obs json.RawMessage) error {
	var o struct {
		Tick world.Tick `json:"tick"`
	}
	if err := json.Unmarshal(obs, &o); err != nil || o.Tick != t {
		h.t.Errorf("send %s@%d: bad observation %s (%v)", id, t, obs, err)
	}
	if deadline.IsZero() {
		h.t.Errorf("send %s@%d: no deadline", id, t)
	}
	h.mu.Lock()
	h.sent = append(h.sent, fmt.Sprintf("%s@%d", id, t))
	h.mu.Unlock()
	h.queues[id] <- message{t: t, observed: true}
	return nil
}

func (h *harness) agent(id world.AgentID) {
	defer h.wg.Done()
	spec := h.specs[id]
	for {
		var m message
		select {
		case <-h.stop:
			return
		case m = <-h.queues[id]:
		}
		ops, listed := spec.at[m.t]
		switch {
		case listed:
		case !m.observed:
			continue
		case spec.every != nil:
			ops = spec.every(m.t)
		default:
			ops = []op{act(spec.value)}
		}
		for _, o := range ops {
			switch o.kind {
			case "act":
				from := id
				if o.as != "" {
					from = o.as
				}
				h.loop.Deliver(world.Action{Agent: from, Tick: world.Tick(int(m.t) + o.dt), Data: json.RawMessage(strconv.Itoa(o.val))})
			case "gone":
				h.loop.Gone(id)
			case "back":
				h.loop.Back(o.as)
			case "wait":
				if !h.board.waitFor(h.stop, o.until) {
					return
				}
			case "cancel":
				h.cancel()
			}
		}
	}
}

// run builds the loop from cfg (World, Agents, Events and Seats are filled
// in), calls before (if any) with it, runs it and waits for every agent
// goroutine to end.
func (h *harness) run(cfg world.LoopConfig, before func(*world.Loop)) (world.Summary, error) {
	h.t.Helper()
	cfg.World, cfg.Agents, cfg.Events, cfg.Seats = h.world, h, h.board, h.seats
	loop, err := world.NewLoop(cfg)
	if err != nil {
		h.t.Fatalf("new loop: %v", err)
	}
	h.loop = loop
	ctx, cancel := context.WithTimeout(h.t.Context(), hangGuard)
	defer cancel()
	h.cancel = cancel
	if before != nil {
		before(loop)
	}
	for id := range h.queues {
		h.wg.Add(1)
		go h.agent(id)
	}
	sum, err := loop.Run(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		h.t.Errorf("run hung (hang guard %s)", hangGuard)
	}
	close(h.stop)
	h.wg.Wait()
	return sum, err
}

func (h *harness) sends() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.sent)
}

func equal[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\ngot  %v\nwant %v", what, got, want)
	}
}

func checkSummary(t *testing.T, got world.Summary, ticks world.Tick, hash string, stats map[world.AgentID]world.AgentStats) {
	t.Helper()
	if got.Ticks != ticks || got.Hash != hash {
		t.Errorf("summary: ticks %d hash %q, want %d %q", got.Ticks, got.Hash, ticks, hash)
	}
	if len(got.Stats) != len(stats) {
		t.Errorf("stats: got %+v, want %+v", got.Stats, stats)
		return
	}
	for id, want := range stats {
		if g, ok := got.Stats[id]; !ok || g != want {
			t.Errorf("stats of %s: got %+v, want %+v (all: %+v)", id, g, want, got.Stats)
		}
	}
}

func TestLoopClosesEachTickWhenAllAnswered(t *testing.T) {
	h := newHarness(t, map[world.AgentID]agentSpec{"a": {value: 1}, "b": {value: 2}, "c": {value: 3}}, "c", "a", "b")
	h.world.events = map[world.Tick][]world.Event{2: {
		{Kind: "bumped", Agent: "a", Fields: map[string]any{"n": 1}},
		{Kind: "custom.kind"},
	}}
	var reports []world.TickReport
	const seed = 42
	sum, err := h.run(world.LoopConfig{Seed: seed, Ticks: 3, Deadline: longDeadline, Missing: world.PolicyAbort,
		OnTick: func(r world.TickReport) { reports = append(reports, r) }}, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	checkSummary(t, sum, 3, "a=3,b=6,c=9", map[world.AgentID]world.AgentStats{"a": {Actions: 3}, "b": {Actions: 3}, "c": {Actions: 3}})
	equal(t, "steps", h.world.steps, []string{"1: a=1 b=2 c=3", "2: a=1 b=2 c=3", "3: a=1 b=2 c=3"})
	equal(t, "sends", h.sends(), []string{"a@1", "b@1", "c@1", "a@2", "b@2", "c@2", "a@3", "b@3", "c@3"})
	events, _ := h.board.snapshot()
	equal(t, "events", events, []string{
		closedEv(1, "a=1,b=2,c=3", applied("a", 1), applied("b", 2), applied("c", 3)),
		`world.bumped t=2 a {"n":1}`,
		`custom.kind t=2  {}`,
		closedEv(2, "a=2,b=4,c=6", applied("a", 1), applied("b", 2), applied("c", 3)),
		closedEv(3, "a=3,b=6,c=9", applied("a", 1), applied("b", 2), applied("c", 3)),
	})
	if len(reports) != 3 {
		t.Fatalf("OnTick called %d times, want 3", len(reports))
	}
	for i, r := range reports {
		tick := world.Tick(i + 1)
		wantHash := fmt.Sprintf("a=%d,b=%d,c=%d", tick, 2*tick, 3*tick)
		if r.Tick != tick || r.Hash != wantHash || r.Metrics["total"] != float64(6*tick) || r.Elapsed < 0 {
			t.Errorf("report %d: %+v, want tick %d hash %s total %d", i, r, tick, wantHash, 6*tick)
		}
		if !slices.Equal(r.Answered, []world.AgentID{"a", "b", "c"}) || len(r.Missing) != 0 {
			t.Errorf("report %d: answered %v missing %v, want a b c and none", i, r.Answered, r.Missing)
		}
		if want := world.TickRNG(seed, tick).Uint64(); h.world.rngs[i] != want {
			t.Errorf("tick %d: Step got rng starting %d, want TickRNG(seed, %d) starting %d", tick, h.world.rngs[i], tick, want)
		}
	}
}

func TestLoopStepGetsActionsSortedByAgent(t *testing.T) {
	// Agents answer in the order c, b, a at every tick (each waits until the
	// previous one's action reached the world): Step still gets a, b, c.
	h := newHarness(t, map[world.AgentID]agentSpec{
		"c": {value: 3},
		"b": {value: 2, every: func(t world.Tick) []op { return []op{waitUntil(wasValidated("c", t)), act(2)} }},
		"a": {value: 1, every: func(t world.Tick) []op { return []op{waitUntil(wasValidated("b", t)), act(1)} }},
	}, "b", "c", "a")
	sum, err := h.run(world.LoopConfig{Ticks: 2, Deadline: longDeadline}, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	checkSummary(t, sum, 2, "a=2,b=4,c=6", map[world.AgentID]world.AgentStats{"a": {Actions: 2}, "b": {Actions: 2}, "c": {Actions: 2}})
	_, validated := h.board.snapshot()
	equal(t, "arrival order", validated, []string{"c@1", "b@1", "a@1", "c@2", "b@2", "a@2"})
	equal(t, "steps", h.world.steps, []string{"1: a=1 b=2 c=3", "2: a=1 b=2 c=3"})
}

func TestLoopMissingAction(t *testing.T) {
	// b sends nothing at ticks 1, 3 and 5.
	b := agentSpec{value: 1, at: map[world.Tick][]op{1: {}, 2: {act(5)}, 3: {}, 4: {act(2)}, 5: {}}}
	cases := []struct {
		policy string
		hash   string
		steps  []string
		events []string
	}{
		{
			policy: world.PolicyDefault,
			hash:   "a=5,b=307",
			steps:  []string{"1: a=1 b=100", "2: a=1 b=5", "3: a=1 b=100", "4: a=1 b=2", "5: a=1 b=100"},
			events: []string{
				`action.missing t=1 b {"policy":"default"}`,
				closedEv(1, "a=1,b=100", applied("a", 1), filled("b", 100, "default")),
				closedEv(2, "a=2,b=105", applied("a", 1), applied("b", 5)),
				`action.missing t=3 b {"policy":"default"}`,
				closedEv(3, "a=3,b=205", applied("a", 1), filled("b", 100, "default")),
				closedEv(4, "a=4,b=207", applied("a", 1), applied("b", 2)),
				`action.missing t=5 b {"policy":"default"}`,
				closedEv(5, "a=5,b=307", applied("a", 1), filled("b", 100, "default")),
			},
		},
		{
			// Before b ever acted, repeat falls back to the default action.
			policy: world.PolicyRepeat,
			hash:   "a=5,b=114",
			steps:  []string{"1: a=1 b=100", "2: a=1 b=5", "3: a=1 b=5", "4: a=1 b=2", "5: a=1 b=2"},
			events: []string{
				`action.missing t=1 b {"policy":"repeat"}`,
				closedEv(1, "a=1,b=100", applied("a", 1), filled("b", 100, "default")),
				closedEv(2, "a=2,b=105", applied("a", 1), applied("b", 5)),
				`action.missing t=3 b {"policy":"repeat"}`,
				closedEv(3, "a=3,b=110", applied("a", 1), filled("b", 5, "repeat")),
				closedEv(4, "a=4,b=112", applied("a", 1), applied("b", 2)),
				`action.missing t=5 b {"policy":"repeat"}`,
				closedEv(5, "a=5,b=114", applied("a", 1), filled("b", 2, "repeat")),
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.policy, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, map[world.AgentID]agentSpec{"a": {value: 1}, "b": b})
			var missed []string
			sum, err := h.run(world.LoopConfig{Ticks: 5, Deadline: shortDeadline, Missing: tc.policy, OnTick: func(r world.TickReport) {
				missed = append(missed, fmt.Sprint(r.Tick, r.Answered, r.Missing))
			}}, nil)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			checkSummary(t, sum, 5, tc.hash, map[world.AgentID]world.AgentStats{"a": {Actions: 5}, "b": {Actions: 2, Missing: 3}})
			equal(t, "tick reports", missed, []string{"1 [a] [b]", "2 [a b] []", "3 [a] [b]", "4 [a b] []", "5 [a] [b]"})
			equal(t, "steps", h.world.steps, tc.steps)
			events, _ := h.board.snapshot()
			equal(t, "events", events, tc.events)
		})
	}
}

func TestLoopMissingActionAbort(t *testing.T) {
	t.Parallel()
	// b sorts after a: a's unapplied tick-2 action must not be counted.
	h := newHarness(t, map[world.AgentID]agentSpec{"a": {value: 1}, "b": {value: 1, at: map[world.Tick][]op{2: {}}}})
	sum, err := h.run(world.LoopConfig{Ticks: 5, Deadline: shortDeadline, Missing: world.PolicyAbort}, nil)
	if !errors.Is(err, world.ErrAborted) {
		t.Fatalf("run: %v, want ErrAborted", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "agent b ") || !strings.Contains(msg, "tick 2") {
		t.Errorf("error %q does not name agent b and tick 2", msg)
	}
	checkSummary(t, sum, 1, "a=1,b=1", map[world.AgentID]world.AgentStats{"a": {Actions: 1}, "b": {Actions: 1, Missing: 1}})
	equal(t, "steps", h.world.steps, []string{"1: a=1 b=1"})
	events, _ := h.board.snapshot()
	equal(t, "events", events, []string{
		closedEv(1, "a=1,b=1", applied("a", 1), applied("b", 1)),
		`action.missing t=2 b {"policy":"abort"}`,
	})
}

func TestLoopRejectsActions(t *testing.T) {
	ab := func(a agentSpec, b agentSpec) map[world.AgentID]agentSpec {
		return map[world.AgentID]agentSpec{"a": a, "b": b}
	}
	one := agentSpec{value: 1}
	at2 := func(ops ...op) agentSpec { return agentSpec{value: 1, at: map[world.Tick][]op{2: ops}} }
	plain := func(hash2, hash3 string, acts2 ...string) (string, string) {
		return closedEv(2, hash2, acts2...), closedEv(3, hash3, acts2...)
	}
	closed1 := closedEv(1, "a=1,b=1", applied("a", 1), applied("b", 1))
	c2, c3 := plain("a=2,b=2", "a=3,b=3", applied("a", 1), applied("b", 1))

	cases := []struct {
		name     string
		agents   map[world.AgentID]agentSpec
		skip     []obsKey
		deadline time.Duration
		before   func(*world.Loop)
		hash     string
		stats    map[world.AgentID]world.AgentStats
		steps    []string // nil: three ticks of 1 each for a and b
		sends    []string // nil: a and b at every tick
		events   []string
	}{
		{
			name:   "stale tick is late",
			agents: ab(at2(actAt(-1, 50), act(1)), one),
			hash:   "a=3,b=3",
			stats:  map[world.AgentID]world.AgentStats{"a": {Actions: 3, Late: 1}, "b": {Actions: 3}},
			events: []string{closed1, `action.late t=1 a {"action_tick":1}`, c2, c3},
		},
		{
			name:   "tick zero is late",
			agents: ab(agentSpec{value: 1, at: map[world.Tick][]op{1: {actAt(-1, 50), act(1)}}}, one),
			hash:   "a=3,b=3",
			stats:  map[world.AgentID]world.AgentStats{"a": {Actions: 3, Late: 1}, "b": {Actions: 3}},
			events: []string{`action.late t=0 a {"action_tick":0}`, closed1, c2, c3},
		},
		{
			name:     "answer after the deadline is late",
			agents:   ab(at2(waitUntil(hasEventPrefix("tick.closed t=2 ")), act(50)), one),
			deadline: shortDeadline,
			hash:     "a=102,b=3",
			stats:    map[world.AgentID]world.AgentStats{"a": {Actions: 2, Missing: 1, Late: 1}, "b": {Actions: 3}},
			steps:    []string{"1: a=1 b=1", "2: a=100 b=1", "3: a=1 b=1"},
			events: []string{
				closed1,
				`action.missing t=2 a {"policy":"default"}`,
				closedEv(2, "a=101,b=2", filled("a", 100, "default"), applied("b", 1)),
				`action.late t=2 a {"action_tick":2}`,
				closedEv(3, "a=102,b=3", applied("a", 1), applied("b", 1)),
			},
		},
		{
			name:   "duplicate: first wins",
			agents: ab(at2(act(1), act(7)), at2(waitUntil(hasEventPrefix("action.rejected t=2 a ")), act(1))),
			hash:   "a=3,b=3",
			stats:  map[world.AgentID]world.AgentStats{"a": {Actions: 3, Rejected: 1}, "b": {Actions: 3}},
			events: []string{closed1, `action.rejected t=2 a {"action_tick":2,"reason":"duplicate"}`, c2, c3},
		},
		{
			name:   "future ticks",
			agents: ab(at2(actAt(1, 9), actAt(5, 9), act(1)), one),
			hash:   "a=3,b=3",
			stats:  map[world.AgentID]world.AgentStats{"a": {Actions: 3, Rejected: 2}, "b": {Actions: 3}},
			events: []string{
				closed1,
				`action.rejected t=2 a {"action_tick":3,"reason":"future"}`,
				`action.rejected t=2 a {"action_tick":7,"reason":"future"}`,
				c2, c3,
			},
		},
		{
			name: "future tick before the run",
			before: func(l *world.Loop) {
				l.Deliver(world.Action{Agent: "a", Tick: 1, Data: json.RawMessage("9")})
			},
			agents: ab(one, one),
			hash:   "a=3,b=3",
			stats:  map[world.AgentID]world.AgentStats{"a": {Actions: 3, Rejected: 1}, "b": {Actions: 3}},
			events: []string{`action.rejected t=0 a {"action_tick":1,"reason":"future"}`, closed1, c2, c3},
		},
		{
			name:   "invalid then valid",
			agents: ab(at2(act(-4), act(2)), one),
			hash:   "a=4,b=3",
			stats:  map[world.AgentID]world.AgentStats{"a": {Actions: 3, Rejected: 1}, "b": {Actions: 3}},
			steps:  []string{"1: a=1 b=1", "2: a=2 b=1", "3: a=1 b=1"},
			events: []string{
				closed1,
				`action.rejected t=2 a {"action_tick":2,"detail":"negative value -4","reason":"invalid"}`,
				closedEv(2, "a=3,b=2", applied("a", 2), applied("b", 1)),
				closedEv(3, "a=4,b=3", applied("a", 1), applied("b", 1)),
			},
		},
		{
			name: "unexpected: not observed",
			agents: map[world.AgentID]agentSpec{
				"a": at2(waitUntil(hasEventPrefix("action.rejected t=2 c ")), act(1)),
				"b": one,
				"c": at2(act(8)), // runs when the world skips it at tick 2
			},
			skip:  []obsKey{{"c", 2}},
			hash:  "a=3,b=3,c=2",
			stats: map[world.AgentID]world.AgentStats{"a": {Actions: 3}, "b": {Actions: 3}, "c": {Actions: 2, Rejected: 1}},
			steps: []string{"1: a=1 b=1 c=1", "2: a=1 b=1", "3: a=1 b=1 c=1"},
			sends: []string{"a@1", "b@1", "c@1", "a@2", "b@2", "a@3", "b@3", "c@3"},
			events: []string{
				closedEv(1, "a=1,b=1,c=1", applied("a", 1), applied("b", 1), applied("c", 1)),
				`action.rejected t=2 c {"action_tick":2,"reason":"unexpected"}`,
				closedEv(2, "a=2,b=2,c=1", applied("a", 1), applied("b", 1)),
				closedEv(3, "a=3,b=3,c=2", applied("a", 1), applied("b", 1), applied("c", 1)),
			},
		},
		{
			name: "a flood is counted in full and summarised in the events",
			agents: ab(at2(append([]op{act(1)}, slices.Repeat([]op{act(7)}, world.MaxRefusalEvents+4)...)...),
				agentSpec{value: 1, at: map[world.Tick][]op{2: {}}}),
			deadline: shortDeadline,
			hash:     "a=3,b=102",
			stats:    map[world.AgentID]world.AgentStats{"a": {Actions: 3, Rejected: world.MaxRefusalEvents + 4}, "b": {Actions: 2, Missing: 1}},
			steps:    []string{"1: a=1 b=1", "2: a=1 b=100", "3: a=1 b=1"},
			events: append(append([]string{closed1},
				slices.Repeat([]string{`action.rejected t=2 a {"action_tick":2,"reason":"duplicate"}`}, world.MaxRefusalEvents)...),
				`action.missing t=2 b {"policy":"default"}`,
				`action.rejected t=2 a {"count":4,"reason":"suppressed"}`,
				closedEv(2, "a=2,b=101", applied("a", 1), filled("b", 100, "default")),
				closedEv(3, "a=3,b=102", applied("a", 1), applied("b", 1))),
		},
		{
			name:   "unknown agent ignored",
			agents: ab(at2(actAs("zz", 9), act(1)), one),
			hash:   "a=3,b=3",
			stats:  map[world.AgentID]world.AgentStats{"a": {Actions: 3}, "b": {Actions: 3}},
			events: []string{closed1, c2, c3},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.agents)
			for _, k := range tc.skip {
				h.world.skip[k] = true
			}
			deadline := tc.deadline
			if deadline == 0 {
				deadline = longDeadline
			}
			sum, err := h.run(world.LoopConfig{Ticks: 3, Deadline: deadline}, tc.before)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			checkSummary(t, sum, 3, tc.hash, tc.stats)
			steps := tc.steps
			if steps == nil {
				steps = []string{"1: a=1 b=1", "2: a=1 b=1", "3: a=1 b=1"}
			}
			equal(t, "steps", h.world.steps, steps)
			sends := tc.sends
			if sends == nil {
				sends = []string{"a@1", "b@1", "a@2", "b@2", "a@3", "b@3"}
			}
			equal(t, "sends", h.sends(), sends)
			events, _ := h.board.snapshot()
			equal(t, "events", events, tc.events)
		})
	}
}

func TestLoopAgentGone(t *testing.T) {
	cases := []struct {
		name     string
		agents   map[world.AgentID]agentSpec
		deadline time.Duration
		before   func(*world.Loop)
		hash     string
		stats    map[world.AgentID]world.AgentStats
		steps    []string
		sends    []string
		events   []string
	}{
		{
			// b leaves instead of answering tick 2: the tick closes without
			// waiting for it (the deadline is a minute) and without filling.
			name:     "mid-tick",
			agents:   map[world.AgentID]agentSpec{"a": {value: 1}, "b": {value: 1, at: map[world.Tick][]op{2: {gone()}}}, "c": {value: 1}},
			deadline: longDeadline,
			hash:     "a=3,b=1,c=3",
			stats:    map[world.AgentID]world.AgentStats{"a": {Actions: 3}, "b": {Actions: 1}, "c": {Actions: 3}},
			steps:    []string{"1: a=1 b=1 c=1", "2: a=1 c=1", "3: a=1 c=1"},
			sends:    []string{"a@1", "b@1", "c@1", "a@2", "b@2", "c@2", "a@3", "c@3"},
			events: []string{
				closedEv(1, "a=1,b=1,c=1", applied("a", 1), applied("b", 1), applied("c", 1)),
				closedEv(2, "a=2,b=1,c=2", applied("a", 1), applied("c", 1)),
				closedEv(3, "a=3,b=1,c=3", applied("a", 1), applied("c", 1)),
			},
		},
		{
			// b leaves at tick 1 and is back (restarted) during tick 2: it is
			// observed again from tick 3 on.
			name: "gone and back",
			agents: map[world.AgentID]agentSpec{
				"a": {value: 1, at: map[world.Tick][]op{2: {backOf("b"), act(1)}}},
				"b": {value: 1, at: map[world.Tick][]op{1: {gone()}}},
			},
			deadline: longDeadline,
			hash:     "a=3,b=1",
			stats:    map[world.AgentID]world.AgentStats{"a": {Actions: 3}, "b": {Actions: 1}},
			steps:    []string{"1: a=1", "2: a=1", "3: a=1 b=1"},
			sends:    []string{"a@1", "b@1", "a@2", "a@3", "b@3"},
			events: []string{
				closedEv(1, "a=1,b=0", applied("a", 1)),
				closedEv(2, "a=2,b=0", applied("a", 1)),
				closedEv(3, "a=3,b=1", applied("a", 1), applied("b", 1)),
			},
		},
		{
			name:     "before the run",
			agents:   map[world.AgentID]agentSpec{"a": {value: 1}, "b": {value: 1}},
			deadline: longDeadline,
			before:   func(l *world.Loop) { l.Gone("b"); l.Gone("b"); l.Gone("nobody") },
			hash:     "a=3,b=0",
			stats:    map[world.AgentID]world.AgentStats{"a": {Actions: 3}},
			steps:    []string{"1: a=1", "2: a=1", "3: a=1"},
			sends:    []string{"a@1", "a@2", "a@3"},
			events: []string{
				closedEv(1, "a=1,b=0", applied("a", 1)),
				closedEv(2, "a=2,b=0", applied("a", 1)),
				closedEv(3, "a=3,b=0", applied("a", 1)),
			},
		},
		{
			// Regression: b answers tick 2 and then leaves while the tick is
			// still open (a never answers it). b's accepted action is applied,
			// whether or not its departure was seen before the tick closed.
			name: "after answering",
			agents: map[world.AgentID]agentSpec{
				"a": {value: 1, at: map[world.Tick][]op{2: {}}},
				"b": {value: 1, at: map[world.Tick][]op{2: {act(5), gone()}}},
			},
			deadline: shortDeadline,
			hash:     "a=102,b=6",
			stats:    map[world.AgentID]world.AgentStats{"a": {Actions: 2, Missing: 1}, "b": {Actions: 2}},
			steps:    []string{"1: a=1 b=1", "2: a=100 b=5", "3: a=1"},
			sends:    []string{"a@1", "b@1", "a@2", "b@2", "a@3"},
			events: []string{
				closedEv(1, "a=1,b=1", applied("a", 1), applied("b", 1)),
				`action.missing t=2 a {"policy":"default"}`,
				closedEv(2, "a=101,b=6", filled("a", 100, "default"), applied("b", 5)),
				closedEv(3, "a=102,b=6", applied("a", 1)),
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.agents)
			sum, err := h.run(world.LoopConfig{Ticks: 3, Deadline: tc.deadline}, tc.before)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			checkSummary(t, sum, 3, tc.hash, tc.stats)
			equal(t, "steps", h.world.steps, tc.steps)
			equal(t, "sends", h.sends(), tc.sends)
			events, _ := h.board.snapshot()
			equal(t, "events", events, tc.events)
		})
	}
}

func TestLoopStops(t *testing.T) {
	cases := []struct {
		name      string
		ticks     world.Tick
		doneAfter int
		want      world.Tick
	}{
		{"tick limit", 3, -1, 3},
		{"world done", 0, 2, 2},
		{"world done first", 5, 2, 2},
		{"limit first", 2, 5, 2},
		{"done from the start", 4, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, map[world.AgentID]agentSpec{"a": {value: 1}, "b": {value: 2}})
			h.world.doneAfter = tc.doneAfter
			sum, err := h.run(world.LoopConfig{Ticks: tc.ticks, Deadline: longDeadline}, nil)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			stats := map[world.AgentID]world.AgentStats{"a": {Actions: int(tc.want)}, "b": {Actions: int(tc.want)}}
			if tc.want == 0 {
				stats = map[world.AgentID]world.AgentStats{}
			}
			checkSummary(t, sum, tc.want, fmt.Sprintf("a=%d,b=%d", tc.want, 2*tc.want), stats)
			if len(h.world.steps) != int(tc.want) {
				t.Errorf("steps: %q, want %d", h.world.steps, tc.want)
			}
		})
	}
}

func TestLoopContextCancel(t *testing.T) {
	cases := []struct {
		name   string
		agents map[world.AgentID]agentSpec
		onTick bool // cancel from OnTick after tick 2
	}{
		{"between ticks", map[world.AgentID]agentSpec{"a": {value: 1}, "b": {value: 2}}, true},
		{"mid-tick", map[world.AgentID]agentSpec{"a": {value: 1, at: map[world.Tick][]op{3: {cancelRun()}}}, "b": {value: 2}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.agents)
			cfg := world.LoopConfig{Deadline: longDeadline} // no tick limit, never done
			if tc.onTick {
				cfg.OnTick = func(r world.TickReport) {
					if r.Tick == 2 {
						h.cancel()
					}
				}
			}
			sum, err := h.run(cfg, nil)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("run: %v, want context.Canceled", err)
			}
			checkSummary(t, sum, 2, "a=2,b=4", map[world.AgentID]world.AgentStats{"a": {Actions: 2}, "b": {Actions: 2}})
			equal(t, "steps", h.world.steps, []string{"1: a=1 b=2", "2: a=1 b=2"})
		})
	}
}

func TestLoopWorldErrors(t *testing.T) {
	cases := []struct {
		what string
		want string
	}{
		{"observe", "tick 2: observe a: observe broke"},
		{"step", "tick 2: step: step broke"},
	}
	for _, tc := range cases {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, map[world.AgentID]agentSpec{"a": {value: 1}})
			h.world.failAt[tc.what] = 2
			sum, err := h.run(world.LoopConfig{Ticks: 3, Deadline: longDeadline}, nil)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("run: %v, want %q", err, tc.want)
			}
			checkSummary(t, sum, 1, "a=1", map[world.AgentID]world.AgentStats{"a": {Actions: 1}})
		})
	}
}

func TestLoopDeliverAndGoneAfterRunDoNotBlock(t *testing.T) {
	h := newHarness(t, map[world.AgentID]agentSpec{"a": {value: 1}})
	if _, err := h.run(world.LoopConfig{Ticks: 1, Deadline: longDeadline}, nil); err != nil {
		t.Fatalf("run: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// More than the loop's queues hold.
		for i := range 5000 {
			h.loop.Deliver(world.Action{Agent: "a", Tick: world.Tick(i), Data: json.RawMessage("1")})
			h.loop.Gone("a")
		}
	}()
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatal("Deliver/Gone blocked after Run returned")
	}
}

func TestNewLoopChecksConfig(t *testing.T) {
	b := newBoard()
	w := newSumWorld([]world.AgentID{"a"}, b)
	h := newHarness(t, map[world.AgentID]agentSpec{"a": {}})
	good := world.LoopConfig{World: w, Agents: h, Events: b, Deadline: time.Second}
	cases := []struct {
		name string
		edit func(*world.LoopConfig)
		want string // "" = accepted
	}{
		{"ok", func(*world.LoopConfig) {}, ""},
		{"default policy", func(c *world.LoopConfig) { c.Missing = "" }, ""},
		{"repeat", func(c *world.LoopConfig) { c.Missing = world.PolicyRepeat }, ""},
		{"no world", func(c *world.LoopConfig) { c.World = nil }, "no world"},
		{"no agents", func(c *world.LoopConfig) { c.Agents = nil }, "no agents"},
		{"no events", func(c *world.LoopConfig) { c.Events = nil }, "no event sink"},
		{"no deadline", func(c *world.LoopConfig) { c.Deadline = 0 }, "deadline"},
		{"bad policy", func(c *world.LoopConfig) { c.Missing = "retry" }, `"retry"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			_, err := world.NewLoop(cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("NewLoop: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("NewLoop: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestTickRNG(t *testing.T) {
	draw := func(seed uint64, tick world.Tick) [4]uint64 {
		r := world.TickRNG(seed, tick)
		return [4]uint64{r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64()}
	}
	seen := map[[4]uint64]string{}
	for _, seed := range []uint64{0, 1, 42} {
		for tick := world.Tick(0); tick <= 50; tick++ {
			got := draw(seed, tick)
			if again := draw(seed, tick); again != got {
				t.Fatalf("TickRNG(%d, %d) not repeatable: %v then %v", seed, tick, got, again)
			}
			key := fmt.Sprintf("seed %d tick %d", seed, tick)
			if prev, dup := seen[got]; dup {
				t.Errorf("%s draws the same as %s", key, prev)
			}
			seen[got] = key
		}
	}
}

func TestAgentSeed(t *testing.T) {
	ids := []world.AgentID{"a", "b", "a-1", "a_1", "agent-10"}
	seen := map[uint64]string{}
	for _, seed := range []uint64{0, 1, 1 << 40} {
		for _, id := range ids {
			s := world.AgentSeed(seed, id)
			if world.AgentSeed(seed, id) != s {
				t.Fatalf("AgentSeed(%d, %s) not repeatable", seed, id)
			}
			key := fmt.Sprintf("%d/%s", seed, id)
			if prev, dup := seen[s]; dup {
				t.Errorf("AgentSeed %s equals %s", key, prev)
			}
			seen[s] = key
		}
	}
	if len(seen) != 15 {
		t.Errorf("got %d distinct seeds, want 15", len(seen))
	}
}

func TestLoopStopWithoutRunReleasesSenders(t *testing.T) {
	h := newHarness(t, map[world.AgentID]agentSpec{"a": {value: 1}})
	loop, err := world.NewLoop(world.LoopConfig{World: h.world, Agents: h, Events: h.board, Seats: h.seats, Deadline: longDeadline})
	if err != nil {
		t.Fatalf("new loop: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// More than the queues hold: these block until Stop.
		for i := range 5000 {
			loop.Deliver(world.Action{Agent: "a", Tick: world.Tick(i), Data: json.RawMessage("1")})
			loop.Gone("a")
		}
	}()
	loop.Stop()
	loop.Stop() // a second Stop is harmless
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatal("Deliver/Gone still blocked after Stop")
	}
}
