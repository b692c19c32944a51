package terrarium

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/terrarium-sim/terrarium/dashboard"
	"github.com/terrarium-sim/terrarium/report"
	"github.com/terrarium-sim/terrarium/world"
)

// DashboardFile is written into the run directory while a dashboard
// serves it (mode 0600): its URL and control token.
const DashboardFile = "dashboard.json"

// dashboardBuffer is how many events wait between the dashboard's feed
// and the dashboard (the rest wait in the stream).
const dashboardBuffer = 1024

// dashboardDrain is how long the end of a run waits for the dashboard to
// take in the run's last events before its pages are sent the end.
const dashboardDrain = 5 * time.Second

// startDashboard serves the run's dashboard (Config.UI) once the run's
// event stream is up: a feed of its own reads the stream (never slowing
// the world) and the loop reports its ticks (onTick).
func (r *run) startDashboard() error {
	if r.h.cfg.UI == "" {
		return nil
	}
	d, err := dashboard.New(dashboard.Config{Listener: r.h.uiLn, Control: r, Logger: r.h.cfg.Logger})
	if err != nil {
		return err
	}
	r.dash = d
	// The world as it starts (the loop does not run yet): a page opened
	// before the first tick, or on a run paused there, shows it.
	var start dashboard.Frame
	if from := r.loopFrom(); from != nil {
		start.Tick = from.Tick
	}
	if r.from != nil || r.h.cfg.resume != nil {
		r.dashboardHistory()
	} else if im, ok := r.w.(world.InitialMetricser); ok {
		start.Metrics = im.InitialMetrics()
	}
	if v, ok := world.ViewOf(r.w); ok {
		start.View = &v
	}
	d.Frame(start)
	info := d.Info()
	if err := writeJSON(filepath.Join(r.dir, DashboardFile), info, 0o600); err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	if f := r.h.cfg.Dashboard; f != nil {
		f(info)
	}
	return nil
}

// dashboardHistory gives the dashboard of a resumed or forked run the
// metrics of the ticks before it took over (metrics.csv as kept), so its
// charts start where the run did. Its events come from the stream, which
// a resumed run refills from events.jsonl.
func (r *run) dashboardHistory() {
	series, err := report.ReadMetrics(filepath.Join(r.dir, "metrics.csv"))
	if err != nil {
		r.log.Debug("dashboard: no earlier metrics", "error", err)
		return
	}
	for _, row := range report.ByTick(series) {
		r.dash.Frame(dashboard.Frame{Tick: world.Tick(row.Tick), Metrics: row.Values})
	}
}

// feedDashboard hands the dashboard the run's events, from its own feed
// of the event stream (events.jsonl for what the stream missed). It runs
// from Start; once the run is over without a dashboard it only drains
// the feed.
func (r *run) feedDashboard() {
	defer close(r.dashFed)
	select {
	case <-r.created:
	case <-r.h.done:
	}
	for rec := range r.h.uiFeed.ch {
		if r.dash != nil {
			r.dash.Apply(rec)
		}
	}
}

// dashboardFrame hands the dashboard a tick's metrics and, when a page
// wants one, the world's picture (from the loop's goroutine, or once the
// loop is over).
func (r *run) dashboardFrame(tr world.TickReport, final bool) {
	d := r.dash
	if d == nil {
		return
	}
	f := dashboard.Frame{Tick: tr.Tick, Metrics: tr.Metrics, WallUS: tr.Elapsed.Microseconds()}
	if final || d.WantsView() {
		if v, ok := world.ViewOf(r.w); ok {
			f.View = &v
		}
	}
	d.Frame(f)
}

// closeDashboard waits (a while) for the dashboard to take in the run's
// last event, then sends its pages the end and stops it.
func (r *run) closeDashboard() {
	d := r.dash
	if d == nil {
		return
	}
	select {
	case <-r.dashFed:
	case <-time.After(dashboardDrain):
		r.log.Warn("the dashboard did not get the run's last events in time")
	}
	if err := d.Close(); err != nil {
		r.log.Debug("dashboard close", "error", err)
	}
	_ = os.Remove(filepath.Join(r.dir, DashboardFile))
}

// Control pauses, resumes or steps the run for the dashboard.
func (r *run) Control(action string) error {
	if r.ended.Load() {
		return fmt.Errorf("%s: %w", action, ErrEnded)
	}
	var err error
	switch action {
	case dashboard.ActionPause:
		err = r.loop.Pause()
	case dashboard.ActionResume:
		err = r.loop.Resume()
	case dashboard.ActionStep:
		if !r.loop.Paused() {
			return fmt.Errorf("step: the run is not paused (pause it first)")
		}
		err = r.loop.StepPaused()
	default:
		return fmt.Errorf("unknown action %q", action)
	}
	if errors.Is(err, world.ErrManual) {
		return fmt.Errorf("%s: the program embedding the host steps this run (Step calls): %w", action, dashboard.ErrNoControl)
	}
	return err
}

// Pause stops the run before its next tick until Resume (between ticks:
// no agent is waited for while paused; events run.paused and
// run.unpaused). It fails before Start, once the run has ended, and for
// a host made with StepManually (the game's Step calls pace it).
func (h *Host) Pause() error { return h.control(dashboard.ActionPause) }

// Resume lets a paused run go on.
func (h *Host) Resume() error { return h.control(dashboard.ActionResume) }

// StepPaused lets a paused run take one tick, then wait again.
func (h *Host) StepPaused() error { return h.control(dashboard.ActionStep) }

func (h *Host) control(action string) error {
	h.runMu.Lock()
	r := h.r
	h.runMu.Unlock()
	if r == nil {
		return fmt.Errorf("%s: %w", action, ErrNotStarted)
	}
	select {
	case <-r.created:
	case <-h.done:
		return fmt.Errorf("%s: %w", action, ErrEnded)
	}
	return r.Control(action)
}

// Dashboard returns the live dashboard's URL and control token; ok is
// false without Config.UI or before it serves.
func (h *Host) Dashboard() (info dashboard.Info, ok bool) {
	h.runMu.Lock()
	r := h.r
	h.runMu.Unlock()
	if r == nil {
		return dashboard.Info{}, false
	}
	select {
	case <-r.created:
	default:
		return dashboard.Info{}, false
	}
	if r.dash == nil {
		return dashboard.Info{}, false
	}
	return r.dash.Info(), true
}
