package terrarium_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/internal/testenv"
)

// nodeExample is the directory of the Node.js example agent.
const nodeExample = "agents/examples/node"

// nodeAgent returns the absolute path of the Node.js example agent's script,
// or skips the test when Node.js or the example's node_modules (npm ci, see
// .ci/deps/node.sh) are missing. With CI=true a missing piece fails the test
// instead: CI must run it.
func nodeAgent(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		testenv.Missing(t, "%s (run .ci/deps/node.sh)", fmt.Sprintf(format, args...))
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing("node is not installed: %v", err)
	}
	dir, err := filepath.Abs(nodeExample)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "tit_for_tat.mjs")
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("the example agent: %v", err)
	}
	client := filepath.Join(dir, "node_modules", "@nats-io", "transport-node", "package.json")
	if _, err := os.Stat(client); err != nil {
		missing("the example's dependencies are not installed: %v", err)
	}
	// As root the host runs agents as their own users: they must be able to
	// read the script and its modules. A checkout under a private directory
	// (such as /root) is not readable by them, so use a copy others can read.
	if os.Geteuid() == 0 && (othersCanRead(script) != nil || othersCanRead(client) != nil) {
		copied := filepath.Join(openTempDir(t), "node")
		if err := os.CopyFS(copied, os.DirFS(dir)); err != nil {
			t.Fatalf("copy the Node.js example: %v", err)
		}
		script = filepath.Join(copied, "tit_for_tat.mjs")
	}
	return script
}

// othersCanRead checks that a user other than the owner can read path: the
// file is readable by others and every directory above it searchable.
func othersCanRead(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o004 == 0 {
		return fmt.Errorf("%s is not readable by others (mode %v)", path, fi.Mode().Perm())
	}
	for d := filepath.Dir(path); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("directory %s is not searchable by others (mode %v): %w", d, fi.Mode().Perm(), fs.ErrPermission)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

func TestNATSRuntimeNodeAgent(t *testing.T) {
	script := nodeAgent(t)
	sc := writeScenario(t, fmt.Sprintf(`
scenario "nats_node" {
  ticks           = 20
  action_deadline = "5s"
}
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 20
}
agent "tft" {
  runtime = "nats"
  command = "node"
  args    = [%q]
}
agent "defector" {
  runtime = "builtin"
  command = "defector"
}
agent "cooperator" {
  runtime = "builtin"
  command = "cooperator"
}
`, script))
	res, recs, err := runScenario(t, sc)
	if err != nil {
		t.Fatalf("run: %v (the agent's output is in %s)", err, filepath.Join(res.Dir, "logs", "tft.log"))
	}
	t.Logf("isolation: %s", res.Isolation)
	checkTFTRun(t, res)
	// The host looked node up in PATH and started it.
	var spawned bool
	for _, r := range kinds(recs, events.AgentSpawned) {
		if r.Agent != "tft" {
			continue
		}
		spawned = true
		var d struct{ Runtime, Command string }
		if err := json.Unmarshal(r.Data, &d); err != nil || d.Runtime != "nats" || d.Command != "node" {
			t.Errorf("agent.spawned for tft: %s, want runtime nats, command node", r.Data)
		}
	}
	if !spawned {
		t.Error("no agent.spawned event for tft")
	}
	// Every message the agent sent was a valid envelope.
	for _, r := range kinds(recs, events.BadMessage) {
		t.Errorf("message.rejected: agent %q %s", r.Agent, r.Data)
	}
	if t.Failed() {
		if b, err := os.ReadFile(filepath.Join(res.Dir, "logs", "tft.log")); err == nil {
			t.Logf("logs/tft.log:\n%s", b)
		}
	}
}
