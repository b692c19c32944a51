package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/agents/agenttest"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/events"
)

// The test binary doubles as the terrarium CLI (TERRARIUM_TEST_CLI=1) and as
// the builtin runtime's agent binary.
func TestMain(m *testing.M) {
	builtin.Main()
	// Race-built children (agents, the watchdog) must not sleep a second
	// when they exit.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	if os.Getenv("TERRARIUM_TEST_CLI") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// cli starts the CLI as a real child process.
func cli(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "TERRARIUM_TEST_CLI=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatalf("run cli: %v", err)
	return -1
}

func TestUsageAndVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(nil, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "Usage:") {
		t.Errorf("no args: code %d, stderr %q", code, errb.String())
	}
	out.Reset()
	if code := Main([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "terrarium ") {
		t.Errorf("version: code %d, out %q", code, out.String())
	}
	errb.Reset()
	if code := Main([]string{"frobnicate"}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Errorf("unknown command: code %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := Main([]string{"run", "-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "--out") && !strings.Contains(errb.String(), "-out") {
		t.Errorf("run -h: code %d, stderr %q", code, errb.String())
	}
	if code := Main([]string{"run", "--log-level", "loud", "x.hcl"}, &out, &errb); code != exitUsage {
		t.Errorf("bad log level: code %d", code)
	}
}

func TestValidateReportsEveryMistake(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "broken.hcl")
	src := `scenario "broken" {
  seed = "many"
  missing_action = "shrug"
}
world "repeated_game" {
  game = "prisoners_dilemma"
  rounds = 10
}
agent "a" {
  runtime = "builtin"
}
agent "a" {
  runtime = "builtin"
  command = "cooperator"
  colour = "red"
}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Main([]string{"validate", path}, &out, &errb)
	if code != exitUsage {
		t.Fatalf("validate: code %d, want 2; stderr:\n%s", code, errb.String())
	}
	msg := errb.String()
	for _, want := range []string{"broken.hcl:2:", "broken.hcl:3:", "broken.hcl:9:", "broken.hcl:12:", "broken.hcl:15:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, msg)
		}
	}
	// run refuses the same file with exit 2 and starts nothing.
	runDir := filepath.Join(dir, "run")
	errb.Reset()
	if code := Main([]string{"run", "--out", runDir, path}, &out, &errb); code != exitUsage {
		t.Errorf("run broken scenario: code %d, want 2", code)
	}
	if _, err := os.Stat(runDir); !os.IsNotExist(err) {
		t.Errorf("run directory created for a broken scenario: %v", err)
	}
}

func TestValidateShippedScenarios(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "scenarios", "*.hcl"))
	if len(files) == 0 {
		t.Fatal("no shipped scenarios found")
	}
	var out, errb bytes.Buffer
	if code := Main(append([]string{"validate"}, files...), &out, &errb); code != 0 {
		t.Fatalf("validate shipped scenarios: code %d\n%s", code, errb.String())
	}
}

func TestInterruptSavesPartialResults(t *testing.T) {
	dir := t.TempDir()
	scenario := filepath.Join(dir, "long.hcl")
	if err := os.WriteFile(scenario, []byte(`
scenario "long" { ticks = 1000000 }
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 1000000
}
agent "tft" {
  runtime = "builtin"
  command = "tit_for_tat"
}
agent "alt" {
  runtime = "builtin"
  command = "alternator"
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "run")
	cmd, stdout, stderr := cli(t, "run", "--out", runDir, scenario)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	// Wait until some ticks are closed, by reading the event log.
	evPath := filepath.Join(runDir, "events.jsonl")
	deadline := time.Now().Add(time.Minute)
	for {
		b, _ := os.ReadFile(evPath)
		if bytes.Count(b, []byte(`"kind":"tick.closed"`)) >= 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ticks after a minute; stderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGINT) // a second signal does no harm
	code := exitCode(t, cmd.Wait())
	if code != exitInterrupted {
		t.Fatalf("exit code %d, want 130; stderr:\n%s\nstdout:\n%s", code, stderr.String(), stdout.String())
	}
	var res struct {
		Status string `json:"status"`
		Ticks  int    `json:"ticks"`
	}
	b, err := os.ReadFile(filepath.Join(runDir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Status != "interrupted" || res.Ticks < 10 {
		t.Errorf("result.json: %+v, want interrupted after >= 10 ticks", res)
	}
	recs, err := events.ReadFile(evPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Verify(recs); err != nil {
		t.Fatal(err)
	}
	if last := recs[len(recs)-1]; last.Kind != events.RunFinished {
		t.Errorf("last event %s, want run.finished", last.Kind)
	}
	for _, r := range recs {
		if r.Kind != events.AgentSpawned {
			continue
		}
		var d struct{ Pid int }
		_ = json.Unmarshal(r.Data, &d)
		if agenttest.Alive(d.Pid) {
			t.Errorf("agent %s (pid %d) outlived the host", r.Agent, d.Pid)
		}
	}
	if _, err := os.Stat(filepath.Join(runDir, "metrics.csv")); err != nil {
		t.Error(err)
	}
}

// A real run through the CLI (flags after the file), then verify: ok on the
// untouched directory, a problem once events.jsonl loses its last line, and
// --out on a non-empty directory is refused with exit 2 before anything runs.
// runShortTournament runs a tit-for-tat against defector tournament of
// ticks rounds through the CLI into dir/run and returns the scenario file,
// the run directory and what the run printed.
func runShortTournament(t *testing.T, dir string, ticks int) (scenario, runDir string, stdout *bytes.Buffer) {
	t.Helper()
	scenario = filepath.Join(dir, "short.hcl")
	if err := os.WriteFile(scenario, []byte(fmt.Sprintf(`
scenario "short" { ticks = %d }
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = %d
}
agent "tft" {
  runtime = "builtin"
  command = "tit_for_tat"
}
agent "d" {
  runtime = "builtin"
  command = "defector"
}
`, ticks, ticks)), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir = filepath.Join(dir, "run")
	cmd, stdout, stderr := cli(t, "run", scenario, "--out", runDir, "--quiet")
	cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	if code := exitCode(t, cmd.Run()); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, stderr.String())
	}
	return scenario, runDir, stdout
}

func TestRunVerifyAndOutChecks(t *testing.T) {
	dir := t.TempDir()
	scenario, runDir, stdout := runShortTournament(t, dir, 5)
	if !strings.Contains(stdout.String(), "status finished after 5 ticks") || !strings.Contains(stdout.String(), "d ") {
		t.Errorf("run output lacks the ranking or status:\n%s", stdout.String())
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"verify", runDir}, &out, &errb); code != 0 || !strings.Contains(out.String(), ": ok (") {
		t.Fatalf("verify untouched run: code %d\n%s%s", code, out.String(), errb.String())
	}
	// ps lists both agents, stopped after 5 turns each.
	out.Reset()
	if code := Main([]string{"ps", runDir}, &out, &errb); code != 0 {
		t.Fatalf("ps: code %d, %s", code, errb.String())
	}
	for _, want := range []string{"finished, 5 ticks", "tft ", "d ", "stopped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("ps output lacks %q:\n%s", want, out.String())
		}
	}
	// A forged result.json (another status) no longer matches the log.
	resPath := filepath.Join(runDir, "result.json")
	good, err := os.ReadFile(resPath)
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Replace(good, []byte(`"status": "finished"`), []byte(`"status": "aborted"`), 1)
	if bytes.Equal(forged, good) {
		t.Fatal("result.json has no finished status to forge")
	}
	if err := os.WriteFile(resPath, forged, 0o644); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := Main([]string{"verify", runDir}, &out, &errb); code != exitFailed || !strings.Contains(errb.String(), "run.finished says finished") {
		t.Errorf("verify forged result.json: code %d, stderr %q", code, errb.String())
	}
	if err := os.WriteFile(resPath, good, 0o644); err != nil {
		t.Fatal(err)
	}
	// Drop the last event (run.finished): verify must notice.
	ev := filepath.Join(runDir, "events.jsonl")
	b, err := os.ReadFile(ev)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(bytes.TrimRight(b, "\n"), []byte("\n"))
	if err := os.WriteFile(ev, bytes.Join(lines[:len(lines)-1], nil), 0o644); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := Main([]string{"verify", runDir}, &out, &errb); code != exitFailed || !strings.Contains(errb.String(), "truncated") {
		t.Errorf("verify truncated log: code %d, stderr %q", code, errb.String())
	}
	// The directory is not empty now: another run there is refused up front.
	errb.Reset()
	if code := Main([]string{"run", "--out", runDir, scenario}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "not empty") {
		t.Errorf("run into a non-empty --out: code %d, stderr %q", code, errb.String())
	}
}
