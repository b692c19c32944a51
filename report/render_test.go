package report_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/internal/testenv"
	"github.com/terrarium-sim/terrarium/internal/testlog"
	"github.com/terrarium-sim/terrarium/report"
	"github.com/terrarium-sim/terrarium/scenarios"
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

// chromium returns the browser's path, or skips (fails with CI=true).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "chromium is not installed (run .ci/deps/chromium.sh)")
	return ""
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
func render(t *testing.T, browser, page string) drawn {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Navigate("file://"+page)); err != nil {
		t.Fatalf("chromium on %s: %v", page, err)
	}
	d, err := chromedp.Run(bctx, chromedp.Evaluate[drawn](inspect))
	if err != nil {
		t.Fatalf("inspect %s in chromium: %v", page, err)
	}
	return d
}

// Every chart of a report drew a line of at least two points, every grid
// snapshot drew its agents or cells, and the page loads nothing else.
func TestReportRendersInChromium(t *testing.T) {
	browser := chromium(t)
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
			d := render(t, browser, page)
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
