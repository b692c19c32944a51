package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	scenario := filepath.Join(dir, "short.hcl")
	if err := os.WriteFile(scenario, []byte(`
scenario "short" { ticks = 6 }
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 6
}
agent "tft" {
  runtime = "builtin"
  command = "tit_for_tat"
}
agent "d" {
  runtime = "builtin"
  command = "defector"
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "run")
	cmd, _, stderr := cli(t, "run", scenario, "--out", runDir, "--quiet")
	cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	if code := exitCode(t, cmd.Run()); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, stderr.String())
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"report", runDir}, &out, &errb); code != exitOK {
		t.Fatalf("report: code %d, %s", code, errb.String())
	}
	page := filepath.Join(runDir, "report.html")
	if strings.TrimSpace(out.String()) != page {
		t.Errorf("report printed %q, want %q", out.String(), page)
	}
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`data-metric="cooperation_rate"`, `data-metric="mean_payoff"`, "tit_for_tat", `scenario &#34;short&#34;`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("report.html lacks %s", want)
		}
	}
	errb.Reset()
	if code := Main([]string{"report", filepath.Join(dir, "nothing")}, &out, &errb); code != exitFailed || !strings.Contains(errb.String(), "metrics.csv") {
		t.Errorf("report of a missing directory: code %d, stderr %q", code, errb.String())
	}
	if code := Main([]string{"report"}, &out, &errb); code != exitUsage {
		t.Errorf("report without a directory: code %d", code)
	}
}
