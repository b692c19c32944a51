package terrarium_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/observe"
	"github.com/terrarium-sim/terrarium/world"
)

// Observer benchmarks (issue 4's speed section). They run only with -bench:
//
//	go test -run '^$' -bench 'Observer' -benchtime 1x .
//
// Figures on the shared 2-core machines are noisy (±25 % or more).

// startObservers opens n feeds from the start over the run's observer
// credentials. caught waits until each has read tick.closed of tick until
// (0: run.finished) and returns how many events they read by then and
// between which times; finished waits until each has read run.finished.
func startObservers(b *testing.B, lr *liveRun, n int, until world.Tick) (caught func() (count int, first, last time.Time), finished func()) {
	b.Helper()
	type obs struct {
		count       int
		first, last time.Time
		caught      chan struct{}
	}
	all := make([]*obs, n)
	var wg sync.WaitGroup
	for i := range n {
		nc := connectObserver(b, lr.info, lr.info.URL)
		f, err := observe.Open(context.Background(), nc, lr.info.Stream, observe.Start{})
		if err != nil {
			b.Fatal(err)
		}
		o := &obs{caught: make(chan struct{})}
		all[i] = o
		wg.Go(func() {
			defer nc.Close()
			defer f.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			caught := false
			catch := func() {
				if !caught {
					caught = true
					close(o.caught)
				}
			}
			defer catch()
			for {
				r, err := f.Next(ctx)
				if err != nil {
					return
				}
				if !caught {
					if o.count == 0 {
						o.first = time.Now()
					}
					o.count++
					o.last = time.Now()
				}
				if (until > 0 && r.Kind == world.EventTickClosed && r.Tick == until) || r.Kind == events.RunFinished {
					catch()
				}
				if r.Kind == events.RunFinished {
					return
				}
			}
		})
	}
	caught = func() (int, time.Time, time.Time) {
		total := 0
		var first, last time.Time
		for _, o := range all {
			<-o.caught
			total += o.count
			if first.IsZero() || o.first.Before(first) {
				first = o.first
			}
			if o.last.After(last) {
				last = o.last
			}
		}
		return total, first, last
	}
	return caught, wg.Wait
}

// BenchmarkObserverDelivery: events per second delivered to 1 and to 10
// observers while a run steps (a burst of 20,000 world events at tick 2,
// then 200 ticks).
func BenchmarkObserverDelivery(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("observers=%d", n), func(b *testing.B) {
			var rates []float64
			for i := 0; i < b.N; i++ {
				// The world waits at its last tick until the observers
				// have read up to there, so none falls behind the end.
				const rounds = 200
				gate, open, hold := newGate(b)
				open() // no wait at the start
				lr := startRun(b, burstScenario(b, gate, rounds, 20000, 2, 0))
				caught, finished := startObservers(b, lr, n, rounds-1)
				total, first, last := caught()
				hold()
				finished()
				<-lr.done
				if lr.err != nil {
					b.Fatal(lr.err)
				}
				recs, err := events.ReadFile(filepath.Join(lr.res.Dir, "events.jsonl"))
				if err != nil {
					b.Fatal(err)
				}
				upTo := 0 // events up to and with tick.closed of rounds-1
				for j, r := range recs {
					if r.Kind == world.EventTickClosed && r.Tick == rounds-1 {
						upTo = j + 1
					}
				}
				if total != upTo*n {
					b.Fatalf("observers read %d events up to tick %d, want %d", total, rounds-1, upTo*n)
				}
				rate := float64(total) / last.Sub(first).Seconds()
				rates = append(rates, rate)
				b.Logf("%d observers: %d events in %s: %.0f events/s in total, %.0f per observer", n, total, last.Sub(first).Round(time.Millisecond), rate, rate/float64(n))
			}
			b.ReportMetric(median(rates), "events/s")
			b.ReportMetric(median(rates)/float64(n), "events/s/observer")
		})
	}
}

// BenchmarkObserverTickCost: the world's median tick time with 10
// observers reading the stream, against none (the same scenario run
// alternately; the ratio is the cost).
func BenchmarkObserverTickCost(b *testing.B) {
	var ratios []float64
	for i := 0; i < b.N; i++ {
		var med [2]float64
		for j, n := range []int{0, 10} {
			lr := startRun(b, burstScenario(b, "", 300, 0, 0, 0))
			_, finished := startObservers(b, lr, n, 0)
			finished()
			<-lr.done
			if lr.err != nil {
				b.Fatal(lr.err)
			}
			med[j] = float64(lr.res.TickTime.MedianUS)
			b.Logf("%d observers: median tick %d µs, p95 %d µs", n, lr.res.TickTime.MedianUS, lr.res.TickTime.P95US)
		}
		ratios = append(ratios, med[1]/med[0])
	}
	b.ReportMetric(median(ratios), "tick-ratio-10-vs-0")
}
