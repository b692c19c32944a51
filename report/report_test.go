package report_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/report"
)

// fakeRun writes a small run directory by hand: what an agent can put into
// a run (its id, its texts) is hostile, so it is markup here.
func fakeRun(t *testing.T, metrics string) string {
	t.Helper()
	dir := t.TempDir()
	ev, err := events.Create(filepath.Join(dir, "events.jsonl"), "r1", func(string) string { return "x" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev.Emit("world.grid", 1, "", map[string]any{"at": 0, "width": 3, "height": 2, "rules": "schelling",
		"groups": []string{"<script>alert(1)</script>"}, "agents": [][3]int{{0, 0, 0}, {2, 1, 0}}})
	if err := ev.Close(); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"metrics.csv":  metrics,
		"result.json":  `{"run":"r1","scenario":"s<b>1</b>","status":"finished","world":{"agent":"<img src=x onerror=alert(1)>","n":[1,2]}}`,
		"scenario.hcl": `scenario "s" {} # </pre><script>alert(2)</script>`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReportEscapesEverything(t *testing.T) {
	dir := fakeRun(t, "tick,share\n1,0.5\n2,0.75\n3,\n")
	page, err := report.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	for _, bad := range []string{"<script", "<img", "<b>1"} {
		if strings.Contains(html, bad) {
			t.Errorf("report.html contains %q unescaped", bad)
		}
	}
	if !strings.Contains(html, `points="`) || strings.Count(html, `class="series"`) != 1 || !strings.Contains(html, `class="agent"`) {
		t.Errorf("report.html lacks the chart or the grid")
	}
	if _, err := os.Stat(filepath.Join(dir, "report.html")); err != nil {
		t.Fatal(err)
	}
}

func TestReportLoadErrors(t *testing.T) {
	if _, err := report.Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "metrics.csv") {
		t.Errorf("empty directory: %v, want an error naming metrics.csv", err)
	}
	dir := fakeRun(t, "tick,x\n1,abc\n")
	if _, err := report.Load(dir); err == nil || !strings.Contains(err.Error(), "metrics.csv:2") {
		t.Errorf("bad metric value: %v, want metrics.csv:2", err)
	}
	// A tampered event log is shown as broken, not hidden.
	dir = fakeRun(t, "tick,x\n1,1\n")
	log := filepath.Join(dir, "events.jsonl")
	b, _ := os.ReadFile(log)
	os.WriteFile(log, []byte(strings.Replace(string(b), `"width":3`, `"width":4`, 1)), 0o644)
	r, err := report.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.ChainErr == nil {
		t.Error("a changed event passed the chain check")
	}
}

// A sweep directory without variables (seeds only): its results charted
// against the seed, a failed run listed but not charted, everything a run
// wrote escaped, and a column with one value listed once.
func TestSweepReport(t *testing.T) {
	dir := t.TempDir()
	csv := "seed,status,ticks,state_hash,x,duration_ms,error,dir,world.first_zero.prey,world.players,world.v<b>\n" +
		"1,finished,10,h1,1,5,,runs/default/seed-1,,3,0.5\n" +
		"2,finished,10,h2,1,5,,runs/default/seed-2,7,3,0.75\n" +
		"3,failed,0,,,5,<script>alert(1)</script>,runs/default/seed-3,,,\n"
	if err := os.WriteFile(filepath.Join(dir, "sweep.csv"), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	page, err := report.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(page)
	html := string(b)
	if strings.Contains(html, "<script") || strings.Contains(html, "v<b>") {
		t.Error("report.html has a run's text unescaped")
	}
	if n := strings.Count(html, `class="series"`); n != 1 {
		t.Errorf("%d chart lines, want 1: v<b> (first_zero.prey has one point, players is the same in every run)", n)
	}
	if !strings.Contains(html, "Key results against the seed") || !strings.Contains(html, "<th>players</th><td>3</td>") {
		t.Error("report.html lacks the seed axis or the constant players")
	}
	s, err := report.LoadSweep(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Runs) != 3 || len(s.Vars) != 0 || strings.Join(s.Key, " ") != "world.first_zero.prey world.v<b>" {
		t.Errorf("runs %d vars %v key %v", len(s.Runs), s.Vars, s.Key)
	}
	if _, err := report.LoadSweep(t.TempDir()); err == nil || !strings.Contains(err.Error(), "sweep.csv") {
		t.Errorf("no sweep.csv: %v", err)
	}
}

// A world whose figures are only its settings (the repeated game's
// payoffs) still gets its metrics charted against the swept variable.
func TestSweepReportChartsMetrics(t *testing.T) {
	dir := t.TempDir()
	csv := "payoff_t,seed,status,ticks,state_hash,cooperation_rate,mean_payoff,duration_ms,error,dir,world.payoffs.T,world.rounds\n" +
		"4,1,finished,10,h1,0.6,2.5,5,,a,4,10\n" +
		"4,2,finished,10,h2,0.7,2.6,5,,b,4,10\n" +
		"5,1,finished,10,h3,0.4,2.2,5,,c,5,10\n" +
		"5,2,finished,10,h4,0.5,2.3,5,,d,5,10\n"
	if err := os.WriteFile(filepath.Join(dir, "sweep.csv"), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := report.LoadSweep(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Key, " "); got != "world.payoffs.T cooperation_rate mean_payoff" {
		t.Errorf("key results %q, want the payoff and both metrics", got)
	}
	if got := strings.Join(s.Same, " "); got != "world.rounds" {
		t.Errorf("same in every run %q, want world.rounds", got)
	}
}

// ByTick turns the series back into metrics.csv's rows, in tick order;
// a metric with no value at a tick is absent from that row.
func TestByTick(t *testing.T) {
	rows := report.ByTick([]report.Series{
		{Name: "a", Ticks: []float64{2, 0, 1}, Values: []float64{20, 0, 10}},
		{Name: "b", Ticks: []float64{1}, Values: []float64{-1}},
	})
	if len(rows) != 3 || rows[0].Tick != 0 || rows[1].Tick != 1 || rows[2].Tick != 2 {
		t.Fatalf("rows %+v", rows)
	}
	if rows[1].Values["a"] != 10 || rows[1].Values["b"] != -1 || len(rows[2].Values) != 1 || rows[2].Values["a"] != 20 {
		t.Errorf("rows %+v", rows)
	}
}
