package report_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/internal/browsertest"
	"github.com/terrarium-sim/terrarium/internal/testlog"
	"github.com/terrarium-sim/terrarium/report"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/sweep"
)

func TestMain(m *testing.M) {
	builtin.Main() // the test binary is also the builtin agents' binary
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	os.Exit(m.Run())
}

// runDir runs a shipped scenario (with edits: old, new, ...) and returns its run directory.
func runDir(t *testing.T, name string, edits ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "scenarios", name+".hcl"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		if strings.Count(src, edits[i]) != 1 {
			t.Fatalf("%s.hcl: %q not found once", name, edits[i])
		}
		src = strings.Replace(src, edits[i], edits[i+1], 1)
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // agents running as their own users must reach it
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, name+".hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, diags := scenarios.Load(path)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: testlog.New(t), Dir: filepath.Join(dir, "run"),
		Env: map[string]string{"GORACE": "atexit_sleep_ms=0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := h.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return res.Dir
}

// drawn is what the page script reports from the rendered page.
type drawn struct {
	Charts []struct {
		Metric string  `json:"metric"`
		Lines  int     `json:"lines"`
		Points int     `json:"points"`
		Length float64 `json:"length"`
	} `json:"charts"`
	Grids []struct {
		Tick  string `json:"tick"`
		Rects int    `json:"rects"`
	} `json:"grids"`
	Scripts, External int
}

const inspect = `(() => ({
  charts: [...document.querySelectorAll("svg.chart")].map(s => {
    const lines = s.querySelectorAll("polyline.series");
    const l = lines[0];
    return {metric: s.dataset.metric, lines: lines.length,
            points: l ? l.points.numberOfItems : 0, length: l ? l.getTotalLength() : 0};
  }),
  grids: [...document.querySelectorAll("svg.grid")].map(s => ({tick: s.dataset.tick,
    rects: [...s.querySelectorAll("rect.agent, rect.cell")].filter(r => r.getBBox().width > 0).length})),
  Scripts: document.scripts.length,
  External: [...document.querySelectorAll("[src], link[href]")].length,
}))()`

// render opens a report in headless Chromium and inspects what it drew.
func render(t *testing.T, page string) drawn {
	t.Helper()
	b := browsertest.New(t, 5*time.Minute)
	if err := chromedp.Do(b.Ctx, chromedp.Navigate("file://"+page)); err != nil {
		t.Fatalf("chromium on %s: %v", page, err)
	}
	d, err := chromedp.Run(b.Ctx, chromedp.Evaluate[drawn](inspect))
	if err != nil {
		t.Fatalf("inspect %s in chromium: %v", page, err)
	}
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
	return d
}

// Every chart of a report drew a line of at least two points, every grid
// snapshot drew its agents or cells, and the page loads nothing else.
func TestReportRendersInChromium(t *testing.T) {
	browsertest.Path(t)
	for _, c := range []struct {
		name    string
		edits   []string
		metrics []string
		grids   int
	}{
		{"boltzmann", []string{"horizon       = 300", "horizon       = 30", "measure_from  = 100", "measure_from  = 10", "snapshots     = [0, 300]", "snapshots     = [0, 30]", "count   = 100", "count   = 20"},
			[]string{"gini", "total_wealth", "min_wealth", "max_wealth", "transfers"}, 2},
		{"life", []string{"horizon        = 64", "horizon        = 8"}, []string{"population", "births", "deaths"}, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := runDir(t, c.name, c.edits...)
			page, err := report.Write(dir)
			if err != nil {
				t.Fatal(err)
			}
			d := render(t, page)
			if len(d.Charts) != len(c.metrics) {
				t.Fatalf("%d charts, want %d (%v)", len(d.Charts), len(c.metrics), c.metrics)
			}
			for i, ch := range d.Charts {
				if ch.Metric != c.metrics[i] || ch.Lines != 1 || ch.Points < 2 || ch.Length <= 0 {
					t.Errorf("chart %d: %+v, want metric %s with one line of >= 2 points and a length", i, ch, c.metrics[i])
				}
			}
			if len(d.Grids) != c.grids {
				t.Errorf("%d grid snapshots, want %d", len(d.Grids), c.grids)
			}
			for _, g := range d.Grids {
				if g.Rects == 0 {
					t.Errorf("grid at tick %s drew nothing", g.Tick)
				}
			}
			if d.Scripts != 0 || d.External != 0 {
				t.Errorf("page has %d scripts and %d external references, want none", d.Scripts, d.External)
			}
		})
	}
}

