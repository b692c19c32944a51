package terrarium_test

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/agents/sdk"
)

// NPC test doubles for the embedding tests, run by the builtin runtime
// inside this test binary. They play in gameWorld: an action is any JSON.

func init() {
	// Answers every observation at once, with the tick it answers.
	builtin.Register("test_npc_echo", func(ctx context.Context, a *sdk.Agent) error {
		return serve(ctx, a, func(obs sdk.Observation) error { return a.Act(obs.Tick, map[string]any{"n": obs.Tick}) })
	})
	// Answers tick t only when it sees tick t+30: it takes 30 ticks' worth
	// of (any) clock time to act.
	builtin.Register("test_npc_lag30", func(ctx context.Context, a *sdk.Agent) error {
		return serve(ctx, a, func(obs sdk.Observation) error {
			if obs.Tick <= 30 {
				return nil
			}
			return a.Act(obs.Tick-30, map[string]any{"n": obs.Tick - 30})
		})
	})
	// Starts acting on its first observation and never finishes: it marks
	// its workspace, then hangs, ignoring the stop message and SIGTERM.
	builtin.Register("test_npc_busy", func(ctx context.Context, a *sdk.Agent) error {
		return serve(ctx, a, func(obs sdk.Observation) error {
			_ = os.WriteFile(filepath.Join(a.Workspace(), "acting"), nil, 0o644)
			time.Sleep(time.Hour)
			return nil
		})
	})
}

func init() {
	// Answers every observation at once, stamped with the wall time it
	// sent the action (for the latency benchmark; one machine, one clock).
	builtin.Register("bench_npc_stamp", func(ctx context.Context, a *sdk.Agent) error {
		return serve(ctx, a, func(obs sdk.Observation) error {
			return a.Act(obs.Tick, map[string]any{"sent_ns": time.Now().UnixNano()})
		})
	})
}
