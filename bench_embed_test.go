package terrarium_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/inproc"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

// Embedding benchmarks; they run only with -bench:
//
//	go test -run '^$' -bench 'RealtimeLatency|InProcTicks' -benchtime 1x .

// latencyWorld measures, at every step, how long ago each applied action
// was sent (the agents stamp it), and how late each tick was.
type latencyWorld struct {
	gameWorld
	mu      sync.Mutex
	lat     []time.Duration
	ownTick int // actions applied at the tick they answered
	late    int // applied at a later tick
}

func (w *latencyWorld) Step(t world.Tick, actions []world.Action, rng *rand.Rand) (world.StepResult, error) {
	now := time.Now()
	w.mu.Lock()
	for _, a := range actions {
		var d struct {
			SentNS int64 `json:"sent_ns"`
		}
		if json.Unmarshal(a.Data, &d) != nil || d.SentNS == 0 {
			continue // filled by the policy
		}
		w.lat = append(w.lat, now.Sub(time.Unix(0, d.SentNS)))
		if a.Tick == t {
			w.ownTick++
		} else {
			w.late++
		}
	}
	w.mu.Unlock()
	return world.StepResult{}, nil
}

func (w *latencyWorld) Validate(world.Action) error { return nil }

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

// Action-to-applied latency at 60 Hz with 100 NPC processes: from the
// moment an NPC sends its action to the step that applies it (which waits
// for the tick boundary, so up to one tick by design), and the share of
// ticks applied on time.
func BenchmarkRealtimeLatency(b *testing.B) {
	for _, rate := range []int{60, 20} {
		b.Run(fmt.Sprintf("hz=%d", rate), func(b *testing.B) { benchRealtimeLatency(b, rate) })
	}
}

