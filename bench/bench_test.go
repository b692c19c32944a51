package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium/agents/agenttest"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/bench"
	"github.com/terrarium-sim/terrarium/internal/leaktest"
	"github.com/terrarium-sim/terrarium/internal/testlog"
)

func TestMain(m *testing.M) {
	builtin.Main() // this test binary is also the agents' binary
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	os.Exit(m.Run())
}

// The short mode (what CI runs) runs both sides for real and reports every
// case: if the harness, the baseline agent or the echo world rots, this
// fails.
func TestShortModeMeasuresEveryCase(t *testing.T) {
	leaktest.Goroutines(t)
	agenttest.NoProcessLeaks(t)
	log := testlog.New(t)
	log.SetLevel(hclog.Warn)
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // agents may run as other users
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Options{
		Logger: log, Dir: dir, Short: true, Progress: &progress,
		Env: map[string]string{"GORACE": "atexit_sleep_ms=0"},
	})
	if err != nil {
		t.Fatalf("bench.Run: %v\n%s", err, progress.String())
	}
	t.Logf("progress:\n%s", progress.String())
	if rep.Runs != 2 || !rep.Short {
		t.Errorf("runs %d, short %v: want 2 runs a side in short mode", rep.Runs, rep.Short)
	}
	want := map[string]bool{}
	for _, n := range []string{"1", "10"} {
		for _, c := range []string{"lockstep ticks/s", "lockstep tick p50", "lockstep tick p99", "host CPU per round trip", "agent CPU per round trip"} {
			want[c+" N="+n] = true
		}
	}
	for _, c := range []string{"spawn to ready", "host RSS per agent", "host fds per agent"} {
		want[c+" N=10"] = true
	}
	for _, c := range []string{"pool ticks/s", "pool tick p50", "pool tick p99"} {
		want[c+" (100 per process) N=200"] = true
	}
	want["lease acquire/release round trip p50 N=1"] = true
	want["lease acquire/release round trip p99 N=1"] = true
	want["events/s to an observer N=10"] = true
	notMeasured := 0
	for _, c := range rep.Cases {
		if c.NotMeasured != "" {
			notMeasured++
			continue
		}
		key := c.Name + " N=" + itoa(c.Agents)
		if !want[key] {
			t.Errorf("unexpected case %s", key)
			continue
		}
		delete(want, key)
		for _, s := range []struct {
			side string
			st   bench.Stats
		}{{"terrarium", c.Terrarium}, {"baseline", c.Baseline}} {
			if len(s.st.Runs) != 2 {
				t.Errorf("%s, %s: %d runs, want 2", key, s.side, len(s.st.Runs))
			}
			if s.st.Min > s.st.Median || s.st.Median > s.st.Max {
				t.Errorf("%s, %s: min %v, median %v, max %v out of order", key, s.side, s.st.Min, s.st.Median, s.st.Max)
			}
			if strings.HasPrefix(c.Name, "lockstep") || strings.HasPrefix(c.Name, "pool") || strings.HasPrefix(c.Name, "lease") || strings.HasPrefix(c.Name, "events") || c.Name == "spawn to ready" {
				if s.st.Min <= 0 {
					t.Errorf("%s, %s: %v, want > 0", key, s.side, s.st.Min)
				}
			}
		}
		if (strings.HasPrefix(c.Name, "lockstep") || strings.HasPrefix(c.Name, "pool") || strings.HasPrefix(c.Name, "lease") || strings.HasPrefix(c.Name, "events")) && c.Ratio <= 0 {
			t.Errorf("%s: ratio %v", key, c.Ratio)
		}
	}
	for k := range want {
		t.Errorf("case %s missing", k)
	}
	if notMeasured != 0 {
		t.Errorf("%d cases not measured, want every case measured", notMeasured)
	}
	if rep.Payload.Observation <= rep.Payload.Action || rep.Payload.Action < 50 {
		t.Errorf("payload sizes %+v: want an observation envelope larger than an action envelope", rep.Payload)
	}

	// Table, JSON and markdown all carry the figures.
	var table, md bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteMarkdown(&md, "terrarium bench --short --write x.md"); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{table.String(), md.String()} {
		for _, s := range []string{"lockstep ticks/s", "spawn to ready", "lease acquire/release round trip", "events/s to an observer"} {
			if !strings.Contains(out, s) {
				t.Errorf("output lacks %q:\n%s", s, out)
			}
		}
	}
	if !strings.Contains(md.String(), rep.Machine.Go) || !strings.Contains(md.String(), "do not edit by hand") {
		t.Errorf("markdown lacks the machine description or the generated note:\n%s", md.String())
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back bench.Report
	if err := json.Unmarshal(b, &back); err != nil || len(back.Cases) != len(rep.Cases) {
		t.Fatalf("JSON round trip: %v, %d cases of %d", err, len(back.Cases), len(rep.Cases))
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// BenchmarkTerrariumSide runs only Terrarium's side (BENCH_SIDE=baseline: only the baseline's) of the lockstep case at
// BENCH_N agents (default 100; BENCH_TICKS ticks), for profiling the host (and, with TERRARIUM_BUILTIN_CPUPROFILE=DIR, the agents):
//
//	BENCH_N=100 go test -run '^$' -bench TerrariumSide -benchtime 1x -cpuprofile cpu.out ./bench/
func BenchmarkTerrariumSide(b *testing.B) {
	n := 100
	if s := os.Getenv("BENCH_N"); s != "" {
		if _, err := fmt.Sscan(s, &n); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	log := testlog.New(b)
	log.SetLevel(hclog.Error)
	env := map[string]string{"GORACE": "atexit_sleep_ms=0"}
	if d := os.Getenv(builtin.EnvCPUProfile); d != "" {
		env[builtin.EnvCPUProfile] = d // the agents profile themselves too
	}
	only := "terrarium"
	if os.Getenv("BENCH_SIDE") == "baseline" {
		only = "baseline"
	}
	ticks := 0 // BENCH_TICKS: default per size
	if s := os.Getenv("BENCH_TICKS"); s != "" {
		if _, err := fmt.Sscan(s, &ticks); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		rep, err := bench.Run(context.Background(), bench.Options{Logger: log, Dir: dir, Sizes: []int{n}, Runs: 1, Ticks: ticks, Only: only, Env: env, LockstepOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		c := rep.Cases[0]
		b.ReportMetric(c.Terrarium.Median+c.Baseline.Median, "ticks/s")
	}
}
