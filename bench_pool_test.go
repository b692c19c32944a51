package terrarium_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/scenarios"
)

// Pooled agents' ticks per second at 10,000 agents: the echo world, the
// builtin ack-pool (every member answers at once), lockstep, full event
// recording (tick.closed with 10,000 actions per tick). Two pool
// processes of 5,000 members, one per core. Run with
//
//	go test -run '^$' -bench PoolTicks -benchtime 1x .
func BenchmarkPoolTicks(b *testing.B) {
	for _, c := range []struct{ n, size int }{{1000, 500}, {10000, 5000}} {
		b.Run(fmt.Sprintf("agents=%d/pool_size=%d", c.n, c.size), func(b *testing.B) {
			const ticks = 60
			for i := 0; i < b.N; i++ {
				sc := writeScenario(b, fmt.Sprintf(`
scenario "crowd" {
  ticks           = %d
  action_deadline = "1m"
  ready_timeout   = "2m"
}
world "echo" {}
agent "npc" {
  runtime   = "pool"
  command   = "ack-pool"
  count     = %d
  pool_size = %d
}
`, ticks, c.n, c.size))
				benchPoolRun(b, sc, c.n, ticks)
			}
		})
	}
}

func benchPoolRun(b *testing.B, sc *scenarios.Scenario, n, ticks int) {
	b.Helper()
	var first, last time.Time
	var cpuFirst, cpuLast time.Duration
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: hclog.NewNullLogger(),
		Dir: filepath.Join(openTempDir(b), "run"), AgentUsers: terrarium.AgentUsersOff, Env: benchPoolEnv(),
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
	cpuPerTick := (cpuLast - cpuFirst) / time.Duration(ticks-1)
	b.ReportMetric(perSec, "ticks/s")
	b.ReportMetric(float64(cpuPerTick.Microseconds())/1000, "host-cpu-ms/tick")
	b.ReportMetric(float64(res.TickTime.MedianUS), "median-tick-µs")
	b.Logf("%d pooled agents through the host: %.0f ticks/s wall, host %s CPU per tick (median tick %d µs, p95 %d µs)",
		n, perSec, cpuPerTick, res.TickTime.MedianUS, res.TickTime.P95US)
}

// benchPoolEnv passes BENCH_POOL_PROFILE (a directory) on to the pools as
// builtin.EnvCPUProfile, for their CPU profiles.
func benchPoolEnv() map[string]string {
	env := map[string]string{"GORACE": raceEnv["GORACE"]}
	if d := os.Getenv("BENCH_POOL_PROFILE"); d != "" {
		env[builtin.EnvCPUProfile] = d
	}
	return env
}
