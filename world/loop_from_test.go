package world_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/world"
)

// A loop given a LoopState goes on after its tick: the first observation is
// for the next tick, the repeat policy uses the restored last actions, the
// counts go on from the restored ones, and State reports them.
func TestLoopGoesOnFromState(t *testing.T) {
	h := newHarness(t, map[world.AgentID]agentSpec{
		"a": {value: 1},
		"b": {value: 2, at: map[world.Tick][]op{4: {}}}, // silent at tick 4
	})
	var states []world.LoopState
	var loop *world.Loop
	from := &world.LoopState{Tick: 3, Last: map[world.AgentID]json.RawMessage{"b": json.RawMessage("7")},
		Stats: map[world.AgentID]world.AgentStats{"a": {Actions: 3}, "b": {Actions: 3}}}
	sum, err := h.run(world.LoopConfig{Ticks: 5, Deadline: 100 * time.Millisecond, Missing: world.PolicyRepeat, From: from,
		OnTick: func(world.TickReport) { states = append(states, loop.State()) }},
		func(l *world.Loop) { loop = l })
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "steps", h.world.steps, []string{"4: a=1 b=7", "5: a=1 b=2"})
	if s := h.sends(); len(s) == 0 || (s[0] != "a@4" && s[0] != "b@4") {
		t.Errorf("first observations %v, want tick 4", s)
	}
	checkSummary(t, sum, 5, h.world.StateHash(), map[world.AgentID]world.AgentStats{
		"a": {Actions: 5}, "b": {Actions: 4, Missing: 1}})
	if len(states) != 2 || states[0].Tick != 4 || string(states[0].Last["b"]) != "7" || states[1].Tick != 5 || string(states[1].Last["b"]) != "2" || states[1].Stats["a"].Actions != 5 {
		t.Errorf("states %+v", states)
	}
	if string(from.Last["b"]) != "7" || from.Stats["a"].Actions != 3 {
		t.Error("the loop changed the LoopState it was given")
	}
}
