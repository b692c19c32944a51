package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/agents/sdk"
)

// test_spawner leaves descendants behind the agent's back: a sleep in its
// own group and a setsid'd shell with a sleep of its own. The marker (from
// the scenario's args) names the sleeps.
func init() {
	builtin.Register("test_spawner", func(ctx context.Context, a *sdk.Agent) error {
		marker := os.Args[len(os.Args)-1]
		grand := exec.Command("/bin/sh", "-c", "setsid /bin/sh -c 'sleep "+marker+"1 & sleep "+marker+"2' & sleep "+marker+"3 & wait")
		if err := grand.Start(); err != nil {
			return err
		}
		fmt.Println("spawned", grand.Process.Pid)
		for {
			select {
			case obs := <-a.Observations():
				if err := a.Act(obs.Tick, map[string]any{"moves": movesC(obs)}); err != nil {
					return err
				}
			case <-a.Done():
				return nil
			case <-ctx.Done():
				return nil
			}
		}
	})
}

func movesC(obs sdk.Observation) map[string]string {
	var o struct {
		Matches []struct {
			Match string `json:"match"`
		} `json:"matches"`
	}
	_ = json.Unmarshal(obs.Data, &o)
	m := map[string]string{}
	for _, x := range o.Matches {
		m[x.Match] = "C"
	}
	return m
}

// SIGKILL of the host: the watchdog kills the agents and every descendant,
// including the ones that left the agent's process group and session.
func TestKilledHostLeavesNoAgents(t *testing.T) {
	// auto: as root, agents have users of their own and the watchdog kills
	// by UID; off: they share the host's user, and the watchdog kills their
	// tracked groups and (as root) their cgroups.
	for _, users := range []string{"auto", "off"} {
		t.Run("agent-users="+users, func(t *testing.T) { killedHostLeavesNoAgents(t, users) })
	}
}

func killedHostLeavesNoAgents(t *testing.T, users string) {
	dir := t.TempDir()
	marker := fmt.Sprintf("4%d.%d", os.Getpid()%1000, time.Now().UnixNano()%1000000)
	scenario := filepath.Join(dir, "long.hcl")
	if err := os.WriteFile(scenario, []byte(`
scenario "killme" { ticks = 1000000 }
world "repeated_game" { rounds = 1000000 }
agent "spawner" {
  runtime = "builtin"
  command = "test_spawner"
  args    = ["`+marker+`"]
}
agent "other" {
  runtime = "builtin"
  command = "cooperator"
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "run")
	cmd, _, stderr := cli(t, "run", "--quiet", "--agent-users", users, "--out", runDir, scenario)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(time.Minute)
	for len(sleepers(marker)) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the agent's descendants did not start (%d); stderr:\n%s", len(sleepers(marker)), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// terrarium ps on the live run, once a tick has closed (so both agents
	// are ready): running, both agents ready.
	for st, _ := terrarium.ReadRunState(runDir); st == nil || st.Ticks == 0; st, _ = terrarium.ReadRunState(runDir) {
		if time.Now().After(deadline) {
			t.Fatalf("no tick closed; stderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"ps", runDir}, &out, &errb); code != 0 {
		t.Fatalf("ps of the live run: code %d, %s", code, errb.String())
	}
	if !strings.Contains(out.String(), ": running, ") || !psRow(out.String(), "spawner", "ready") || !psRow(out.String(), "other", "ready") {
		t.Errorf("ps of the live run, want it running with both agents ready:\n%s", out.String())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline = time.Now().Add(30 * time.Second)
	for {
		left := sleepers(marker)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after kill -9 of the host, still running: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// ps tells a killed run from a running one.
	st, err := terrarium.ReadRunState(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.Status, "abandoned") {
		t.Errorf("ps status of a run whose host was killed: %q, want abandoned", st.Status)
	}
	for _, a := range st.Agents {
		if a.State != "abandoned" {
			t.Errorf("ps state of agent %s of a run whose host was killed: %q, want abandoned", a.ID, a.State)
		}
	}
	out.Reset()
	if code := Main([]string{"ps", runDir}, &out, &errb); code != 0 || !psRow(out.String(), "spawner", "abandoned") {
		t.Errorf("ps after kill -9 of the host: code %d\n%s%s", code, out.String(), errb.String())
	}
}

// psRow reports whether ps output has a row for agent in state.
func psRow(out, agent, state string) bool {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == agent && f[1] == state {
			return true
		}
	}
	return false
}

// sleepers lists live processes whose command line carries the marker.
func sleepers(marker string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), "sleep\x00"+marker) {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err == nil {
			if i := strings.LastIndexByte(string(st), ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
				continue
			}
		}
		out = append(out, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
	}
	return out
}
