package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/events"
)

// `terrarium run` with the scenario's enforcement left to "auto" says which
// mode it picked at the default log level, and run.started records it: with
// agents as the host's user it is detect, with agents as their own users
// (root) permissions.
func TestRunSaysWhichEnforcementAutoPicked(t *testing.T) {
	cases := []struct{ users, want, says string }{
		{"off", "detect", "workspace: enforcement auto picked detect (agents share the host's user"},
	}
	if os.Geteuid() == 0 {
		// The strongest mode is said at info level: no line at the default level.
		cases = append(cases, struct{ users, want, says string }{"on", "permissions", ""})
	}
	for _, c := range cases {
		t.Run(c.users, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{filepath.Dir(dir), dir} { // agents as their own users reach their workspaces
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			scenario := filepath.Join(dir, "s.hcl")
			if err := os.WriteFile(scenario, []byte(`
scenario "enf" { ticks = 2 }
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 2
}
agent "a" {
  runtime = "builtin"
  command = "tit_for_tat"
}
agent "b" {
  runtime = "builtin"
  command = "defector"
}
`), 0o644); err != nil {
				t.Fatal(err)
			}
			runDir := filepath.Join(dir, "run")
			cmd, _, stderr := cli(t, "run", scenario, "--out", runDir, "--quiet", "--agent-users", c.users)
			cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
			if code := exitCode(t, cmd.Run()); code != 0 {
				t.Fatalf("run: exit %d\n%s", code, stderr.String())
			}
			if c.says != "" && !strings.Contains(stderr.String(), c.says) {
				t.Errorf("stderr lacks %q:\n%s", c.says, stderr.String())
			}
			if c.says == "" && strings.Contains(stderr.String(), "enforcement auto picked") {
				t.Errorf("stderr says the strongest mode at warning level:\n%s", stderr.String())
			}
			recs, err := events.ReadFile(filepath.Join(runDir, "events.jsonl"))
			if err != nil || len(recs) == 0 || recs[0].Kind != events.RunStarted {
				t.Fatalf("events: %v", err)
			}
			var d struct{ Enforcement string }
			_ = json.Unmarshal(recs[0].Data, &d)
			if d.Enforcement != c.want {
				t.Errorf("run.started enforcement %q, want %q", d.Enforcement, c.want)
			}
		})
	}
}
