package terrarium_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/dashboard"
	"github.com/terrarium-sim/terrarium/dashboard/dashboardtest"
	"github.com/terrarium-sim/terrarium/internal/browsertest"
	"github.com/terrarium-sim/terrarium/internal/leaktest"
	"github.com/terrarium-sim/terrarium/world"
)

// A live run's dashboard shows every agent, the world's tables and the
// metrics; it pauses the run before its first tick, steps it one tick at
// a time and resumes it, only with the token; its last snapshot is the
// run's end, with every event taken in.
func TestDashboardControlsALiveRun(t *testing.T) {
	sc := loadScenario(t, "scenarios/axelrod.hcl")
	infoCh := make(chan dashboard.Info, 1)
	var pauseCode int
	var fileMode os.FileMode
	lr := startRun(t, sc, func(c *terrarium.Config) {
		c.UI = "127.0.0.1:0"
		c.Dashboard = func(in dashboard.Info) {
			// Called before any agent starts: pausing now holds tick 1.
			pauseCode, _ = dashboardtest.Control(t, in.URL, in.Token, dashboard.ActionPause)
			if fi, err := os.Stat(filepath.Join(c.Dir, terrarium.DashboardFile)); err == nil {
				fileMode = fi.Mode().Perm()
			}
			infoCh <- in
		}
	})
	defer http.DefaultClient.CloseIdleConnections()
	in := <-infoCh
	if pauseCode != http.StatusOK {
		t.Fatalf("pause before the first tick: %d", pauseCode)
	}
	if fileMode != 0o600 {
		t.Errorf("%s mode %v, want 0600 (it holds the control token)", terrarium.DashboardFile, fileMode)
	}
	st := dashboardtest.OpenStream(t, in.URL)
	agents := len(sc.Seats())
	ready := func(s dashboard.Snapshot) bool {
		n := 0
		for _, a := range s.Agents {
			if a.State == "ready" {
				n++
			}
		}
		return n == agents
	}
	var s dashboard.Snapshot
	eventually(t, "every agent ready, paused at tick 0", func() bool {
		s = dashboardtest.State(t, in.URL)
		return s.Status == "paused" && ready(s)
	})
	if s.Tick != 0 || s.AgentsTotal != agents || len(s.Agents) != agents || s.Scenario != "axelrod" || s.World != "repeated_game" {
		t.Fatalf("paused run: tick %d, %d/%d agents, scenario %q world %q", s.Tick, len(s.Agents), s.AgentsTotal, s.Scenario, s.World)
	}
	// Refused without the right token, and nothing moves.
	if code, body := dashboardtest.Control(t, in.URL, "not-the-token", dashboard.ActionStep); code != http.StatusForbidden {
		t.Errorf("step with a wrong token: %d %s", code, body)
	}
	for want := world.Tick(1); want <= 2; want++ {
		if code, body := dashboardtest.Control(t, in.URL, in.Token, dashboard.ActionStep); code != http.StatusOK {
			t.Fatalf("step: %d %s", code, body)
		}
		// Paused again once the loop waits after the tick (run.paused at
		// that tick): only then is the next step a step of its own.
		eventually(t, fmt.Sprintf("tick %d, paused again", want), func() bool {
			s = dashboardtest.State(t, in.URL)
			return s.Tick == want && s.Status == "paused" && slices.ContainsFunc(s.Recent, func(l string) bool {
				return strings.Contains(l, fmt.Sprintf(" t%d run.paused", want))
			})
		})
	}
	for _, a := range s.Agents {
		if a.Actions != 2 || a.LastTick != 2 || a.Last == "" {
			t.Errorf("agent %s after two ticks: %+v", a.ID, a)
		}
	}
	eventually(t, "the world's tables", func() bool {
		s = dashboardtest.State(t, in.URL)
		return s.ViewTick >= 1 && strings.Contains(string(s.View), "matches after round")
	})
	if len(s.Series.Names) != 2 || len(s.Series.Ticks) != 2 {
		t.Errorf("metrics: %v over %v", s.Series.Names, s.Series.Ticks)
	}
	if code, body := dashboardtest.Control(t, in.URL, in.Token, dashboard.ActionResume); code != http.StatusOK {
		t.Fatalf("resume: %d %s", code, body)
	}
	recs := lr.wait(t)
	end, _ := st.Wait(t)
	if end.Status != terrarium.StatusFinished || end.Tick != world.Tick(sc.Ticks) || end.Seq != lr.res.Events.Count {
		t.Errorf("last snapshot: status %q tick %d seq %d; the run: %d ticks, %d events", end.Status, end.Tick, end.Seq, sc.Ticks, lr.res.Events.Count)
	}
	// The log: paused at 0, one tick per step, unpaused at 2, then on.
	var seen []string
	for _, r := range recs {
		switch {
		case r.Kind == world.EventRunPaused || r.Kind == world.EventRunUnpaused:
			seen = append(seen, fmt.Sprintf("%s@%d", r.Kind, r.Tick))
		case r.Kind == world.EventTickClosed && r.Tick <= 3:
			seen = append(seen, fmt.Sprintf("tick@%d", r.Tick))
		}
	}
	checkDocumented(t, recs)
	want := "run.paused@0 tick@1 run.paused@1 tick@2 run.paused@2 run.unpaused@2 tick@3"
	if got := strings.Join(seen, " "); got != want {
		t.Errorf("pause events:\n got %s\nwant %s", got, want)
	}
	for _, f := range []string{terrarium.DashboardFile, "observer.json"} {
		if _, err := os.Stat(filepath.Join(lr.res.Dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s left after the run: %v", f, err)
		}
	}
	// Host.Pause after the end says so.
	if err := lr.h.Pause(); err == nil {
		t.Error("Pause after the run ended: no error")
	}
}

// A manually stepped host cannot be paused from the dashboard: the game's
// loop paces it, and the page is told so.
func TestDashboardRefusesManualHost(t *testing.T) {
	leaktest.Goroutines(t)
	sc := writeScenario(t, `
scenario "manual" {
  ticks           = 3
  action_deadline = "10s"
}
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 3
}
agent "tit_for_tat" {
  runtime = "builtin"
  command = "tit_for_tat"
}
agent "defector" {
  runtime = "builtin"
  command = "defector"
}
`)
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: testLogger(t), Dir: filepath.Join(openTempDir(t), "run"), Env: raceEnv,
		StepManually: true, UI: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	defer http.DefaultClient.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	in, ok := h.Dashboard()
	if !ok {
		t.Fatal("no dashboard")
	}
	if code, body := dashboardtest.Control(t, in.URL, in.Token, dashboard.ActionPause); code != http.StatusConflict || !strings.Contains(body, "Step calls") {
		t.Errorf("pause of a manual host: %d %s", code, body)
	}
	for i := 0; i < 3; i++ {
		if _, err := h.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	res, err := h.Wait()
	if err != nil || res.Ticks != 3 {
		t.Fatalf("wait: %v, %d ticks", err, res.Ticks)
	}
}

// pageStats is what the dashboard page reports of itself.
type pageStats struct {
	Tick     int     `json:"tick"`
	Status   string  `json:"status"`
	Rows     int     `json:"rows"`
	Ready    int     `json:"ready"`
	Canvas   int     `json:"canvas"`
	Charts   int     `json:"charts"`
	Points   []int   `json:"points"`
	Drawn    int     `json:"drawn"`
	FPS      float64 `json:"fps"`
	Injected int     `json:"injected"`
}

const pageProbe = `(() => ({
  tick: Number(document.getElementById("tick").textContent),
  status: document.getElementById("status").textContent,
  rows: document.querySelectorAll("#roster tbody tr").length,
  ready: [...document.querySelectorAll("#roster tbody td.state-ready")].length,
  canvas: document.querySelectorAll("#view canvas.grid").length,
  charts: document.querySelectorAll("#charts .chart").length,
  points: [...document.querySelectorAll("#charts polyline")].map(p => p.points.numberOfItems),
  drawn: window.terrarium.stats.drawn,
  fps: window.terrarium.stats.fps,
  injected: document.querySelectorAll("#roster img, #view img, #recent img").length,
}))()`

func probePage(t *testing.T, b *browsertest.Browser) pageStats {
	t.Helper()
	p, err := chromedp.Run(b.Ctx, chromedp.Evaluate[pageStats](pageProbe))
	if err != nil {
		t.Fatalf("probe the page: %v", err)
	}
	return p
}

// The dashboard in headless Chromium against a running grid scenario: the
// roster has a row per agent, the grid is drawn, the Step button (with
// the token from the printed URL) advances the tick by one, Resume lets it
// run to the end, every chart has a line, and the page logs no error.
func TestDashboardInChromium(t *testing.T) {
	b := browsertest.New(t, 5*time.Minute)
	sc := classic(t, "boltzmann", "count   = 100", "count   = 12", "horizon       = 300", "horizon       = 40",
		"measure_from  = 100", "measure_from  = 10", "snapshots     = [0, 300]", "snapshots     = [0, 40]")
	infoCh := make(chan dashboard.Info, 1)
	lr := startRun(t, sc, func(c *terrarium.Config) {
		c.UI = "127.0.0.1:0"
		c.Dashboard = func(in dashboard.Info) {
			dashboardtest.Control(t, in.URL, in.Token, dashboard.ActionPause)
			infoCh <- in
		}
	})
	defer http.DefaultClient.CloseIdleConnections()
	in := <-infoCh
	if err := chromedp.Do(b.Ctx, chromedp.Navigate(in.URL+"#token="+in.Token)); err != nil {
		t.Fatal(err)
	}
	agents := len(sc.Seats())
	var p pageStats
	eventually(t, "the page shows every agent ready, paused", func() bool {
		p = probePage(t, b)
		return p.Rows == agents && p.Ready == agents && p.Status == "paused"
	})
	if p.Tick != 0 {
		t.Fatalf("paused page at tick %d, want 0", p.Tick)
	}
	// Before the first tick the page draws the world as it starts.
	eventually(t, "the initial grid drawn", func() bool { return probePage(t, b).Canvas == 1 })
	// The token came from the URL's fragment: the Step button works.
	if err := chromedp.Do(b.Ctx, chromedp.Click(chromedp.ID("step"))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "tick 1 on the page", func() bool {
		p = probePage(t, b)
		return p.Tick == 1 && p.Status == "paused"
	})
	eventually(t, "the grid drawn", func() bool { return probePage(t, b).Canvas == 1 })
	if err := chromedp.Do(b.Ctx, chromedp.Click(chromedp.ID("resume"))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the run's end on the page", func() bool {
		p = probePage(t, b)
		return p.Status == "finished"
	})
	lr.wait(t)
	if p.Tick != 40 || p.Rows != agents || p.Charts == 0 {
		t.Errorf("finished page: %+v", p)
	}
	for i, n := range p.Points {
		if n < 2 {
			t.Errorf("chart %d has %d points", i, n)
		}
	}
	if p.Injected != 0 {
		t.Errorf("%d img elements injected into the page", p.Injected)
	}
	shot, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if len(shot) < 1000 {
		t.Errorf("screenshot of %d bytes", len(shot))
	}
	if dir := os.Getenv("TERRARIUM_SCREENSHOTS"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "dashboard.png"), shot, 0o644)
	}
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("the page logged errors: %q", errs)
	}
}

