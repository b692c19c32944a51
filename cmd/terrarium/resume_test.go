package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/agents/agenttest"
	"github.com/terrarium-sim/terrarium/checkpoint"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/world"
)

// In the test binary, TERRARIUM_TEST_STALL_CHECKPOINT=N makes the host
// stop forever at a stage of writing its checkpoint of tick N, after
// creating the file named by TERRARIUM_TEST_STALL_MARKER: the test then
// kills it with SIGKILL. TERRARIUM_TEST_STALL_STAGE names the stage:
// "written" (the default: every file written, not yet renamed into place)
// or "renamed" (in place and synced, before checkpoint.written).
func init() {
	n, err := strconv.ParseUint(os.Getenv("TERRARIUM_TEST_STALL_CHECKPOINT"), 10, 64)
	if err != nil {
		return
	}
	want := os.Getenv("TERRARIUM_TEST_STALL_STAGE")
	if want == "" {
		want = checkpoint.StageWritten
	}
	checkpointHook = func(stage string, t world.Tick) {
		if stage == want && uint64(t) == n {
			_ = os.WriteFile(os.Getenv("TERRARIUM_TEST_STALL_MARKER"), nil, 0o644)
			select {}
		}
	}
}

// killTicks is the 2,000; the kill points are at fixed ticks (two
// of them at stages of a checkpoint write, through the hook above), so
// nothing depends on timing.
const (
	killTicks = 2000
	killEvery = 500
)

var killScenario = fmt.Sprintf(`
scenario "kill9" {
  seed             = 11
  ticks            = %d
  checkpoint_every = %d
}
world "repeated_game" { rounds = %d }
agent "random" {
  runtime = "builtin"
  command = "random"
}
agent "tit_for_tat" {
  runtime = "builtin"
  command = "tit_for_tat"
}
agent "pavlov" {
  runtime = "builtin"
  command = "pavlov"
}
`, killTicks, killEvery, killTicks)

