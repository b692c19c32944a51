package terrarium_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/internal/testenv"
)

// test_snoop tries, before playing, everything an agent must not be able to
// do to another agent or the host, and prints one line per attempt.
func init() {
	builtin.Register("test_snoop", func(ctx context.Context, a *sdk.Agent) error {
		report := func(what string, leaked bool, detail string) {
			verdict := "blocked"
			if leaked {
				verdict = "LEAK"
			}
			fmt.Printf("snoop %s: %s %s\n", what, verdict, detail)
		}
		fmt.Printf("snoop uid %d gid %d\n", os.Getuid(), os.Getgid())
		// Other processes' environments (the credentials of other agents).
		ents, _ := os.ReadDir("/proc")
		leaked := ""
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
			if err == nil && strings.Contains(string(b), "TERRARIUM_NATS_PASSWORD") {
				leaked = e.Name()
			}
		}
		report("environ", leaked != "", leaked)
		ws := a.Workspace()
		other := filepath.Join(filepath.Dir(ws), os.Getenv("SNOOP_VICTIM"))
		_, err := os.ReadDir(other)
		report("read-workspace", err == nil, errText(err))
		err = os.WriteFile(filepath.Join(other, "pwned"), []byte("x"), 0o644)
		report("write-workspace", err == nil, errText(err))
		_, err = os.ReadFile(filepath.Join(ws, "..", "..", "..", "events.jsonl"))
		report("read-events", err == nil, errText(err))
		_, err = os.ReadDir(filepath.Join(ws, "..", "..", ".."))
		report("list-run-dir", err == nil, errText(err))
		err = os.WriteFile(filepath.Join(ws, "mine"), []byte("ok"), 0o644)
		report("write-own-workspace", err != nil, errText(err)) // must work
		return serve(ctx, a, func(obs sdk.Observation) error { return a.Act(obs.Tick, allMoves(obs, "C")) })
	})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func TestAgentsRunAsTheirOwnUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "agent users need root (CI and the container run as root)")
	}
	sc := writeScenario(t, `
scenario "iso" { ticks = 3 }
world "repeated_game" {
  rounds = 3
}
agent "snoop" {
  runtime = "builtin"
  command = "test_snoop"
  env     = ["SNOOP_VICTIM"]
}
agent "victim" {
  runtime = "builtin"
  command = "cooperator"
}
`)
	t.Setenv("SNOOP_VICTIM", "victim")
	res, _, err := runScenario(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Isolation, "users") {
		t.Fatalf("isolation %q, want agents as their own users", res.Isolation)
	}
	b, err := os.ReadFile(filepath.Join(res.Dir, "logs", "snoop.log"))
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	if strings.Contains(log, "snoop uid 0 ") || !strings.Contains(log, "snoop uid ") {
		t.Errorf("snoop did not run as its own user:\n%s", log)
	}
	for _, probe := range []string{"environ", "read-workspace", "write-workspace", "read-events", "list-run-dir", "write-own-workspace"} {
		if !strings.Contains(log, "snoop "+probe+": blocked") {
			t.Errorf("probe %s not blocked (write-own-workspace: must succeed):\n%s", probe, log)
		}
	}
	if _, err := os.Stat(filepath.Join(res.Dir, "workspace", "agents", "victim", "pwned")); err == nil {
		t.Error("snoop wrote into the victim's workspace")
	}
	if got := scores(t, res); got["snoop"] != 9 || got["victim"] != 9 {
		t.Errorf("scores %v, want 9 each", got)
	}
}