// drawnSweep is what the page script reports from a sweep report.
type drawnSweep struct {
	Charts []struct {
		Metric string    `json:"metric"`
		Points []int     `json:"points"`
		Length []float64 `json:"length"`
		Bands  int       `json:"bands"`
		Dots   int       `json:"dots"`
	} `json:"charts"`
	Rows, Scripts, External int
}

const inspectSweep = `(() => ({
  charts: [...document.querySelectorAll("svg.chart")].map(s => {
    const lines = [...s.querySelectorAll("polyline.series")];
    return {metric: s.dataset.metric, points: lines.map(l => l.points.numberOfItems), length: lines.map(l => l.getTotalLength()),
            bands: s.querySelectorAll("polygon.band").length, dots: s.querySelectorAll("circle.seed").length};
  }),
  Rows: document.querySelectorAll("h2 + table tr").length,
  Scripts: document.scripts.length,
  External: [...document.querySelectorAll("[src], link[href]")].length,
}))()`

// A sweep directory's report: the minority game swept over the memory m
// (2 and 5) with two seeds, the players in a pool. Every chart drew, per
// line, the mean over the seeds as a line of at least two points, the
// min-max band and a dot per run.
func TestSweepReportRendersInChromium(t *testing.T) {
	browsertest.Path(t)
	b, err := os.ReadFile(filepath.Join("..", "scenarios", "minority.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(strings.Replace(string(b), "rounds       = 3000", "rounds       = 60", 1), "measure_from = 1000", "measure_from = 20", 1)
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // agents running as their own users must reach it
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "minority.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "sweep")
	sum, err := sweep.Run(context.Background(), sweep.Config{Scenario: path, Seeds: []uint64{1, 2}, Out: out, Logger: testlog.New(t),
		Vars: []sweep.Var{{Name: "runtime", Values: []string{"pool"}}, {Name: "memory", Values: []string{"2", "5"}}},
		Host: terrarium.Config{Env: map[string]string{"GORACE": "atexit_sleep_ms=0"}}})
	if err != nil || sum.Failed != 0 {
		t.Fatalf("sweep: %v, %d failed", err, sum.Failed)
	}
	page, err := report.Write(out)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(page)
	for _, want := range []string{"Terrarium sweep report: minority", "variable memory", "Key results against memory", "volatility"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	b2 := browsertest.New(t, 5*time.Minute)
	if err := chromedp.Do(b2.Ctx, chromedp.Navigate("file://"+page)); err != nil {
		t.Fatalf("chromium on %s: %v", page, err)
	}
	d, err := chromedp.Run(b2.Ctx, chromedp.Evaluate[drawnSweep](inspectSweep))
	if err != nil {
		t.Fatalf("inspect %s in chromium: %v", page, err)
	}
	if errs := b2.Errors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
	metrics := map[string]bool{}
	for _, c := range d.Charts {
		metrics[c.Metric] = true
		if len(c.Points) != 1 || c.Points[0] < 2 || c.Length[0] <= 0 || c.Bands != 1 || c.Dots != 4 {
			t.Errorf("chart %s: %+v, want one line of >= 2 points (m = 2, 5) with a length, one band, 4 dots", c.Metric, c)
		}
	}
	for _, want := range []string{"volatility", "mean_attendance", "sd_attendance"} {
		if !metrics[want] {
			t.Errorf("no chart of %s (charts: %v)", want, metrics)
		}
	}
	if d.Scripts != 0 || d.External != 0 {
		t.Errorf("page has %d scripts and %d external references, want none", d.Scripts, d.External)
	}
}
