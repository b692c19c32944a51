package world

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// lateHistory is how many closed ticks keep their close time, for the
// late_us of late actions (older late actions are recorded with late_ticks
// only).
const lateHistory = 4096

// pendingAction is an agent's latest action not yet applied.
type pendingAction struct {
	a  Action
	at time.Time // when the loop received it
}

// runRealtime steps the world at a fixed rate (or at every Step call when
// Manual). Tick t's window opens when tick t-1 is applied: every live agent
// the world observes gets its observation for t, with the boundary as its
// deadline. An action received before the boundary is applied at t; one
// received later is applied at the next tick and recorded with how late it
// was. An agent's latest action wins (an older one is counted as replaced).
// The loop never waits for an agent. When a tick finishes after the next
// boundary passed, the overdue ticks run back to back, at most MaxCatchUp of
// them; the rest of the lag is dropped and a tick.lag event says so.
func (l *Loop) runRealtime(ctx context.Context) (Summary, error) {
	cfg := l.cfg
	live := make(map[AgentID]bool, len(cfg.Seats))
	for _, s := range cfg.Seats {
		live[s.ID] = true
	}
	sum := Summary{Stats: make(map[AgentID]AgentStats, len(live)), Hash: cfg.World.StateHash()}
	last := make(map[AgentID]json.RawMessage) // last applied data, for "repeat"
	lastTag := make(map[AgentID]Tick)         // tick of the agent's last applied own action
	slot := make(map[AgentID]pendingAction)   // latest action per agent, not yet applied
	closedAt := make(map[Tick]time.Time)      // when each recent tick was applied
	observed := make(map[AgentID]bool)        // observed at the open tick
	var closed, open Tick                     // last applied tick; the tick being collected
	var windowStart time.Time                 // when the open tick's observations went out
	l.last, l.sum = last, &sum                // for State (checkpoints)

	interval := cfg.TickInterval
	base, baseTick := l.clock.Now(), Tick(0)
	boundary := func(t Tick) time.Time {
		return base.Add(time.Duration(int64(t)-int64(baseTick)) * interval)
	}

	var tc tickClosed
	noisy := map[AgentID]int{}
	refused := func(kind string, id AgentID, data map[string]any) {
		noisy[id]++
		if noisy[id] <= MaxRefusalEvents {
			cfg.Events.Emit(kind, closed, id, data)
		}
	}
	bump := func(id AgentID, f func(*AgentStats)) {
		st := sum.Stats[id]
		f(&st)
		sum.Stats[id] = st
	}
	judge := func(a Action) {
		if _, known := live[a.Agent]; !known {
			return
		}
		switch {
		case a.Tick == 0 || a.Tick > open:
			bump(a.Agent, func(s *AgentStats) { s.Rejected++ })
			refused(EventActionRejected, a.Agent, map[string]any{"action_tick": a.Tick, "reason": RejectFuture})
			return
		case a.Tick <= lastTag[a.Agent]:
			// An action for this tick or a later one was applied already.
			bump(a.Agent, func(s *AgentStats) { s.Late++ })
			refused(EventActionLate, a.Agent, map[string]any{"action_tick": a.Tick})
			return
		}
		p, had := slot[a.Agent]
		if had && p.a.Tick > a.Tick {
			bump(a.Agent, func(s *AgentStats) { s.Late++ }) // older than the one waiting
			refused(EventActionLate, a.Agent, map[string]any{"action_tick": a.Tick})
			return
		}
		// Taken in now, before the world judges it: its arrival time does
		// not include Validate's (nor whatever the clock does meanwhile).
		at := l.clock.Now()
		if err := cfg.World.Validate(a); err != nil {
			bump(a.Agent, func(s *AgentStats) { s.Rejected++ })
			refused(EventActionRejected, a.Agent, map[string]any{"action_tick": a.Tick, "reason": RejectInvalid, "detail": err.Error()})
			return
		}
		if had {
			bump(a.Agent, func(s *AgentStats) { s.Replaced++ })
		}
		slot[a.Agent] = pendingAction{a: a, at: at}
	}
	drainInbox := func() {
		q := l.takeInbox()
		for _, a := range q {
			judge(a)
		}
		l.giveBack(q)
	}
	membership := func() {
		drainInbox() // what it sent before it left stands
		for _, m := range l.members() {
			if _, known := live[m.id]; known {
				live[m.id] = m.live // a returning agent is observed from the next tick on
			}
		}
	}

	openTick := func(t Tick) error {
		open = t
		clear(observed)
		windowStart = l.clock.Now()
		var deadline time.Time
		switch {
		case !cfg.Manual:
			deadline = boundary(t)
		case interval > 0:
			deadline = windowStart.Add(interval)
		default:
			deadline = windowStart.Add(cfg.Deadline)
		}
		for _, s := range cfg.Seats {
			if !live[s.ID] {
				continue
			}
			obs, ok, err := cfg.World.Observe(s.ID, t)
			if err != nil {
				return fmt.Errorf("tick %d: observe %s: %w", t, s.ID, err)
			}
			if !ok {
				continue
			}
			observed[s.ID] = true
			_ = cfg.Agents.Send(s.ID, t, deadline, obs) // a failed send is logged by the host
		}
		sendsDone(cfg.Agents, t)
		return nil
	}

	apply := func(t Tick) (TickReport, error) {
		now := l.clock.Now()
		var behind time.Duration
		if !cfg.Manual {
			behind = max(now.Sub(boundary(t)), 0)
		}
		actions := make([]Action, 0, len(observed))
		applied := make([]AppliedAction, 0, len(observed))
		var answered, missing []AgentID
		for _, s := range cfg.Seats {
			id := s.ID
			if !observed[id] {
				continue
			}
			rec := AppliedAction{Agent: id}
			var a Action
			if p, ok := slot[id]; ok {
				a = p.a
				delete(slot, id)
				lastTag[id] = a.Tick
				answered = append(answered, id)
				if a.Tick < t {
					rec.ActionTick, rec.LateTicks = a.Tick, t-a.Tick
					if c, ok := closedAt[a.Tick]; ok {
						us := p.at.Sub(c).Microseconds()
						rec.LateUS = &us
					}
				}
			} else {
				if !live[id] {
					continue // left without acting: no action
				}
				missing = append(missing, id)
				bump(id, func(s *AgentStats) { s.Missing++ })
				a = Action{Agent: id, Tick: t}
				if prev, had := last[id]; had && cfg.Missing == PolicyRepeat {
					a.Data = prev
					rec.Filled = PolicyRepeat
				} else {
					a.Data = cfg.World.DefaultAction(id, t)
					rec.Filled = PolicyDefault
				}
			}
			last[id] = a.Data
			rec.Data = a.Data
			actions = append(actions, a)
			applied = append(applied, rec)
		}
		res, err := cfg.World.Step(t, actions, TickRNG(cfg.Seed, t))
		if err != nil {
			return TickReport{}, fmt.Errorf("tick %d: step: %w", t, err)
		}
		for _, id := range answered {
			bump(id, func(s *AgentStats) { s.Actions++ })
		}
		closed = t
		l.closed = t
		closedAt[t] = now
		delete(closedAt, t-lateHistory)
		sum.Ticks = t
		sum.Hash = cfg.World.StateHash()
		elapsed := l.clock.Now().Sub(windowStart)
		for _, e := range res.Events {
			kind := e.Kind
			if !strings.Contains(kind, ".") {
				kind = "world." + kind
			}
			cfg.Events.Emit(kind, t, e.Agent, e.Fields)
		}
		for _, s := range cfg.Seats {
			if n := noisy[s.ID] - MaxRefusalEvents; n > 0 {
				cfg.Events.Emit(EventActionRejected, t, s.ID, map[string]any{"reason": RejectSuppressed, "count": n})
			}
		}
		clear(noisy)
		tc.emit(cfg.Events, t, applied, sum.Hash, elapsed.Microseconds(), behind)
		return TickReport{Tick: t, Elapsed: elapsed, Metrics: res.Metrics, Hash: sum.Hash, Answered: answered, Missing: missing, Behind: behind}, nil
	}

	finished := func() bool {
		return cfg.World.Done() || (cfg.Ticks > 0 && closed >= cfg.Ticks)
	}
	if finished() {
		return sum, nil
	}
	if err := openTick(1); err != nil {
		return sum, err
	}
	lagging := false // in a lag episode: reported once until back on rate
	for {
		t := open
		var reply chan stepResult
		if cfg.Manual {
			for reply == nil {
				select {
				case <-l.inReady:
					drainInbox()
				case <-l.memCh:
					membership()
				case reply = <-l.steps:
				case <-ctx.Done():
					return sum, ctx.Err()
				}
			}
			drainInbox() // received before Step was called
		} else if b, now := boundary(t), l.clock.Now(); now.Before(b) {
			lagging = false
			timer := l.clock.NewTimer(b.Sub(now))
		wait:
			for {
				select {
				case <-l.inReady:
					drainInbox()
				case <-l.memCh:
					membership()
				case <-timer.C():
					break wait
				case <-ctx.Done():
					timer.Stop()
					return sum, ctx.Err()
				}
			}
		} else {
			select {
			case <-l.memCh:
				membership()
			default:
				drainInbox()
			}
		}

		rep, err := apply(t)
		if err != nil {
			return sum, err
		}
		if cfg.OnTick != nil {
			cfg.OnTick(rep)
		}
		if reply != nil {
			reply <- stepResult{rep: rep}
		}
		if finished() {
			return sum, nil
		}
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		if !cfg.Manual {
			waited, err := l.gate(ctx, t, drainInbox, membership)
			if err != nil {
				return sum, err
			}
			if waited {
				// The rate starts afresh: tick t+1 is one interval away.
				base, baseTick, lagging = l.clock.Now(), t, false
			}
			now, due := l.clock.Now(), boundary(t+1)
			if !now.Before(due) {
				behind := int(now.Sub(due)/interval) + 1 // overdue ticks, t+1 included
				catchUp := min(behind, cfg.MaxCatchUp)
				if behind > cfg.MaxCatchUp {
					// Keep catchUp ticks overdue; the rest of the lag is dropped.
					base, baseTick = now.Add(-time.Duration(catchUp-1)*interval), t+1
				}
				if behind > cfg.MaxCatchUp || (behind > 1 && !lagging) {
					lagging = true
					cfg.Events.Emit(EventTickLag, t, "", map[string]any{
						"behind_ticks": behind, "caught_up": catchUp, "dropped_ticks": behind - catchUp,
						"lag_us": now.Sub(due).Microseconds(), "max_catch_up": cfg.MaxCatchUp,
					})
				}
			}
		}
		if err := openTick(t + 1); err != nil {
			return sum, err
		}
	}
}
