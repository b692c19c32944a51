package terrarium_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/world"
)

// Test doubles, run by the builtin runtime inside this test binary. Each
// plays "all C" in the repeated game except for its one misbehaviour.

func init() {
	builtin.Register("test_silent_at_3", func(ctx context.Context, a *sdk.Agent) error {
		return serve(ctx, a, func(obs sdk.Observation) error {
			if obs.Tick == 3 {
				return nil // never answers tick 3
			}
			return a.Act(obs.Tick, allMoves(obs, "C"))
		})
	})
	builtin.Register("test_exit_at_7", func(ctx context.Context, a *sdk.Agent) error {
		return serve(ctx, a, func(obs sdk.Observation) error {
			if obs.Tick == 7 {
				os.Exit(3) // a crash in the middle of the run
			}
			return a.Act(obs.Tick, allMoves(obs, "C"))
		})
	})
	builtin.Register("test_stale", func(ctx context.Context, a *sdk.Agent) error {
		var prev json.RawMessage
		return serve(ctx, a, func(obs sdk.Observation) error {
			if obs.Tick > 1 {
				// the action of the tick before, sent again during this tick
				if err := a.Act(obs.Tick-1, prev); err != nil {
					return err
				}
			}
			prev = allMoves(obs, "C")
			return a.Act(obs.Tick, prev)
		})
	})
	builtin.Register("test_flood", func(ctx context.Context, a *sdk.Agent) error {
		return serve(ctx, a, func(obs sdk.Observation) error {
			moves := allMoves(obs, "C")
			n := 1
			if obs.Tick == 1 {
				n = floodSize // the first one is its action; the rest must not hurt anyone
			}
			for i := 0; i < n; i++ {
				if err := a.Act(obs.Tick, moves); err != nil {
					return err
				}
			}
			return nil
		})
	})
	builtin.Register("test_crash_once_at_3", func(ctx context.Context, a *sdk.Agent) error {
		marker := filepath.Join(a.Workspace(), "crashed-once")
		return serve(ctx, a, func(obs sdk.Observation) error {
			if obs.Tick == 3 {
				if _, err := os.Stat(marker); err != nil {
					_ = os.WriteFile(marker, nil, 0o644)
					os.Exit(4) // the first process dies at tick 3; its restart plays on
				}
			}
			return a.Act(obs.Tick, allMoves(obs, "C"))
		})
	})
	// test_paced answers after 10 ms: a run of 400 ticks lasts at least
	// 4 s, so an agent restarted early is back long before the end
	// however fast the loop is.
	builtin.Register("test_paced", func(ctx context.Context, a *sdk.Agent) error {
		return serve(ctx, a, func(obs sdk.Observation) error {
			select {
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
			return a.Act(obs.Tick, allMoves(obs, "C"))
		})
	})
	builtin.Register("test_print_env", func(ctx context.Context, a *sdk.Agent) error {
		for _, kv := range os.Environ() {
			fmt.Println("env", kv)
		}
		return serve(ctx, a, func(obs sdk.Observation) error { return a.Act(obs.Tick, allMoves(obs, "C")) })
	})
	builtin.Register("test_list_fds", func(ctx context.Context, a *sdk.Agent) error {
		ents, _ := os.ReadDir("/proc/self/fd")
		for _, e := range ents {
			if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil {
				fmt.Println("fd", e.Name(), target)
			}
		}
		return serve(ctx, a, func(obs sdk.Observation) error { return a.Act(obs.Tick, allMoves(obs, "C")) })
	})
	builtin.Register("test_double", func(ctx context.Context, a *sdk.Agent) error {
		return serve(ctx, a, func(obs sdk.Observation) error {
			if err := a.Act(obs.Tick, allMoves(obs, "C")); err != nil {
				return err
			}
			return a.Act(obs.Tick, allMoves(obs, "D")) // a second action: must be rejected
		})
	})
}

const floodSize = 20000

// serve calls f for every observation until the run ends.
func serve(ctx context.Context, a *sdk.Agent, f func(sdk.Observation) error) error {
	for {
		select {
		case obs, ok := <-a.Observations():
			if !ok {
				return nil
			}
			if err := f(obs); err != nil {
				return err
			}
		case <-a.Done():
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// allMoves answers every match of a repeated-game observation with move.
func allMoves(obs sdk.Observation, move string) json.RawMessage {
	var o struct {
		Matches []struct {
			Match string `json:"match"`
		} `json:"matches"`
	}
	if err := json.Unmarshal(obs.Data, &o); err != nil {
		panic(fmt.Sprintf("observation: %v", err))
	}
	moves := map[string]string{}
	for _, m := range o.Matches {
		moves[m.Match] = move
	}
	b, _ := json.Marshal(map[string]any{"moves": moves})
	return b
}

var _ world.Tick