func benchRealtimeLatency(b *testing.B, rate int) {
	const npcCount = 100
	ticks := uint64(5 * rate) // 5 s of play
	for i := 0; i < b.N; i++ {
		sc := scenarios.New("latency").Realtime(float64(rate))
		sc.Ticks = ticks
		sc.ReadyTimeout = 5 * time.Minute
		sc.Add(npcs("npc", "bench_npc_stamp", npcCount))
		w := &latencyWorld{gameWorld: *newGameWorld()}
		var behind []time.Duration
		h, err := terrarium.New(terrarium.Config{Scenario: sc, World: w, Logger: hclog.NewNullLogger(),
			Dir: filepath.Join(openTempDir(b), "run"), Env: raceEnv,
			Progress: func(terrarium.Progress) {}})
		if err != nil {
			b.Fatal(err)
		}
		res, err := h.Run(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		_ = h.Close()
		recs, err := events.ReadFile(filepath.Join(res.Dir, "events.jsonl"))
		if err != nil {
			b.Fatal(err)
		}
		closed := kinds(recs, world.EventTickClosed)
		for _, c := range closed {
			var d struct {
				BehindUS int64 `json:"behind_us"`
			}
			_ = json.Unmarshal(c.Data, &d)
			behind = append(behind, time.Duration(d.BehindUS)*time.Microsecond)
		}
		interval := time.Second / time.Duration(rate)
		var onTime, within1ms int
		for _, d := range behind {
			if d < interval {
				onTime++
			}
			if d < time.Millisecond {
				within1ms++
			}
		}
		w.mu.Lock()
		p50, p99 := quantile(w.lat, 0.5), quantile(w.lat, 0.99)
		own := float64(w.ownTick) / float64(max(w.ownTick+w.late, 1))
		n := len(w.lat)
		w.mu.Unlock()
		b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
		b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
		b.ReportMetric(100*float64(onTime)/float64(len(behind)), "%ticks-before-next")
		b.ReportMetric(100*float64(within1ms)/float64(len(behind)), "%ticks-within-1ms")
		b.ReportMetric(100*own, "%actions-at-own-tick")
		b.Logf("%d NPC processes at %d Hz, %d ticks: %d actions applied, latency p50 %s p99 %s; %d/%d ticks applied before the next boundary, %d within 1 ms of theirs; %.1f%% of actions at their own tick; isolation %s",
			npcCount, rate, res.Ticks, n, p50, p99, onTime, len(behind), within1ms, 100*own, res.Isolation)
	}
}

// In-process agents' ticks per second at 10,000 agents (every agent acts
// every tick, lockstep so every tick waits for all of them), through the
// whole host: the loop, the judging, and tick.closed recording 10,000
// actions per tick in events.jsonl and the event stream. Worlds: crowd
// (trivial: every agent sees the running total, encoded once per tick,
// and answers 1) and tally (the same game with the observation encoded
// and each action decoded with encoding/json per agent: what such a world
// costs).
func BenchmarkInProcTicks(b *testing.B) {
	for _, c := range []struct {
		world string
		n     int
	}{{"crowd", 1000}, {"crowd", 10000}, {"tally", 10000}} {
		b.Run(fmt.Sprintf("world=%s/agents=%d", c.world, c.n), func(b *testing.B) {
			const ticks = 100
			for i := 0; i < b.N; i++ {
				sc := scenarios.New("crowd")
				sc.Ticks = ticks
				sc.ActionDeadline = time.Minute
				crowd := scenarios.NewAgent("npc", scenarios.RuntimeInProc, "one")
				crowd.Count = c.n
				sc.Add(crowd)
				var w world.World = &crowdWorld{}
				if c.world == "tally" {
					w = &tally{}
				}
				var first, last time.Time
				var cpuFirst, cpuLast time.Duration
				h, err := terrarium.New(terrarium.Config{Scenario: sc, World: w, Logger: hclog.NewNullLogger(),
					Dir: filepath.Join(openTempDir(b), "run"), AgentUsers: terrarium.AgentUsersOff,
					InProc: map[string]inproc.Factory{"one": func(world.Seat) inproc.Agent {
						return inproc.Func(func(context.Context, inproc.Observation) (any, error) { return json.RawMessage(`1`), nil })
					}},
					Progress: func(p terrarium.Progress) {
						if p.Tick == 1 {
							first, cpuFirst = time.Now(), processCPU()
						}
						last, cpuLast = time.Now(), processCPU()
					}})
				if err != nil {
					b.Fatal(err)
				}
				res, err := h.Run(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				_ = h.Close()
				for _, a := range res.Agents {
					if a.Actions != ticks {
						b.Fatalf("agent %s applied %d actions, want %d", a.ID, a.Actions, ticks)
					}
				}
				perSec := float64(ticks-1) / last.Sub(first).Seconds()
				cpuPerTick := (cpuLast - cpuFirst) / (ticks - 1)
				b.ReportMetric(perSec, "ticks/s")
				b.ReportMetric(float64(cpuPerTick.Microseconds())/1000, "cpu-ms/tick")
				b.ReportMetric(float64(res.TickTime.MedianUS), "median-tick-µs")
				b.Logf("%d in-process agents (world %s) through the host: %.0f ticks/s wall, %s CPU per tick (median tick %d µs, p95 %d µs)",
					c.n, c.world, perSec, cpuPerTick, res.TickTime.MedianUS, res.TickTime.P95US)
			}
		})
	}
}

// crowdWorld is tally written for a crowd: every agent's observation is
// the same, so it is encoded once per tick, and actions (JSON integers)
// are read without encoding/json. What is left is the host's cost.
type crowdWorld struct {
	total int
	obs   json.RawMessage
	obsAt world.Tick
}

func (w *crowdWorld) Observe(_ world.AgentID, t world.Tick) (json.RawMessage, bool, error) {
	if w.obs == nil || w.obsAt != t {
		w.obs, w.obsAt = json.RawMessage(`{"total":`+strconv.Itoa(w.total)+`}`), t
	}
	return w.obs, true, nil
}

// crowdInt reads a JSON integer.
func crowdInt(b []byte) (int, error) {
	n, err := strconv.Atoi(string(b))
	if err != nil {
		return 0, fmt.Errorf("want an integer: %w", err)
	}
	return n, nil
}

func (w *crowdWorld) Validate(a world.Action) error { _, err := crowdInt(a.Data); return err }
func (w *crowdWorld) DefaultAction(world.AgentID, world.Tick) json.RawMessage {
	return json.RawMessage(`0`)
}
func (w *crowdWorld) Step(t world.Tick, actions []world.Action, _ *rand.Rand) (world.StepResult, error) {
	for _, a := range actions {
		n, _ := crowdInt(a.Data)
		w.total += n
	}
	return world.StepResult{Metrics: map[string]float64{"total": float64(w.total)}}, nil
}
func (w *crowdWorld) Done() bool                { return false }
func (w *crowdWorld) Metrics() []string         { return []string{"total"} }
func (w *crowdWorld) Result() any               { return map[string]int{"total": w.total} }
func (w *crowdWorld) Snapshot() ([]byte, error) { return json.Marshal(w.total) }
func (w *crowdWorld) Restore(b []byte) error    { return json.Unmarshal(b, &w.total) }
func (w *crowdWorld) StateHash() string         { return strconv.Itoa(w.total) }

// The same crowd (world crowd) on the loop alone (no host, events
// discarded): what the loop and the in-process runtime cost without the
// event log.
func BenchmarkInProcLoopOnly(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
			const ticks = 100
			seats := make([]world.Seat, n)
			agents := make(map[world.AgentID]inproc.Agent, n)
			one := inproc.Func(func(context.Context, inproc.Observation) (any, error) { return json.RawMessage(`1`), nil })
			for i := range seats {
				seats[i] = world.Seat{ID: world.AgentID(fmt.Sprintf("npc-%05d", i)), Group: "npc", Index: i + 1}
				agents[seats[i].ID] = one
			}
			for i := 0; i < b.N; i++ {
				var loop *world.Loop
				rt, err := inproc.New(inproc.Config{Agents: agents, DeliverAll: func(as []world.Action) { loop.DeliverAll(as) }})
				if err != nil {
					b.Fatal(err)
				}
				loop, err = world.NewLoop(world.LoopConfig{World: &crowdWorld{}, Agents: rt, Events: discard{}, Seats: seats,
					Ticks: ticks, Deadline: time.Minute})
				if err != nil {
					b.Fatal(err)
				}
				rt.Start()
				start, cpu := time.Now(), processCPU()
				if _, err := loop.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
				wall, used := time.Since(start), processCPU()-cpu
				_ = rt.Close()
				b.ReportMetric(float64(ticks)/wall.Seconds(), "ticks/s")
				b.ReportMetric(float64((used/ticks).Microseconds())/1000, "cpu-ms/tick")
				b.Logf("%d in-process agents on the loop alone: %.0f ticks/s wall, %s CPU per tick", n, float64(ticks)/wall.Seconds(), used/ticks)
			}
		})
	}
}

type discard struct{}

func (discard) Emit(string, world.Tick, world.AgentID, map[string]any) {}

// processCPU is the CPU time this process has used (user + system): under a
// shared, loaded machine a steadier figure than wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
