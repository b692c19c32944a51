package builtin

import (
	"context"
	"fmt"
	"testing"

	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/world"
)

// The classic models at full size, driven in-process: the world is stepped
// the way the loop steps it (observe every agent, then Step with the actions
// sorted by id and world.TickRNG), and every agent's action comes from the
// very handler its builtin process runs. The process-level checks (real
// agent processes over the bus, at smaller sizes) are in the root package's
// classics_test.go.

// seatsOf makes count seats per group, as scenarios.Scenario.Seats does.
func seatsOf(groups ...any) []world.Seat {
	var out []world.Seat
	for k := 0; k < len(groups); k += 2 {
		g, n := groups[k].(string), groups[k+1].(int)
		for i := 1; i <= n; i++ {
			id := g
			if n > 1 {
				id = fmt.Sprintf("%s-%d", g, i)
			}
			out = append(out, world.Seat{ID: world.AgentID(id), Group: g, Index: i})
		}
	}
	sortSeats(out)
	return out
}

func sortSeats(s []world.Seat) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].ID < s[j-1].ID; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// drive runs w for at most ticks ticks with the named builtin program for
// every seat (program[group]), each made with world.AgentSeed, and calls
// each with the metrics of every tick.
func drive(t testing.TB, w world.World, seats []world.Seat, seed uint64, program map[string]string, args map[string][]string, ticks int, each func(tick int, m map[string]float64)) {
	t.Helper()
	if s, ok := w.(world.Seeder); ok {
		if err := s.Seed(seed); err != nil {
			t.Fatal(err)
		}
	}
	hs := make(map[world.AgentID]sdk.Handler, len(seats))
	for _, s := range seats {
		mk, ok := makers[program[s.Group]]
		if !ok {
			t.Fatalf("no builtin maker %q for group %s", program[s.Group], s.Group)
		}
		p, err := parseParams(args[s.Group])
		if err != nil {
			t.Fatal(err)
		}
		h, err := mk(world.AgentSeed(seed, s.ID), p)
		if err != nil {
			t.Fatal(err)
		}
		hs[s.ID] = h
	}
	ctx := context.Background()
	for tick := world.Tick(1); int(tick) <= ticks && !w.Done(); tick++ {
		var acts []world.Action
		for _, s := range seats {
			obs, ok, err := w.Observe(s.ID, tick)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				continue
			}
			v, err := hs[s.ID](ctx, sdk.Observation{Tick: tick, Data: obs})
			if err != nil {
				t.Fatal(err)
			}
			data, err := marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			a := world.Action{Agent: s.ID, Tick: tick, Data: data}
			if err := w.Validate(a); err != nil {
				t.Fatalf("tick %d agent %s: %v (action %s)", tick, s.ID, err, data)
			}
			acts = append(acts, a)
		}
		res, err := w.Step(tick, acts, world.TickRNG(seed, tick))
		if err != nil {
			t.Fatal(err)
		}
		if each != nil {
			each(int(tick), res.Metrics)
		}
	}
}
