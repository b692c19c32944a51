package terrarium_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/internal/testenv"
	"github.com/terrarium-sim/terrarium/workspace"
	"github.com/terrarium-sim/terrarium/world"
)

// Lease benchmarks (docs/workspace.md, "Speed"). They run only with -bench:
//
//	go test -run '^$' -bench Lease -benchtime 1x .
//	BENCH_LEASE_AGENTS=100 go test -run '^$' -bench LeaseContention -benchtime 1x .
//
// Each runs a whole scenario; the figures are measured inside the agent
// processes (round trips, write-to-restore) or taken from the event log
// (grants per second), and reported as custom metrics.

const benchLeaseOpsEnv = "BENCH_LEASE_OPS"

func benchOps() int {
	if n, err := strconv.Atoi(os.Getenv(benchLeaseOpsEnv)); err == nil && n > 0 {
		return n
	}
	return 200
}

// writeDurations puts an agent's measured durations (µs) in its directory.
func writeDurations(a *sdk.Agent, ds []time.Duration) error {
	us := make([]int64, len(ds))
	for i, d := range ds {
		us[i] = d.Microseconds()
	}
	b, _ := json.Marshal(us)
	return os.WriteFile(filepath.Join(a.Workspace(), "durations.json"), b, 0o600)
}

func init() {
	// Acquire + release of one file, one after another.
	builtin.Register("bench_lease_roundtrip", scripted(map[world.Tick]stepFunc{
		1: func(ctx context.Context, a *sdk.Agent, r *report) error {
			n := benchOps()
			ds := make([]time.Duration, 0, n)
			for i := 0; i < n; i++ {
				t0 := time.Now()
				l, err := a.Acquire(ctx, "bench.md", sdk.AcquireOptions{})
				if err != nil {
					return err
				}
				if _, err := a.Release(ctx, l.Token); err != nil {
					return err
				}
				ds = append(ds, time.Since(t0))
			}
			return writeDurations(a, ds)
		},
	}, nil))
	// Many agents, ten files: acquire (waiting) a random one, release it.
	builtin.Register("bench_lease_contend", scripted(map[world.Tick]stepFunc{
		1: func(ctx context.Context, a *sdk.Agent, r *report) error {
			rng := rand.New(rand.NewPCG(a.Seed(), 1))
			for i := 0; i < benchOps()/10; i++ {
				f := fmt.Sprintf("f%d.md", rng.IntN(10))
				l, err := a.Acquire(ctx, f, sdk.AcquireOptions{Wait: time.Minute})
				if err != nil {
					return err
				}
				if _, err := a.Release(ctx, l.Token); err != nil {
					return err
				}
			}
			return nil
		},
	}, nil))
	// Writes without a lease and waits for the host to put it back.
	builtin.Register("bench_lease_rogue", scripted(map[world.Tick]stepFunc{
		1: func(ctx context.Context, a *sdk.Agent, r *report) error {
			p := shared(a, "bench.md")
			orig, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n := benchOps() / 4
			ds := make([]time.Duration, 0, n)
			for i := 0; i < n; i++ {
				t0 := time.Now()
				if err := os.WriteFile(p, []byte(fmt.Sprintf("rogue %d\n", i)), 0o644); err != nil {
					return err
				}
				for {
					if b, err := os.ReadFile(p); err == nil && string(b) == string(orig) {
						break
					}
					if time.Since(t0) > 30*time.Second {
						return fmt.Errorf("write %d not restored after 30s", i)
					}
					time.Sleep(200 * time.Microsecond)
				}
				ds = append(ds, time.Since(t0))
			}
			return writeDurations(a, ds)
		},
	}, nil))
}

