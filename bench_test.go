package terrarium_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/internal/testenv"
	"github.com/terrarium-sim/terrarium/internal/testlog"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

// Speed benchmarks for agent hosting. They run only with -bench:
//
//	go test -run '^$' -bench 'SpawnToReady|LockstepTick' -benchtime 1x .
//
// The figures come from the run's own records (events.jsonl, result.json),
// not from the benchmark's clock, so ns/op (the whole run, shutdown
// included) is the least interesting number they print.

// benchStdioEnv, when set in an agent's environment, makes this test binary
// a stdio-runtime tit-for-tat agent instead of running tests. The host
// passes it through Config.Env; no other process sees it.
const benchStdioEnv = "BENCH_STDIO_AGENT"

func init() {
	// Package init runs before TestMain, so the agent mode wins over the
	// test runner and over builtin.Main.
	if os.Getenv(benchStdioEnv) == "tit_for_tat" {
		os.Exit(stdioTitForTat(os.Stdin, os.Stdout))
	}
}

// stdioTitForTat is tit for tat speaking the stdio runtime's JSON lines
// (docs/protocol.md, "The stdio runtime"): the Go twin of
// agents/examples/python/tit_for_tat.py, so that a benchmark can set the
// bridge's cost apart from an interpreter's.
func stdioTitForTat(in io.Reader, out io.Writer) int {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	w := bufio.NewWriter(out)
	for sc.Scan() {
		var msg struct {
			Type string `json:"type"`
			Tick uint64 `json:"tick"`
			Data struct {
				Matches []struct {
					Match string `json:"match"`
					Them  string `json:"them"`
				} `json:"matches"`
			} `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
			fmt.Fprintf(os.Stderr, "bench stdio agent: not JSON: %v\n", err)
			continue
		}
		switch msg.Type {
		case "obs":
			moves := make(map[string]string, len(msg.Data.Matches))
			for _, m := range msg.Data.Matches {
				moves[m.Match] = "C"
				if n := len(m.Them); n > 0 {
					moves[m.Match] = m.Them[n-1:]
				}
			}
			line, err := json.Marshal(map[string]any{"type": "act", "tick": msg.Tick, "data": map[string]any{"moves": moves}})
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench stdio agent: %v\n", err)
				return 1
			}
			w.Write(append(line, '\n'))
			if err := w.Flush(); err != nil {
				return 0 // the host closed our stdout: the run is over
			}
		case "stop":
			return 0
		}
	}
	return 0
}

// BenchmarkSpawnToReady measures how fast the host brings N builtin agents
// (each its own OS process, Go SDK over NATS) from spawn to ready, and what
// each costs the host in memory. The world is one round of a self-play
// round robin between N/2 strategies (N/2 + (N/2)(N/2-1)/2 matches), so the
// run is nearly all start-up and shutdown.
//
// Metrics: ms-to-ready, first agent.spawned to last agent.ready; ms/agent,
// that divided by N; ms-setup, run.started to the first agent.spawned (run
// directory, bus, credentials, workspaces); KiB/agent, the host's VmRSS
// growth from before Run to all agents ready, divided by N (it includes the
// embedded bus's side of every connection); heap-KiB/agent, the same for
// the Go heap and stacks (runtime.MemStats HeapInuse+StackInuse);
// ms-stop, from the end of the last tick to Run's return (agents told to
// stop, their exits, the sweep, the bus closed, result.json written);
// killed, the agents that had to be killed by a signal to stop.
func BenchmarkSpawnToReady(b *testing.B) {
	for _, c := range []struct {
		n      int
		limits string
	}{{100, ""}, {500, ""}, {100, "memory = \"256MiB\"\n  pids = 64\n  cpu = 0.5\n"}} {
		n, name := c.n, fmt.Sprintf("agents=%d", c.n)
		if c.limits != "" {
			name += ",limits" // each agent starts through the shim, in cgroups of its own
		}
		b.Run(name, func(b *testing.B) {
			sc := writeScenario(b, spawnScenario(n, c.limits))
			var toReady, setup, rss, heap, stop, killed []float64
			for i := 0; i < b.N; i++ {
				m := runSpawnOnce(b, sc, n)
				toReady = append(toReady, m.toReady)
				setup = append(setup, m.setup)
				rss = append(rss, m.rssKiB)
				heap = append(heap, m.heapKiB)
				stop = append(stop, m.stop)
				killed = append(killed, float64(m.killed))
			}
			t := median(toReady)
			b.ReportMetric(t, "ms-to-ready")
			b.ReportMetric(t/float64(n), "ms/agent")
			b.ReportMetric(median(setup), "ms-setup")
			b.ReportMetric(median(rss)/float64(n), "KiB/agent")
			b.ReportMetric(median(heap)/float64(n), "heap-KiB/agent")
			b.ReportMetric(median(stop), "ms-stop")
			b.ReportMetric(median(killed), "killed")
		})
	}
}

// spawnScenario is n builtin agents in n/2 self-play blocks, one tick;
// limits, if not empty, goes into every agent block.
func spawnScenario(n int, limits string) string {
	var s strings.Builder
	s.WriteString(`
scenario "spawn_bench" {
  ticks           = 1
  action_deadline = "60s"
  ready_timeout   = "300s"
}
world "repeated_game" {
  rounds    = 1
  self_play = true
}
`)
	for i := 0; i < n/2; i++ {
		fmt.Fprintf(&s, "agent \"p%03d\" {\n  runtime = \"builtin\"\n  command = \"cooperator\"\n  count   = 2\n  %s}\n", i, limits)
	}
	return s.String()
}

type spawnFigures struct {
	toReady, setup  float64 // milliseconds
	rssKiB, heapKiB float64 // growth in KiB, for all agents
	stop            float64 // milliseconds from the last tick to Run's return
	killed          int     // agents stopped by a signal
}

// runSpawnOnce runs sc once. A poller follows events.jsonl (flushed after
// every event) and samples the host's memory as soon as n agent.ready
// events are there; should the run outpace it, the sample taken in the
// Progress callback after tick 1 (every agent is ready before tick 1)
// stands in.
func runSpawnOnce(b *testing.B, sc *scenarios.Scenario, n int) spawnFigures {
	b.Helper()
	dir := filepath.Join(openTempDir(b), "run")
	var (
		mu                  sync.Mutex
		readyMem, progMem   memSample
		haveReady, haveProg bool
		lastTick            time.Time
	)
	h, err := terrarium.New(terrarium.Config{
		Scenario: sc, Logger: benchLogger(b), Dir: dir, Env: raceEnv,
		Progress: func(p terrarium.Progress) {
			if p.Tick != 1 {
				return
			}
			s := sampleMem(b)
			mu.Lock()
			progMem, haveProg = s, true
			lastTick = time.Now() // the only tick
			mu.Unlock()
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Close() })

	// Give back what earlier runs in this process left (free heap spans,
	// stacks), so that the growth below is this run's alone, not less for
	// every iteration after the first.
	debug.FreeOSMemory()
	before := sampleMem(b)
	stop := make(chan struct{})
	var poll sync.WaitGroup
	poll.Go(func() {
		if waitForEvents(filepath.Join(dir, "events.jsonl"), events.AgentReady, n, stop) {
			s := sampleMem(b)
			mu.Lock()
			readyMem, haveReady = s, true
			mu.Unlock()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, runErr := h.Run(ctx)
	returned := time.Now()
	close(stop)
	poll.Wait()
	if runErr != nil {
		b.Fatalf("run: %v", runErr)
	}
	at := readyMem
	mu.Lock()
	switch {
	case haveReady:
	case haveProg:
		at = progMem
		b.Logf("memory sampled after tick 1 (the poller missed the ready moment)")
	default:
		b.Fatal("no memory sample: neither all agents ready nor tick 1 seen")
	}
	mu.Unlock()

	recs, err := events.ReadFile(filepath.Join(res.Dir, "events.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	var started, firstSpawn, lastReady time.Time
	spawned, ready := 0, 0
	for _, r := range recs {
		switch r.Kind {
		case events.RunStarted:
			started = r.Time
		case events.AgentSpawned:
			if spawned == 0 {
				firstSpawn = r.Time
			}
			spawned++
		case events.AgentReady:
			lastReady = r.Time
			ready++
		}
	}
	if spawned != n || ready != n {
		b.Fatalf("%d agent.spawned and %d agent.ready events, want %d of each", spawned, ready, n)
	}
	killed := 0
	for _, a := range res.Agents {
		if a.Signal != "" {
			killed++
		}
	}
	mu.Lock()
	stopped := returned.Sub(lastTick)
	mu.Unlock()
	b.Logf("%d agents, isolation %s: ready %v after the first spawn, VmRSS %d -> %d KiB; stopped in %v, %d killed by a signal",
		n, res.Isolation, lastReady.Sub(firstSpawn).Round(time.Millisecond), before.rssKiB, at.rssKiB, stopped.Round(time.Millisecond), killed)
	return spawnFigures{
		toReady: millis(lastReady.Sub(firstSpawn)),
		setup:   millis(firstSpawn.Sub(started)),
		rssKiB:  float64(at.rssKiB - before.rssKiB),
		heapKiB: float64(at.heapKiB - before.heapKiB),
		stop:    millis(stopped),
		killed:  killed,
	}
}

// waitForEvents polls an events.jsonl until it holds want events of kind,
// reporting true, or until stop is closed, reporting false.
func waitForEvents(path, kind string, want int, stop <-chan struct{}) bool {
	needle := []byte(`"kind":` + strconv.Quote(kind))
	var (
		f     *os.File
		carry []byte // a partial last line
		seen  int
		buf   = make([]byte, 256<<10)
	)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if f == nil {
			f, _ = os.Open(path) // not there yet: try again
		}
		for f != nil {
			k, err := f.Read(buf)
			if k == 0 || err != nil {
				break
			}
			data := append(carry, buf[:k]...)
			end := bytes.LastIndexByte(data, '\n') + 1
			seen += bytes.Count(data[:end], needle)
			carry = append([]byte(nil), data[end:]...)
		}
		if seen >= want {
			return true
		}
		select {
		case <-stop:
			return false
		case <-tick.C:
		}
	}
}

// BenchmarkLockstepTick compares the median tick of one world with 100
// agents speaking NATS themselves (runtime=nats: builtin tit_for_tat, the
// Go SDK) and the same strategy behind the stdio bridge: this test binary
// as a Go stdio agent (runtime=stdio; the bridge's cost is the ratio of the
// two) and the Python example (runtime=stdio-python: the bridge plus an
// interpreter). Each runs in two worlds of 20 rounds:
//
//   - world=round_robin: repeated_game, a round robin of 100 strategies,
//     4950 matches (99 per agent) every tick. The world's and the host's
//     share of a tick (observations of 99 matches, 100 actions of 99 moves
//     to check, a tick.closed event recording all 9900 moves) is large.
//   - world=echo: benchEchoWorld, one match per agent and no history, so
//     a tick is little more than 100 round trips through the bus (and the
//     bridges).
//
// Metrics: median-tick-µs and p95-tick-µs, from result.json's tick_time.
func BenchmarkLockstepTick(b *testing.B) {
	const n, rounds = 100, 20
	for _, rt := range []string{"nats", "stdio", "stdio-python"} {
		b.Run("runtime="+rt, func(b *testing.B) {
			dir := openTempDir(b)
			env := map[string]string{}
			for k, v := range raceEnv {
				env[k] = v
			}
			var agent string
			switch rt {
			case "nats":
				agent = "  runtime = \"builtin\"\n  command = \"tit_for_tat\"\n"
			case "stdio":
				// A copy in the open directory: agents running as their own
				// users cannot reach the go build cache.
				exe, err := builtin.InstallExecutable("", filepath.Join(dir, "stdio-agent"))
				if err != nil {
					b.Fatal(err)
				}
				agent = fmt.Sprintf("  runtime = \"stdio\"\n  command = %q\n", exe)
				env[benchStdioEnv] = "tit_for_tat"
				// As the host gives builtin agents: the same Go program, the
				// same scheduler, so only the transport differs.
				env["GOMAXPROCS"] = "1"
			case "stdio-python":
				if _, err := exec.LookPath("python3"); err != nil {
					testenv.Missing(b, "python3 is not installed (run .ci/deps/python.sh)")
				}
				script := filepath.Join(dir, "tit_for_tat.py")
				src, err := os.ReadFile(filepath.Join("agents", "examples", "python", "tit_for_tat.py"))
				if err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(script, src, 0o755); err != nil {
					b.Fatal(err)
				}
				agent = fmt.Sprintf("  runtime = \"stdio\"\n  command = %q\n", script)
			}
			for _, w := range []struct{ name, block string }{
				{"round_robin", fmt.Sprintf("world \"repeated_game\" { rounds = %d }\n", rounds)},
				{"echo", fmt.Sprintf("world %q { rounds = %d }\n", benchEchoKind, rounds)},
			} {
				b.Run("world="+w.name, func(b *testing.B) {
					var s strings.Builder
					fmt.Fprintf(&s, `
scenario "tick_bench" {
  ticks           = %d
  action_deadline = "30s"
  ready_timeout   = "300s"
}
`, rounds)
					s.WriteString(w.block)
					for i := 0; i < n; i++ {
						fmt.Fprintf(&s, "agent \"p%03d\" {\n%s}\n", i, agent)
					}
					sc := writeScenario(b, s.String())
					var med, p95 []float64
					for i := 0; i < b.N; i++ {
						tt, isolation := runTicksOnce(b, sc, env, rounds)
						med = append(med, float64(tt.MedianUS))
						p95 = append(p95, float64(tt.P95US))
						b.Logf("%d agents, runtime %s, world %s, isolation %s: median tick %d µs, p95 %d µs, max %d µs",
							n, rt, w.name, isolation, tt.MedianUS, tt.P95US, tt.MaxUS)
					}
					b.ReportMetric(median(med), "median-tick-µs")
					b.ReportMetric(median(p95), "p95-tick-µs")
				})
			}
		})
	}
}

// benchEchoKind is the world kind of benchEchoWorld.
const benchEchoKind = "bench_echo"

func init() {
	world.Register(world.Kind{
		Name:      benchEchoKind,
		Doc:       "benchmarks only: every agent plays one match with no history; actions are only checked to be JSON",
		NewConfig: func() any { return &benchEchoConfig{Rounds: 20} },
		New: func(config any, seats []world.Seat) (world.World, error) {
			c := config.(*benchEchoConfig)
			if c.Rounds < 1 {
				return nil, fmt.Errorf("rounds = %d: want at least 1", c.Rounds)
			}
			return &benchEchoWorld{rounds: world.Tick(c.Rounds)}, nil
		},
	})
}

type benchEchoConfig struct {
	Rounds int `hcl:"rounds,optional"`
}

// benchEchoWorld speaks repeated_game's observation and action shapes, so
// the same agents play it, at the smallest cost a tick can have: one match
// per agent, no history kept, nothing scored. It measures hosting, not a
// game.
type benchEchoWorld struct {
	rounds, played world.Tick
}

func (w *benchEchoWorld) Observe(_ world.AgentID, t world.Tick) (json.RawMessage, bool, error) {
	return fmt.Appendf(nil, `{"round":%d,"rounds":%d,"matches":[{"match":"m01","you":"","them":""}]}`, t, w.rounds), true, nil
}

func (w *benchEchoWorld) Validate(a world.Action) error {
	if !json.Valid(a.Data) {
		return fmt.Errorf("action is not JSON")
	}
	return nil
}

func (w *benchEchoWorld) DefaultAction(world.AgentID, world.Tick) json.RawMessage {
	return json.RawMessage(`{"moves":{"m01":"C"}}`)
}

func (w *benchEchoWorld) Step(t world.Tick, _ []world.Action, _ *rand.Rand) (world.StepResult, error) {
	w.played = t
	return world.StepResult{}, nil
}

func (w *benchEchoWorld) Done() bool        { return w.played >= w.rounds }
func (w *benchEchoWorld) Metrics() []string { return nil }
func (w *benchEchoWorld) Result() any       { return map[string]any{"rounds_played": w.played} }
func (w *benchEchoWorld) Snapshot() ([]byte, error) {
	return json.Marshal(w.played)
}
func (w *benchEchoWorld) Restore(b []byte) error { return json.Unmarshal(b, &w.played) }
func (w *benchEchoWorld) StateHash() string      { return strconv.FormatUint(uint64(w.played), 10) }

// runTicksOnce runs sc and returns tick_time as result.json has it, after
// checking that every agent played every tick.
func runTicksOnce(b *testing.B, sc *scenarios.Scenario, env map[string]string, rounds int) (terrarium.TickTime, string) {
	b.Helper()
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: benchLogger(b), Dir: filepath.Join(openTempDir(b), "run"), Env: env})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := h.Run(ctx)
	if err != nil {
		b.Fatalf("run: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(res.Dir, "result.json"))
	if err != nil {
		b.Fatal(err)
	}
	var disk struct {
		Ticks    int                `json:"ticks"`
		TickTime terrarium.TickTime `json:"tick_time"`
	}
	if err := json.Unmarshal(raw, &disk); err != nil {
		b.Fatalf("result.json: %v", err)
	}
	if disk.Ticks != rounds {
		b.Fatalf("%d ticks, want %d", disk.Ticks, rounds)
	}
	for _, a := range res.Agents {
		if a.Actions != rounds || a.Missing+a.Late+a.Rejected != 0 {
			b.Fatalf("agent %s: %+v, want %d clean actions", a.ID, a.AgentStats, rounds)
		}
	}
	return disk.TickTime, res.Isolation
}

// benchLogger logs errors through b.Log: debug lines for hundreds of agents
// would cost time and memory the benchmarks measure, and at 500 agents the
// embedded bus warns about every slow read loop.
func benchLogger(b *testing.B) hclog.Logger {
	l := testlog.New(b)
	l.SetLevel(hclog.Error)
	return l
}

// memSample is the host process's memory at one moment, in KiB.
type memSample struct {
	rssKiB  int64 // VmRSS
	heapKiB int64 // HeapInuse + StackInuse
}

func sampleMem(b *testing.B) memSample {
	var st runtime.MemStats
	runtime.ReadMemStats(&st)
	return memSample{rssKiB: vmRSS(b), heapKiB: int64(st.HeapInuse+st.StackInuse) >> 10}
}

// vmRSS reads this process's resident set size from /proc/self/status.
func vmRSS(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Errorf("read memory: %v", err)
		return 0
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Errorf("VmRSS %q: %v", rest, err)
			}
			return kib
		}
	}
	b.Error("no VmRSS in /proc/self/status")
	return 0
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
