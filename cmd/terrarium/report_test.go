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
	_, runDir, _ := runShortTournament(t, dir, 6)
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

// terrarium report on a terrarium sweep's directory: the sweep report,
// with a chart of each world figure against the swept variable.
func TestReportCommandSweep(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // agents may run as their own users
		os.Chmod(d, 0o755)
	}
	path := filepath.Join(dir, "coin.hcl")
	src := `
variable "p" { default = 0.5 }
scenario "coin" { ready_timeout = "20s" }
world "nplayer_game" {
  game   = "minority"
  rounds = 20
}
agent "p" {
  runtime = "pool"
  command = "random_choice-pool"
  args    = ["p=${var.p}"]
  count   = 3
}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "sweep")
	var stdout, errb bytes.Buffer
	if code := Main([]string{"sweep", "--quiet", "--var", "p=0.1,0.9", "--seeds", "1..2", "--out", out, path}, &stdout, &errb); code != exitOK {
		t.Fatalf("sweep: code %d, %s", code, errb.String())
	}
	stdout.Reset()
	if code := Main([]string{"report", out}, &stdout, &errb); code != exitOK {
		t.Fatalf("report: code %d, %s", code, errb.String())
	}
	page := filepath.Join(out, "report.html")
	if strings.TrimSpace(stdout.String()) != page {
		t.Errorf("report printed %q, want %q", stdout.String(), page)
	}
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Terrarium sweep report: coin", "Key results against p", `data-metric="mean_attendance"`, `class="series"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("report.html lacks %s", want)
		}
	}
}