// benchLeaseRun runs one benchmark scenario and returns its result and events.
func benchLeaseRun(b *testing.B, mode, agents string) (*terrarium.Result, []events.Record) {
	b.Helper()
	users := terrarium.AgentUsersOff
	if mode == workspace.Permissions {
		if os.Geteuid() != 0 {
			testenv.Missing(b, "permissions mode needs root")
		}
		users = terrarium.AgentUsersOn
	}
	dir := b.TempDir()
	seed := filepath.Join(dir, "seed")
	if err := os.MkdirAll(seed, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := os.WriteFile(filepath.Join(seed, fmt.Sprintf("f%d.md", i)), []byte("file\n"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(seed, "bench.md"), []byte("original\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	src := fmt.Sprintf(`
scenario "bench-lease" {
  action_deadline = "10m"
  ready_timeout   = "5m"
}
world "turns" {
  rounds     = 100
  until_done = true
}
workspace {
  enforcement = %q
  seed        = "seed"
}
%s`, mode, agents)
	path := filepath.Join(dir, "scenario.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	sc := loadScenario(b, path)
	env := map[string]string{benchLeaseOpsEnv: strconv.Itoa(benchOps())}
	for k, v := range raceEnv {
		env[k] = v
	}
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: benchLogger(b), Dir: filepath.Join(openTempDir(b), "run"), Env: env, AgentUsers: users})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := h.Run(ctx)
	if err != nil {
		b.Fatal(err)
	}
	recs, err := events.ReadFile(filepath.Join(res.Dir, "events.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	return res, recs
}

func readDurations(b *testing.B, res *terrarium.Result, agent string) []int64 {
	b.Helper()
	raw, err := os.ReadFile(filepath.Join(res.Dir, "workspace", "agents", agent, "durations.json"))
	if err != nil {
		rep, _ := os.ReadFile(filepath.Join(res.Dir, "workspace", "agents", agent, "report.json"))
		b.Fatalf("%s measured nothing: %v; its report: %s", agent, err, rep)
	}
	var us []int64
	if err := json.Unmarshal(raw, &us); err != nil {
		b.Fatal(err)
	}
	slices.Sort(us)
	return us
}

func usQuantile(us []int64, q float64) float64 { return float64(us[int(q*float64(len(us)-1))]) }

// BenchmarkLeaseRoundTrip: acquire + release of one file from an agent
// process, over the bus (p50, p99 in µs).
func BenchmarkLeaseRoundTrip(b *testing.B) {
	for _, mode := range leaseModes {
		b.Run(mode, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				res, _ := benchLeaseRun(b, mode, `
agent "a" {
  runtime = "builtin"
  command = "bench_lease_roundtrip"
}`)
				us := readDurations(b, res, "a")
				b.ReportMetric(usQuantile(us, 0.5), "p50-µs")
				b.ReportMetric(usQuantile(us, 0.99), "p99-µs")
			}
		})
	}
}

// BenchmarkLeaseContention: BENCH_LEASE_AGENTS agents (default 20; the
// issue's figure is for 100) contend for 10 files: grants per second over
// the run, from the event log.
func BenchmarkLeaseContention(b *testing.B) {
	n := 20
	if v, err := strconv.Atoi(os.Getenv("BENCH_LEASE_AGENTS")); err == nil && v > 0 {
		n = v
	}
	for _, mode := range leaseModes {
		b.Run(fmt.Sprintf("%s/agents=%d", mode, n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				_, recs := benchLeaseRun(b, mode, fmt.Sprintf(`
agent "c" {
  runtime = "builtin"
  command = "bench_lease_contend"
  count   = %d
}`, n))
				var first, last time.Time
				grants := 0
				for _, r := range recs {
					if r.Kind == workspace.EventLeaseGranted {
						if grants == 0 {
							first = r.Time
						}
						last = r.Time
						grants++
					}
				}
				if grants < 2 {
					b.Fatalf("%d grants", grants)
				}
				b.ReportMetric(float64(grants-1)/last.Sub(first).Seconds(), "grants/s")
				b.ReportMetric(float64(grants), "grants")
			}
		})
	}
}

// BenchmarkLeaseRestore: detect mode, time from an unleased write to the
// host's restore as the writer sees it (p50, p99 in µs; the debounce is
// 30ms of it).
func BenchmarkLeaseRestore(b *testing.B) {
	for i := 0; i < b.N; i++ {
		res, _ := benchLeaseRun(b, workspace.Detect, `
agent "r" {
  runtime = "builtin"
  command = "bench_lease_rogue"
}`)
		us := readDurations(b, res, "r")
		b.ReportMetric(usQuantile(us, 0.5), "p50-µs")
		b.ReportMetric(usQuantile(us, 0.99), "p99-µs")
	}
}
