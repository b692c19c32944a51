package terrarium_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	builtin.Register("test_silent_from_3", func(ctx context.Context, a *sdk.Agent) error {
		return serve(ctx, a, func(obs sdk.Observation) error {
			if obs.Tick >= 3 {
				return nil // alive, and never answers again
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

// floodSize is how many actions test_flood sends at tick 1 (case 6).
const floodSize = 100000

// floodSentFile is where test_flood keeps, in its workspace, how many
// actions it has sent, written before each send.
const floodSentFile = "sent"

// Flooders (case 6, flood_test.go).
func init() {
	// test_flood sends floodSize copies of its action at tick 1 (the
	// first is its action, the rest must hurt nobody) and one at every
	// other tick. At tick 2 the host may still be working through the
	// flood with this agent's queue full, so that its one action is
	// dropped: it sends it again every 20 ms until tick 3 comes (the
	// copies are refused as duplicates or late, and counted).
	builtin.Register("test_flood", func(ctx context.Context, a *sdk.Agent) error {
		sent := 0
		act := func(t world.Tick, n int) error {
			sent += n
			if err := os.WriteFile(filepath.Join(a.Workspace(), floodSentFile), []byte(strconv.Itoa(sent)), 0o644); err != nil {
				return err
			}
			for i := 0; i < n; i++ {
				if err := a.Act(t, json.RawMessage(`{"flood":true}`)); err != nil {
					return err
				}
			}
			return nil
		}
		var retry <-chan time.Time
		for {
			select {
			case obs, ok := <-a.Observations():
				if !ok {
					return nil
				}
				retry = nil
				n := 1
				if obs.Tick == 1 {
					n = floodSize
				}
				if err := act(obs.Tick, n); err != nil {
					return err
				}
				if obs.Tick == 2 {
					retry = time.After(20 * time.Millisecond)
				}
			case <-retry:
				if err := act(2, 1); err != nil {
					return err
				}
				retry = time.After(20 * time.Millisecond)
			case <-a.Done():
				return nil
			case <-ctx.Done():
				return nil
			}
		}
	})
}

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

// Hostile test doubles for the limits (limits_test.go). Each first checks
// that its own limit is in force, and does nothing hostile otherwise.
func init() {
	builtin.Register("test_fork_bomb", func(ctx context.Context, a *sdk.Agent) error {
		return serve(ctx, a, func(obs sdk.Observation) error {
			if obs.Tick == 2 {
				forkBomb()
			}
			return a.Act(obs.Tick, allMoves(obs, "C"))
		})
	})
	builtin.Register("test_cpu_spin", func(ctx context.Context, a *sdk.Agent) error {
		return serve(ctx, a, func(obs sdk.Observation) error {
			if obs.Tick == 2 {
				cpuSpin()
			}
			return a.Act(obs.Tick, allMoves(obs, "C"))
		})
	})
	builtin.Register("test_print_cgroup", func(ctx context.Context, a *sdk.Agent) error {
		b, _ := os.ReadFile("/proc/self/cgroup")
		fmt.Print(string(b))
		return serve(ctx, a, func(obs sdk.Observation) error { return a.Act(obs.Tick, allMoves(obs, "C")) })
	})
	builtin.Register("test_memory_hog", func(ctx context.Context, a *sdk.Agent) error {
		return serve(ctx, a, func(obs sdk.Observation) error {
			if obs.Tick == 2 {
				hogHoard = memoryHog() // kept: the GC must not give it back
			}
			return a.Act(obs.Tick, allMoves(obs, "C"))
		})
	})
}

var hogHoard [][]byte

// Bounds of the hostile doubles, should their limit not stop them.
const (
	bombForks = 3000
	hogBytes  = 2 << 30
)

// ownCgroupFile reads file of this process's cgroup of a v1 controller
// (or, with ctl "", of its v2 group), at the usual mount points.
func ownCgroupFile(ctl, file string) string {
	b, _ := os.ReadFile("/proc/self/cgroup")
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		var dirs []string
		switch {
		case ctl != "" && slices.Contains(strings.Split(f[1], ","), ctl):
			dirs = []string{filepath.Join("/sys/fs/cgroup", ctl, f[2])}
		case f[1] == "":
			dirs = []string{filepath.Join("/sys/fs/cgroup", f[2]), filepath.Join("/sys/fs/cgroup/unified", f[2])}
		}
		for _, d := range dirs {
			if v, err := os.ReadFile(filepath.Join(d, file)); err == nil {
				return strings.TrimSpace(string(v))
			}
		}
	}
	return ""
}

// forkBomb starts processes (sleep 300) until the kernel refuses, at most
// bombForks, if a pids limit is in force.
func forkBomb() {
	limit := ownCgroupFile("pids", "pids.max")
	if limit == "" || limit == "max" {
		limit = ownCgroupFile("", "pids.max")
	}
	if n, err := strconv.Atoi(limit); err != nil || n <= 0 || n >= bombForks {
		fmt.Printf("no pids limit in force (%q): not forking\n", limit)
		return
	}
	for i := 0; i < bombForks; i++ {
		if err := exec.Command("sleep", "300").Start(); err != nil {
			fmt.Printf("fork refused after %d forks: %v\n", i, err)
			return
		}
	}
	fmt.Printf("forked %d processes, none refused\n", bombForks)
}

// memoryHog allocates and touches memory in 16 MiB pieces, at most
// hogBytes, if a memory limit below that is in force.
func memoryHog() [][]byte {
	limit := ownCgroupFile("memory", "memory.limit_in_bytes")
	if limit == "" {
		limit = ownCgroupFile("", "memory.max")
	}
	if n, err := strconv.ParseInt(limit, 10, 64); err != nil || n <= 0 || n >= hogBytes {
		fmt.Printf("no memory limit in force (%q): not allocating\n", limit)
		return nil
	}
	var hoard [][]byte
	for total := 0; total < hogBytes; total += 16 << 20 {
		b := make([]byte, 16<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		hoard = append(hoard, b)
	}
	fmt.Printf("allocated %d bytes without being stopped\n", hogBytes)
	return hoard
}

// cpuSpin burns CPU until its cgroup says it was throttled (at most 30 s),
// if a CPU quota is in force.
func cpuSpin() {
	quota := ownCgroupFile("cpu", "cpu.cfs_quota_us")
	if q, err := strconv.Atoi(quota); err != nil || q <= 0 {
		fmt.Printf("no cpu quota in force (%q): not spinning\n", quota)
		return
	}
	start := time.Now()
	for time.Since(start) < 30*time.Second {
		for i := 0; i < 1e6; i++ {
			spinSink += i
		}
		stat := ownCgroupFile("cpu", "cpu.stat")
		for _, l := range strings.Split(stat, "\n") {
			if n, ok := strings.CutPrefix(l, "nr_throttled "); ok && n != "0" {
				fmt.Printf("throttled after %v\n", time.Since(start).Round(time.Millisecond))
				return
			}
		}
	}
	fmt.Println("spun 30s without being throttled")
}

var spinSink int
