package dashboard_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/terrarium-sim/terrarium/dashboard"
	"github.com/terrarium-sim/terrarium/internal/browsertest"
	"github.com/terrarium-sim/terrarium/world"
)

// The page alone, with the run's cost taken out: a dashboard fed 20 ticks
// a second of 500 agents that all act every tick (a tick.closed of 500
// actions, 5 metrics, a 30x30 grid view) for 10 s, open in headless
// Chromium. It reports the page's animation frames a second, its time to
// parse and draw a snapshot, and the snapshots and ticks a second it shows.
// BenchmarkDashboard500 in the root package measures the same with a real
// run of 500 agent processes on the same two cores.
func BenchmarkPage500Agents(b *testing.B) {
	const agents, rate, seconds = 500, 20, 10
	for i := 0; i < b.N; i++ {
		s, err := dashboard.New(dashboard.Config{})
		if err != nil {
			b.Fatal(err)
		}
		br := browsertest.New(b, 5*time.Minute)
		s.Apply(rec(1, "run.started", 0, "", `{"scenario":"page","world":"grid","ticks":1000}`))
		seq := uint64(2)
		ids := make([]world.AgentID, agents)
		for i := range ids {
			ids[i] = world.AgentID(fmt.Sprintf("agent-%03d", i))
			s.Apply(rec(seq, "agent.spawned", 0, ids[i], `{"pid":1000,"group":"agent"}`))
			seq++
		}
		if err := chromedp.Do(br.Ctx, chromedp.Navigate(s.Info().URL)); err != nil {
			b.Fatal(err)
		}
		type stats struct {
			FPS      float64 `json:"fps"`
			Renders  float64 `json:"renders"`
			TickRate float64 `json:"tickRate"`
			RenderMs float64 `json:"renderMs"`
			ParseMs  float64 `json:"parseMs"`
			Tick     float64 `json:"tick"`
		}
		var samples []stats
		every := time.NewTicker(time.Second / rate)
		sample := time.NewTicker(time.Second)
		end := time.After(seconds * time.Second)
		tick := world.Tick(0)
	run:
		for {
			select {
			case <-end:
				break run
			case <-sample.C:
				st, err := chromedp.Run(br.Ctx, chromedp.Evaluate[stats](`window.terrarium.stats`))
				if err != nil {
					b.Fatal(err)
				}
				if tick > 2*rate { // after the page's start
					samples = append(samples, st)
				}
			case <-every.C:
				tick++
				acts := make([]world.AppliedAction, agents)
				g := &world.GridView{Width: 30, Height: 30, Groups: []string{"agent"}, Agents: make([][3]int, agents)}
				for i, id := range ids {
					acts[i] = world.AppliedAction{Agent: id, Data: json.RawMessage(fmt.Sprintf(`{"move":[1,0],"give":"agent-%03d"}`, (i+int(tick))%agents))}
					g.Agents[i] = [3]int{(i + int(tick)) % 30, i / 30 % 30, 0}
				}
				d, _ := json.Marshal(map[string]any{"actions": acts, "hash": "h", "wall_us": 1000})
				s.Apply(rec(seq, "tick.closed", tick, "", string(d)))
				seq++
				f := dashboard.Frame{Tick: tick, Metrics: map[string]float64{"a": float64(tick), "b": float64(tick % 7), "c": 2, "d": 3, "e": 4}}
				if s.WantsView() {
					f.View = &world.View{Grid: g}
				}
				s.Frame(f)
			}
		}
		every.Stop()
		sample.Stop()
		errs := br.Errors()
		_ = s.Close()
		if len(samples) < 3 {
			b.Fatalf("%d samples", len(samples))
		}
		med := func(f func(stats) float64) float64 {
			v := make([]float64, len(samples))
			for i, s := range samples {
				v[i] = f(s)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		b.ReportMetric(med(func(s stats) float64 { return s.FPS }), "page-fps")
		b.ReportMetric(med(func(s stats) float64 { return s.RenderMs }), "draw-ms")
		b.ReportMetric(med(func(s stats) float64 { return s.ParseMs }), "parse-ms")
		b.ReportMetric(med(func(s stats) float64 { return s.Renders }), "snapshots-drawn/s")
		b.ReportMetric(med(func(s stats) float64 { return s.TickRate }), "page-ticks/s")
		if len(errs) > 0 {
			b.Errorf("console errors: %q", errs)
		}
	}
}