// openDir is a temporary directory agents running as their own users can enter.
func openDir(t *testing.T) string {
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type finalResult struct {
	Status    string          `json:"status"`
	Ticks     int             `json:"ticks"`
	StateHash string          `json:"state_hash"`
	World     json.RawMessage `json:"world"`
}

func readFinal(t *testing.T, dir string) finalResult {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r finalResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func runOK(t *testing.T, args ...string) {
	t.Helper()
	cmd, stdout, stderr := cli(t, args...)
	if code := exitCode(t, cmd.Run()); code != 0 {
		t.Fatalf("terrarium %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
	}
}

// waitFor polls cond until it holds or a minute passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// closedTick reports whether events.jsonl has closed tick n.
func closedTick(dir string, n int) bool {
	b, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	return err == nil && strings.Contains(string(b), fmt.Sprintf(`"kind":"tick.closed","tick":%d,`, n))
}

// Case 2 of the issue: kill -9 of the host just after a checkpoint,
// between checkpoints, and while a checkpoint is being written; then
// resume. The final result and hash equal an uninterrupted run's, every
// tick is in events.jsonl exactly once, and no agent of the killed host
// survives.
func TestKillNineThenResume(t *testing.T) {
	base := openDir(t)
	scenario := filepath.Join(base, "kill9.hcl")
	if err := os.WriteFile(scenario, []byte(killScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(base, "reference")
	runOK(t, "run", "--quiet", "--out", ref, scenario)
	want := readFinal(t, ref)
	if want.Status != "finished" || want.Ticks != killTicks {
		t.Fatalf("reference run: %+v", want)
	}

	// Just after the checkpoint at tick 1000 (in place, before the
	// checkpoint.written event), between that one and the next (tick 1250
	// closed: the kill lands a little later), and while the next one is
	// being written.
	cases := []struct {
		name   string
		env    []string
		killAt func(dir string) bool
		from   world.Tick // the checkpoint resume must go on from
	}{
		{"just after a checkpoint", []string{"TERRARIUM_TEST_STALL_CHECKPOINT=1000", "TERRARIUM_TEST_STALL_STAGE=" + checkpoint.StageRenamed}, nil, 1000},
		{"between checkpoints", nil, func(dir string) bool { return closedTick(dir, 1250) }, 1000},
		{"during a checkpoint write", []string{"TERRARIUM_TEST_STALL_CHECKPOINT=1500"}, nil, 1000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(openDir(t), "run")
			marker := filepath.Join(t.TempDir(), "stalled")
			cmd, _, stderr := cli(t, "run", "--quiet", "--out", dir, scenario)
			cmd.Env = append(cmd.Env, c.env...)
			cmd.Env = append(cmd.Env, "TERRARIUM_TEST_STALL_MARKER="+marker)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			killAt := c.killAt
			if killAt == nil {
				killAt = func(string) bool { _, err := os.Stat(marker); return err == nil }
			}
			waitUntil(t, "the kill point", func() bool {
				return killAt(dir) || cmd.ProcessState != nil
			})
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			if closedTick(dir, killTicks) {
				t.Fatalf("the run ended before it was killed; stderr:\n%s", stderr)
			}
			// No agent of the killed host survives (the watchdog kills them).
			recs, err := events.ReadFile(filepath.Join(dir, "events.jsonl"))
			if err != nil && len(recs) == 0 {
				t.Fatal(err)
			}
			var pids []int
			for _, r := range recs {
				if r.Kind == events.AgentSpawned {
					var d struct{ Pid int }
					_ = json.Unmarshal(r.Data, &d)
					pids = append(pids, d.Pid)
				}
			}
			if len(pids) != 3 {
				t.Fatalf("%d agents spawned before the kill, want 3", len(pids))
			}
			waitUntil(t, "the killed host's agents to be gone", func() bool {
				for _, p := range pids {
					if agenttest.Alive(p) {
						return false
					}
				}
				return true
			})

			// Resume goes on from the last complete checkpoint: at least
			// c.from (the kill came after it; under load the run may have
			// written another before the kill landed), exactly c.from when
			// the next one was being written.
			cps, _ := checkpoint.List(filepath.Join(dir, "checkpoints"))
			if len(cps) == 0 {
				t.Fatal("no checkpoint before the kill")
			}
			latest := cps[len(cps)-1].Meta.Tick
			if latest < c.from || (c.killAt == nil && latest != c.from) {
				t.Fatalf("the last complete checkpoint before the kill is at tick %d, want %d", latest, c.from)
			}
			cmd, stdout, stderr := cli(t, "resume", "--quiet", dir)
			if code := exitCode(t, cmd.Run()); code != 0 {
				t.Fatalf("resume: exit %d\n%s\n%s", code, stdout, stderr)
			}
			if !strings.Contains(stderr.String(), fmt.Sprintf("after tick %d", latest)) {
				t.Errorf("resume did not go on after tick %d:\n%s", latest, stderr)
			}
			got := readFinal(t, dir)
			if got.Status != "finished" || got.StateHash != want.StateHash || got.Ticks != want.Ticks || string(got.World) != string(want.World) {
				t.Errorf("resumed: %s after %d ticks, state %.16s; uninterrupted: %d ticks, state %.16s", got.Status, got.Ticks, got.StateHash, want.Ticks, want.StateHash)
			}
			recs, err = events.ReadFile(filepath.Join(dir, "events.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			seen := map[world.Tick]int{}
			for _, r := range recs {
				if r.Kind == world.EventTickClosed {
					seen[r.Tick]++
				}
			}
			for i := 1; i <= killTicks; i++ {
				if seen[world.Tick(i)] != 1 {
					t.Fatalf("tick %d closed %d times in events.jsonl", i, seen[world.Tick(i)])
				}
			}
			// Killed between ticks past the checkpoint, the events after it
			// are kept aside (killed right after its rename, there may be none).
			if _, err := os.Stat(filepath.Join(dir, "events.superseded-1.jsonl")); err != nil && c.name != "just after a checkpoint" {
				t.Errorf("no superseded events kept: %v", err)
			}
			runOK(t, "verify", dir)
			runOK(t, "replay", dir)
			if ents, _ := os.ReadDir(filepath.Join(dir, "checkpoints")); len(ents) == 0 || strings.HasPrefix(ents[0].Name(), ".tmp-") {
				t.Errorf("checkpoints after the resumed run: %v (the crashed write's leftover should be gone)", ents)
			}
		})
	}
}
