package terrarium_test

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/dashboard"
	"github.com/terrarium-sim/terrarium/internal/browsertest"
)

// Whether the dashboard keeps up with 500 agent processes at 20 ticks a
// second: a realtime Boltzmann run (500 agents on a 30x30 grid, 15 s of
// play) with the page open in headless Chromium, sampled every second:
// the page's animation frames a second (fps), snapshots drawn a second,
// the tick rate it shows, and how many ticks it trails the host.
func BenchmarkDashboard500(b *testing.B) {
	const agents, rate, seconds = 500, 20, 15
	for i := 0; i < b.N; i++ {
		br := browsertest.New(b, 10*time.Minute)
		sc := classic(b, "boltzmann",
			`action_deadline = "5s"`, `action_deadline = "5s"
  stepping        = "realtime"
  tick_rate       = 20
  ready_timeout   = "5m"`,
			"count   = 100", "count   = 500", "width         = 10", "width         = 30", "height        = 10", "height        = 30",
			"horizon       = 300", "horizon       = 100000", "measure_from  = 100", "measure_from  = 1", "snapshots     = [0, 300]", "snapshots     = [0]")
		sc.Ticks = rate * seconds
		infoCh := make(chan dashboard.Info, 1)
		var hostTick atomic.Int64
		h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: benchLogger(b), Dir: filepath.Join(openTempDir(b), "run"), Env: raceEnv,
			UI: "127.0.0.1:0", Dashboard: func(in dashboard.Info) { infoCh <- in },
			Progress: func(p terrarium.Progress) { hostTick.Store(int64(p.Tick)) }})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		var res *terrarium.Result
		go func() {
			defer close(done)
			res, err = h.Run(context.Background())
		}()
		in := <-infoCh
		if err := chromedp.Do(br.Ctx, chromedp.Navigate(in.URL)); err != nil {
			b.Fatal(err)
		}
		var fps, renders, shown, trail, events []float64
		sample := time.NewTicker(time.Second)
	loop:
		for {
			select {
			case <-done:
				break loop
			case <-sample.C:
				s, err := chromedp.Run(br.Ctx, chromedp.Evaluate[struct {
					FPS       float64 `json:"fps"`
					Renders   float64 `json:"renders"`
					TickRate  float64 `json:"tickRate"`
					Tick      float64 `json:"tick"`
					EventTick float64 `json:"eventTick"`
				}](`({...window.terrarium.stats, eventTick: window.terrarium.snapshot ? window.terrarium.snapshot.event_tick : 0})`))
				if err != nil {
					b.Fatal(err)
				}
				if s.Tick < 2 { // agents still starting
					continue
				}
				fps = append(fps, s.FPS)
				renders = append(renders, s.Renders)
				shown = append(shown, s.TickRate)
				trail = append(trail, float64(hostTick.Load())-s.Tick)
				events = append(events, float64(hostTick.Load())-s.EventTick)
			}
		}
		sample.Stop()
		_ = h.Close()
		http.DefaultClient.CloseIdleConnections()
		if err != nil {
			b.Fatal(err)
		}
		if len(fps) < 3 {
			b.Fatalf("only %d samples while the run went on", len(fps))
		}
		med := func(v []float64) float64 { s := slices.Clone(v); slices.Sort(s); return s[len(s)/2] }
		b.ReportMetric(med(fps), "page-fps")
		b.ReportMetric(slices.Min(fps), "page-fps-min")
		b.ReportMetric(med(renders), "snapshots-drawn/s")
		b.ReportMetric(med(shown), "page-ticks/s")
		b.ReportMetric(slices.Max(trail), "max-ticks-behind")
		b.ReportMetric(med(events), "events-ticks-behind")
		b.ReportMetric(float64(res.Ticks)/float64(seconds), "host-ticks/s")
		b.Logf("%d agents at %d Hz for %d ticks (%s): page fps median %.0f (min %.0f), snapshots drawn/s %.1f, ticks/s shown %.1f, at most %.0f ticks behind the host, its events a median %.0f ticks behind; console errors %q",
			agents, rate, res.Ticks, res.Isolation, med(fps), slices.Min(fps), med(renders), med(shown), slices.Max(trail), med(events), br.Errors())
	}
}
