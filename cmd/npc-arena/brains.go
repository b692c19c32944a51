package main

import (
	"encoding/json"
	"fmt"
)

// decide is every NPC's brain, the same whether it runs as its own process
// (chasers, through the builtin runtime) or in-process (runners, traders).
// It is a pure function of the observation.
func decide(raw json.RawMessage) (arenaAction, error) {
	var o arenaObs
	if err := json.Unmarshal(raw, &o); err != nil {
		return arenaAction{}, fmt.Errorf("observation: %w", err)
	}
	me := o.Me
	switch me.Role {
	case roleChaser:
		if t := nearest(me, o.Others, roleRunner); t != nil {
			return arenaAction{Move: toward(me, *t)}, nil
		}
	case roleRunner:
		if c := nearest(me, o.Others, roleChaser); c != nil && dist(&me, c) <= 6 {
			return arenaAction{Move: away(me, *c, o.W, o.H)}, nil
		}
		// Wander: a direction that changes every few ticks, different per runner.
		dirs := []string{"N", "E", "S", "W"}
		return arenaAction{Move: dirs[(int(o.Tick)/4+len(me.ID))%4]}, nil
	case roleTrader:
		if t := nearest(me, o.Others, roleTrader); t != nil {
			if dist(&me, t) <= 1 {
				return arenaAction{Trade: t.ID}, nil
			}
			return arenaAction{Move: toward(me, *t)}, nil
		}
	}
	return arenaAction{}, nil
}

func nearest(me entity, others []entity, role string) *entity {
	var best *entity
	for i := range others {
		o := &others[i]
		if o.Role == role && (best == nil || dist(&me, o) < dist(&me, best) || (dist(&me, o) == dist(&me, best) && o.ID < best.ID)) {
			best = o
		}
	}
	return best
}

// toward is the move that closes the larger gap to t.
func toward(me, t entity) string {
	dx, dy := t.X-me.X, t.Y-me.Y
	switch {
	case dx == 0 && dy == 0:
		return ""
	case abs(dx) >= abs(dy) && dx > 0:
		return "E"
	case abs(dx) >= abs(dy):
		return "W"
	case dy > 0:
		return "S"
	default:
		return "N"
	}
}

// away is the move (within the grid) that leaves it farthest from c.
func away(me, c entity, w, h int) string {
	best, bestD := "", dist(&me, &c)
	for _, m := range []string{"N", "E", "S", "W"} {
		dx, dy := delta(m)
		n := entity{X: clamp(me.X+dx, 0, w-1), Y: clamp(me.Y+dy, 0, h-1)}
		if d := dist(&n, &c); d > bestD {
			best, bestD = m, d
		}
	}
	return best
}
