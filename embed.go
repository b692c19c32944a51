package terrarium

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/terrarium-sim/terrarium/agents/inproc"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

// ErrEnded is returned by Step once the run is over (the world ended, the
// tick limit was reached, or the host was closed); Wait has the result.
var ErrEnded = errors.New("the run has ended")

// ErrNotStarted is returned by Step and Wait before Start.
var ErrNotStarted = errors.New("the host has not started")

var errStarted = errors.New("host already ran or was closed")

// Start starts the run: it makes the run directory, the bus and the world,
// starts every agent and returns once all of them are ready and the loop
// runs (or with the error that stopped it; Wait then has the partial
// result). ctx governs the whole run: when it ends, the run is interrupted
// as by Close. Start may be called once.
func (h *Host) Start(ctx context.Context) error {
	h.runMu.Lock()
	if h.started {
		h.runMu.Unlock()
		return fmt.Errorf("start: %w", errStarted)
	}
	h.started = true
	ctx, cancel := context.WithCancel(ctx)
	h.cancel = cancel
	r := h.newRun()
	h.r = r
	h.runMu.Unlock()

	if h.events != nil {
		go h.events.run()
	}
	if h.uiFeed != nil {
		go h.uiFeed.run()
		go r.feedDashboard()
	}
	go func() {
		defer close(h.done)
		defer cancel()
		defer r.bridgeCancel()
		err := r.execute(ctx)
		h.res, h.err = r.res, err
		h.events.logClosed()
		h.uiFeed.logClosed()
		r.closeDashboard()
	}()
	select {
	case <-r.live:
		return nil
	case <-h.done:
		return h.err
	}
}

// Step runs exactly one tick of a host made with Config.StepManually and
// returns its report, from any goroutine, one call at a time. In lockstep
// and turn-based stepping it waits for the agents (up to the deadline); in
// realtime it never waits: it applies what arrived since the last call. It
// returns ErrEnded once the run is over and ctx's error if ctx ends first
// (the tick still runs).
func (h *Host) Step(ctx context.Context) (world.TickReport, error) {
	h.runMu.Lock()
	r := h.r
	h.runMu.Unlock()
	if r == nil {
		return world.TickReport{}, fmt.Errorf("step: %w", ErrNotStarted)
	}
	if !h.cfg.StepManually {
		return world.TickReport{}, fmt.Errorf("step: %w", world.ErrNotManual)
	}
	select {
	case <-r.live:
	case <-h.done:
		return world.TickReport{}, fmt.Errorf("step: %w", ErrEnded)
	case <-ctx.Done():
		return world.TickReport{}, ctx.Err()
	}
	rep, err := r.loop.Step(ctx)
	if errors.Is(err, world.ErrStopped) {
		return rep, fmt.Errorf("step: %w", ErrEnded)
	}
	return rep, err
}

// Wait waits until the run is over and returns what Run returns.
func (h *Host) Wait() (*Result, error) {
	h.runMu.Lock()
	started := h.started
	h.runMu.Unlock()
	if !started {
		return nil, fmt.Errorf("wait: %w", ErrNotStarted)
	}
	<-h.done
	if h.res == nil {
		return nil, errors.New("wait: the host was closed before it started")
	}
	return h.res, h.err
}

// Events returns the channel of the run's events (nil unless
// Config.EventBuffer > 0). It receives every event of the run, each once,
// in seq order, and is closed after the last one (run.finished). It is fed
// from the run's event stream through a consumer of its own, so it never
// slows the world and loses nothing: a game that does not read it for a
// while finds the events waiting in the stream; one still behind when the
// run ends gets the rest from events.jsonl. The channel may be read after
// Wait returned; Close gives up on what is unread and closes it.
func (h *Host) Events() <-chan events.Record {
	if h.events == nil {
		return nil
	}
	return h.events.ch
}

// checkEmbedding checks the embedding settings against the scenario. A
// scenario built in Go (no Path) is checked as a file would be.
func checkEmbedding(cfg *Config) error {
	sc := cfg.Scenario
	if sc.Path == "" {
		if err := sc.Check(); err != nil {
			return fmt.Errorf("new host: %w", err)
		}
	}
	if cfg.World == nil && sc.World.Impl.New == nil {
		return errors.New("new host: the scenario has no world: give it a world kind or set Config.World")
	}
	if _, turns := cfg.World.(world.Turns); cfg.World != nil && sc.Stepping == scenarios.SteppingTurnBased && !turns {
		return fmt.Errorf("new host: turn-based stepping needs a world that declares the order (implements world.Turns); %T does not", cfg.World)
	}
	var errs []error
	for _, a := range sc.Agents {
		if a.Runtime != scenarios.RuntimeInProc {
			continue
		}
		if cfg.InProc[a.Command] == nil {
			errs = append(errs, fmt.Errorf("agent %s: runtime inproc names %q, which Config.InProc does not supply (in-process agents exist only in a program that embeds the host)", a.Name, a.Command))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("new host: %w", err)
	}
	return nil
}

// newWorld is the run's world: the embedding program's, or the scenario's
// kind built from its settings.
func (r *run) newWorld() (world.World, error) {
	if r.h.cfg.World != nil {
		return r.h.cfg.World, nil
	}
	sc := r.h.sc
	w, err := sc.World.Impl.New(sc.World.Config, r.seats)
	if err != nil {
		return nil, fmt.Errorf("world %s: %w", sc.World.Kind, err)
	}
	return w, nil
}

// tickInterval is the time between realtime ticks at rate per second.
func tickInterval(rate float64) time.Duration {
	if rate <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / rate)
}

// startInProc starts the in-process agents, if there are any.
func (r *run) startInProc() error {
	agents := map[world.AgentID]inproc.Agent{}
	for _, seat := range r.seats {
		a := r.agents[seat.ID]
		if a.spec.Runtime != scenarios.RuntimeInProc {
			continue
		}
		ag := r.h.cfg.InProc[a.spec.Command](seat)
		if ag == nil {
			return fmt.Errorf("agent %s: the in-process factory %q returned no agent", seat.ID, a.spec.Command)
		}
		agents[seat.ID] = ag
	}
	if len(agents) == 0 {
		return nil
	}
	rt, err := inproc.New(inproc.Config{Agents: agents, DeliverAll: r.loop.DeliverAll, Grace: r.h.cfg.StopGrace, Logger: r.log.Named("inproc")})
	if err != nil {
		return err
	}
	r.inproc = rt
	rt.Start()
	return nil
}

// stopInProc stops the in-process agents (after the loop stopped, so no
// Deliver blocks).
func (r *run) stopInProc() {
	if r.inproc == nil {
		return
	}
	if err := r.inproc.Close(); err != nil {
		r.log.Error("stop in-process agents", "error", err)
	}
}

// BusURL is the embedded bus's client URL, for observers (the nats CLI, a
// subscriber in the game); "" before Start.
func (h *Host) BusURL() string {
	h.runMu.Lock()
	r := h.r
	h.runMu.Unlock()
	if r == nil {
		return ""
	}
	select {
	case <-r.live:
		return r.srv.ClientURL()
	default:
		return ""
	}
}
