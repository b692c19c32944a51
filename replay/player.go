package replay

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/terrarium-sim/terrarium/dashboard"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/report"
	"github.com/terrarium-sim/terrarium/world"
)

// Sink is what a Player plays into: a dashboard.Server.
type Sink interface {
	Apply(events.Record)
	Frame(dashboard.Frame)
	WantsView() bool
	SetStatus(status string)
}

// Player plays a finished (or stopped) run back, tick by tick at a rate,
// without starting any agent: its recorded events in order, its metrics,
// and the world's picture rebuilt by re-applying the recorded actions
// (terrarium ui). Pause, Resume and Step act on the playback.
type Player struct {
	recs    []events.Record
	metrics map[world.Tick]map[string]float64
	w       world.World // nil: the world could not be rebuilt (NoWorld says why)
	seed    uint64
	every   time.Duration // between ticks; 0: as fast as it goes

	// NoWorld says why the world's picture is not shown (empty: it is).
	NoWorld string
	// Bad is the first damaged line of events.jsonl, if any: the playback
	// stops before it.
	Bad string

	lastTick int // index in recs of the last tick.closed (-1: none)
	pause    *world.Gate
}

// NewPlayer reads the run in dir for playing at rate ticks a second
// (0: as fast as the sink takes them).
func NewPlayer(dir string, rate float64) (*Player, error) {
	lg, err := events.ReadLog(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("play %s: %w", dir, err)
	}
	if len(lg.Records) == 0 {
		return nil, fmt.Errorf("play %s: events.jsonl has no events", dir)
	}
	p := &Player{recs: lg.Records, metrics: map[world.Tick]map[string]float64{}, pause: world.NewGate(), lastTick: -1}
	for i, r := range lg.Records {
		if r.Kind == world.EventTickClosed {
			p.lastTick = i
		}
	}
	if lg.Bad != nil {
		p.Bad = lg.Bad.Error()
	}
	if rate > 0 {
		p.every = time.Duration(float64(time.Second) / rate)
	}
	series, err := report.ReadMetrics(filepath.Join(dir, "metrics.csv"))
	if err != nil {
		return nil, fmt.Errorf("play %s: %w", dir, err)
	}
	for _, r := range report.ByTick(series) {
		p.metrics[world.Tick(r.Tick)] = r.Values
	}
	info, w, err := openWorld(dir, lg.Records, nil)
	if err != nil {
		p.NoWorld = err.Error()
	} else if _, ok := world.ViewOf(w); !ok {
		p.NoWorld = "its world kind draws no picture"
	} else {
		p.w, p.seed = w, info.Seed
	}
	return p, nil
}

// Play plays the run into s until its last event (nil) or ctx ends.
func (p *Player) Play(ctx context.Context, s Sink) error {
	s.SetStatus("playing")
	var next time.Time
	for i, r := range p.recs {
		if r.Kind == world.EventTickClosed {
			if err := p.gate(ctx, s); err != nil {
				return err
			}
			if p.every > 0 {
				if d := time.Until(next); d > 0 {
					t := time.NewTimer(d)
					select {
					case <-t.C:
					case <-ctx.Done():
						t.Stop()
						return ctx.Err()
					}
				}
				next = time.Now().Add(p.every)
			}
		}
		s.Apply(r)
		if r.Kind != world.EventTickClosed {
			continue
		}
		f := dashboard.Frame{Tick: r.Tick, Metrics: p.metrics[r.Tick]}
		if p.w != nil {
			if err := p.step(r); err != nil {
				p.NoWorld = err.Error()
				p.w = nil
			} else if i == p.lastTick || s.WantsView() {
				v, _ := world.ViewOf(p.w)
				f.View = &v
			}
		}
		s.Frame(f)
	}
	return nil
}

// step re-applies one tick.closed's actions to the world.
func (p *Player) step(r events.Record) error {
	tp, err := events.Project([]events.Record{r})
	if err != nil || len(tp) != 1 {
		return fmt.Errorf("tick %d: the recorded actions cannot be read: %v", r.Tick, err)
	}
	if d := step(p.w, p.seed, tp[0]); d != nil && d.What != "world events" {
		return fmt.Errorf("tick %d: the world no longer replays (%s): the picture stops here", r.Tick, d.What)
	}
	return nil
}

// gate waits while the playback is paused and has no step to take.
func (p *Player) gate(ctx context.Context, s Sink) error {
	waited := false
	for {
		pass, paused := p.pause.Pass()
		if pass {
			if waited && !paused {
				s.SetStatus("playing")
			}
			return nil
		}
		if !waited {
			waited = true
			s.SetStatus("paused")
		}
		select {
		case <-p.pause.Changed():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Control pauses, resumes or steps the playback (dashboard.Controller).
func (p *Player) Control(action string) error {
	switch action {
	case dashboard.ActionPause:
		p.pause.Pause()
	case dashboard.ActionResume:
		p.pause.Resume()
	case dashboard.ActionStep:
		if !p.pause.Step() {
			return errors.New("step: the playback is not paused (pause it first)")
		}
	default:
		return fmt.Errorf("unknown action %q", action)
	}
	return nil
}
