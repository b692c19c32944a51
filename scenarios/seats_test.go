package scenarios_test

import (
	"reflect"
	"testing"

	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

func TestAgentIDs(t *testing.T) {
	tests := []struct {
		count int
		want  []world.AgentID
	}{
		{0, []world.AgentID{"bot"}},
		{1, []world.AgentID{"bot"}},
		{3, []world.AgentID{"bot-1", "bot-2", "bot-3"}},
	}
	for _, tt := range tests {
		if got := (scenarios.Agent{Name: "bot", Count: tt.count}).IDs(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("IDs with count %d = %v, want %v", tt.count, got, tt.want)
		}
	}
}

func TestSeats(t *testing.T) {
	tests := []struct {
		name   string
		agents []scenarios.Agent
		want   []world.Seat
	}{
		{"none", nil, nil},
		{"sorted by id, index within group", []scenarios.Agent{{Name: "zed", Count: 1}, {Name: "b", Count: 2}, {Name: "a", Count: 1}},
			[]world.Seat{{ID: "a", Group: "a", Index: 1}, {ID: "b-1", Group: "b", Index: 1}, {ID: "b-2", Group: "b", Index: 2}, {ID: "zed", Group: "zed", Index: 1}}},
		{"string order, not numeric", []scenarios.Agent{{Name: "p", Count: 10}},
			[]world.Seat{
				{ID: "p-1", Group: "p", Index: 1}, {ID: "p-10", Group: "p", Index: 10}, {ID: "p-2", Group: "p", Index: 2},
				{ID: "p-3", Group: "p", Index: 3}, {ID: "p-4", Group: "p", Index: 4}, {ID: "p-5", Group: "p", Index: 5},
				{ID: "p-6", Group: "p", Index: 6}, {ID: "p-7", Group: "p", Index: 7}, {ID: "p-8", Group: "p", Index: 8},
				{ID: "p-9", Group: "p", Index: 9},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scenarios.Scenario{Agents: tt.agents}
			if got := s.Seats(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Seats = %v, want %v", got, tt.want)
			}
		})
	}
}
