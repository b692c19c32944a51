package builtin

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/terrarium-sim/terrarium/agents/sdk"
)

// Scripted agents of the town world (world/town), for scenarios that mix
// them with LLM agents.
func init() {
	Register("town_crier", Respond(townCrier))
	Register("town_walker", Respond(townWalker))
}

type townObs struct {
	Tick      uint64   `json:"tick"`
	Place     string   `json:"place"`
	Places    []string `json:"places"`
	ItemsHere []string `json:"items_here"`
}

// townCrier stays where it starts and calls the hour every third tick.
func townCrier(_ context.Context, obs sdk.Observation) (any, error) {
	var o townObs
	if err := json.Unmarshal(obs.Data, &o); err != nil {
		return nil, fmt.Errorf("town observation: %w", err)
	}
	if o.Tick%3 == 1 {
		return map[string]any{"do": "say", "text": fmt.Sprintf("Hear ye! It is tick %d in the %s.", o.Tick, o.Place)}, nil
	}
	return map[string]any{"do": "wait"}, nil
}

// townWalker picks up what lies where it stands, else walks to the next place.
func townWalker(_ context.Context, obs sdk.Observation) (any, error) {
	var o townObs
	if err := json.Unmarshal(obs.Data, &o); err != nil {
		return nil, fmt.Errorf("town observation: %w", err)
	}
	if len(o.ItemsHere) > 0 {
		return map[string]any{"do": "take", "item": o.ItemsHere[0]}, nil
	}
	for i, p := range o.Places {
		if p == o.Place {
			return map[string]any{"do": "move", "to": o.Places[(i+1)%len(o.Places)]}, nil
		}
	}
	return map[string]any{"do": "wait"}, nil
}
