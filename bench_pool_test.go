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

// Pooled agents' ticks per second at 10,000 agents, lockstep, full event
// recording (tick.closed with 10,000 actions per tick). Two pool
// processes of 5,000 members, one per core. Worlds: echo (the builtin
// ack-pool: every member answers {"ok":true} at once) and grid (Schelling
// on a 200 x 100 torus, half full, two groups; the builtin stay-pool:
// every member answers {"move":false} at once). Run with
//
//	go test -run '^$' -bench PoolTicks -benchtime 1x .
func BenchmarkPoolTicks(b *testing.B) {
	for _, c := range []struct {
		world   string
		n, size int
	}{{"echo", 1000, 500}, {"echo", 10000, 5000}, {"grid", 10000, 5000}} {
		b.Run(fmt.Sprintf("world=%s/agents=%d/pool_size=%d", c.world, c.n, c.size), func(b *testing.B) {
			const ticks = 100
			for i := 0; i < b.N; i++ {
				var src string
				switch c.world {
				case "echo":
					src = fmt.Sprintf(`
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
`, ticks, c.n, c.size)
				case "grid":
					src = fmt.Sprintf(`
scenario "crowd" {
  ticks           = %d
  action_deadline = "1m"
  ready_timeout   = "2m"
}
world "grid" {
  rules   = "schelling"
  width   = 200
  height  = %d
  horizon = %d
}
agent "red" {
  runtime   = "pool"
  command   = "stay-pool"
  count     = %d
  pool_size = %d
}
agent "blue" {
  runtime   = "pool"
  command   = "stay-pool"
  count     = %d
  pool_size = %d
}
`, ticks, c.n/100, ticks, c.n/2, c.size, c.n/2, c.size)
				}
				benchPoolRun(b, writeScenario(b, src), c.n, ticks)
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