// The dashboard of a resumed run shows the whole run: the kept events
// before the resume (from the refilled stream) and the metrics kept in
// metrics.csv, then the resumed ticks.
func TestDashboardOfResumedRun(t *testing.T) {
	leaktest.Goroutines(t)
	const ticks = 60
	whole, _ := runWithSeed(t, tournamentWithRandom(ticks, 20), 3)
	dir := killedCopy(t, whole, 50)

	infoCh := make(chan dashboard.Info, 1)
	h, rep, err := terrarium.Resume(dir, terrarium.Config{Logger: testLogger(t), Env: raceEnv,
		UI: "127.0.0.1:0", Dashboard: func(in dashboard.Info) { infoCh <- in }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	defer http.DefaultClient.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st := dashboardtest.OpenStream(t, (<-infoCh).URL)
	res, err := h.Wait()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := st.Wait(t)
	if s.Scenario == "" || s.Tick != ticks || s.Status != terrarium.StatusFinished || s.Seq != res.Events.Count {
		t.Errorf("resumed after tick %d: scenario %q tick %d status %q seq %d (events %d)", rep.Tick, s.Scenario, s.Tick, s.Status, s.Seq, res.Events.Count)
	}
	if n := len(s.Series.Ticks); n != ticks || s.Series.Ticks[0] != 1 {
		t.Errorf("metrics over %d ticks from %v, want all %d from tick 1", n, s.Series.Ticks[:min(n, 1)], ticks)
	}
	for _, a := range s.Agents {
		if a.Actions+a.Missing != ticks {
			t.Errorf("agent %s: %d actions + %d filled, want %d", a.ID, a.Actions, a.Missing, ticks)
		}
	}
}

// A dashboard address that is taken is refused by New, before the run
// directory exists (so the same command works once the address is free).
func TestDashboardAddressTakenRefusedEarly(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := filepath.Join(openTempDir(t), "run")
	_, err = terrarium.New(terrarium.Config{Scenario: loadScenario(t, "scenarios/axelrod.hcl"), Logger: testLogger(t), Dir: dir, UI: taken.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "dashboard") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("New with a taken dashboard address: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the run directory was made: %v", err)
	}
}
