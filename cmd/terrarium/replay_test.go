package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const varsScenario = `
variable "rounds" { default = 50 }
scenario "cli_vars" { ticks = var.rounds }
world "repeated_game" { rounds = var.rounds }
agent "random" {
  runtime = "builtin"
  command = "random"
}
agent "grudger" {
  runtime = "builtin"
  command = "grudger"
}
`

// run --var sets a variable (an unknown one is a usage error naming it);
// replay certifies the run, --to writes the state at a tick to stdout, and
// a damaged log is refused with its line (exit 1).
func TestRunVarAndReplayCLI(t *testing.T) {
	dir := openDir(t)
	scenario := filepath.Join(dir, "vars.hcl")
	if err := os.WriteFile(scenario, []byte(varsScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, _, stderr := cli(t, "run", "--quiet", "--var", "roundz=3", "--out", filepath.Join(dir, "bad"), scenario)
	if code := exitCode(t, cmd.Run()); code != exitUsage || !strings.Contains(stderr.String(), `declares no variable "roundz"`) {
		t.Errorf("unknown --var: exit %d, stderr:\n%s", code, stderr)
	}
	run := filepath.Join(dir, "run")
	runOK(t, "run", "--quiet", "--var", "rounds=7", "--out", run, scenario)
	if r := readFinal(t, run); r.Ticks != 7 {
		t.Fatalf("--var rounds=7: %d ticks", r.Ticks)
	}
	cmd, stdout, stderr := cli(t, "replay", run)
	if code := exitCode(t, cmd.Run()); code != 0 || !strings.Contains(stdout.String(), "certified") {
		t.Errorf("replay: exit %d\n%s\n%s", code, stdout, stderr)
	}
	cmd, stdout, stderr = cli(t, "replay", "--to", "3", run)
	var state struct {
		Round   int `json:"round"`
		Matches []struct {
			Moves []string `json:"moves"`
		} `json:"matches"`
	}
	if code := exitCode(t, cmd.Run()); code != 0 || json.Unmarshal(stdout.Bytes(), &state) != nil || state.Round != 3 || len(state.Matches[0].Moves[0]) != 3 {
		t.Errorf("replay --to 3: exit %d, state %s\n%s", code, stdout, stderr)
	}
	ev := filepath.Join(run, "events.jsonl")
	b, err := os.ReadFile(ev)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	lines[4] = strings.Replace(lines[4], `"v":1`, `"v":2`, 1)
	if err := os.WriteFile(ev, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, stdout, _ = cli(t, "replay", run)
	if code := exitCode(t, cmd.Run()); code != exitFailed || !strings.Contains(stdout.String(), "NOT CERTIFIED") || !strings.Contains(stdout.String(), "events.jsonl:5: hash mismatch") {
		t.Errorf("replay of a damaged log: exit %d\n%s", code, stdout)
	}
}
