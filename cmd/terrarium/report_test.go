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
