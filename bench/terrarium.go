package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
	"github.com/terrarium-sim/terrarium/world/echo"
)

// obsPayload is the echo world's padding in every observation (bytes).
const obsPayload = 64

// ackAction is what the builtin "ack" agent answers (agents/builtin).
var ackAction = json.RawMessage(`{"ok":true}`)

// scenarioSource is the Terrarium side of a lockstep case: n builtin "ack"
// agents (the Go SDK, one process each) on the echo world.
func scenarioSource(n, ticks int) string {
	return fmt.Sprintf(`
scenario "bench" {
  ticks           = %d
  action_deadline = "60s"
  ready_timeout   = "600s"
}
world %q {
  payload = %d
}
agent "a" {
  runtime = "builtin"
  command = "ack"
  count   = %d
}
`, ticks, echo.Kind, obsPayload, n)
}

// agentIDs are the ids scenarioSource's agents get, for the baseline too.
func agentIDs(n int) []string {
	if n == 1 {
		return []string{"a"}
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "a-" + strconv.Itoa(i+1)
	}
	return ids
}

// runID names the run of directory dir, on either side.
func runID(dir string) string { return "bench-" + filepath.Base(dir) }

// payloadSizes are the sizes of a Terrarium observation and action
// envelope for a typical agent of a 1,000-agent run, mid-run: the baseline
// sends messages of these sizes.
func payloadSizes() Payload {
	w, _ := echo.New(echo.Config{Payload: obsPayload})
	obs, _, _ := w.Observe("a-500", 20)
	d := time.Now().UTC()
	o, _ := bus.Encode(bus.Envelope{Kind: bus.KindObs, Run: runID("10"), Agent: "a-500", Tick: 20, Seq: 20000, Deadline: &d, Data: obs})
	a, _ := bus.Encode(bus.Envelope{Kind: bus.KindAct, Run: runID("10"), Agent: "a-500", Tick: 20, Seq: 21, Data: ackAction})
	return Payload{Observation: len(o), Action: len(a)}
}

// settle collects garbage and returns freed memory to the system, so that
// the sample taken before a run is not inflated by the previous one.
func settle() memSample {
	runtime.GC()
	debug.FreeOSMemory()
	return sampleMem()
}

// runTerrarium runs the Terrarium side: a real run through terrarium.Host,
// with its loop, envelopes, events and recording.
func runTerrarium(ctx context.Context, o Options, dir string, n, ticks int) (side, error) {
	return runTerrariumSource(ctx, o, dir, n, ticks, scenarioSource(n, ticks))
}

// runTerrariumSource is runTerrarium on the scenario src (n agents).
func runTerrariumSource(ctx context.Context, o Options, dir string, n, ticks int, src string) (side, error) {
	sc, diags := scenarios.Parse([]byte(src), "bench.hcl")
	if diags.HasErrors() {
		return side{}, fmt.Errorf("scenario: %s", diags.Error())
	}
	var (
		mu         sync.Mutex
		closed     = make([]time.Time, 0, ticks)
		after      memSample
		cpu0, cpu1 cpuSample
	)
	h, err := terrarium.New(terrarium.Config{
		Scenario: sc, Logger: o.Logger, Dir: dir, RunID: runID(dir), Executable: o.Executable,
		AgentUsers: o.AgentUsers, Env: o.Env,
		Progress: func(p terrarium.Progress) {
			now := time.Now()
			mu.Lock()
			closed = append(closed, now)
			mu.Unlock()
			switch int(p.Tick) {
			case 1:
				s, c := sampleMem(), sampleCPU()
				mu.Lock()
				after, cpu0 = s, c
				mu.Unlock()
			case ticks:
				c := sampleCPU()
				mu.Lock()
				cpu1 = c
				mu.Unlock()
			}
		},
	})
	if err != nil {
		return side{}, err
	}
	defer h.Close()
	before := settle()
	res, err := h.Run(ctx)
	if err != nil {
		return side{}, err
	}
	if int(res.Ticks) != ticks {
		return side{}, fmt.Errorf("%d ticks, want %d", res.Ticks, ticks)
	}
	for _, a := range res.Agents {
		if a.Actions != ticks {
			return side{}, fmt.Errorf("agent %s applied %d actions of %d (missing %d, late %d, rejected %d): not a clean run", a.ID, a.Actions, ticks, a.Missing, a.Late, a.Rejected)
		}
	}
	if o.AgentUsers == "on" && !strings.HasPrefix(res.Isolation, "users") {
		return side{}, fmt.Errorf("agents did not run as their own users: %s", res.Isolation)
	}
	var s side
	mu.Lock()
	s.ticksPerSec, s.p50us, s.p99us, err = tickFigures(closed)
	s.rssKiB, s.fds = perAgent(before, after, n)
	s.cpuPerRoundTrip(cpu0, cpu1, n, ticks)
	mu.Unlock()
	if err != nil {
		return side{}, err
	}
	recs, err := events.ReadFile(filepath.Join(res.Dir, "events.jsonl"))
	if err != nil {
		return side{}, err
	}
	var first, last time.Time
	ready := 0
	for _, r := range recs {
		switch r.Kind {
		case events.AgentSpawned:
			if first.IsZero() {
				first = r.Time
			}
		case events.AgentReady:
			last = r.Time
			ready++
		case world.EventActionMissing:
			return side{}, fmt.Errorf("an action went missing at tick %d", r.Tick)
		}
	}
	if ready != n {
		return side{}, fmt.Errorf("%d agent.ready events, want %d", ready, n)
	}
	s.readyMS = float64(last.Sub(first)) / float64(time.Millisecond)
	return s, nil
}
