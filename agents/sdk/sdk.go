// Package sdk makes a Go program a Terrarium agent: connect with the
// credentials the host put in the environment, receive observations, answer
// with actions, stop cleanly.
package sdk

import (
	"context"
	"encoding/json"
	"time"

	"github.com/terrarium-sim/terrarium/world"
)

// Observation is one tick's observation for this agent.
type Observation struct {
	Tick     world.Tick
	Deadline time.Time
	Data     json.RawMessage
}

// Handler returns the action for an observation. The returned value is
// marshalled to JSON (a json.RawMessage is sent as is).
type Handler func(ctx context.Context, obs Observation) (any, error)

// Agent is a connected agent. (Implementation: agents/sdk owner.)
type Agent struct{}

// Run answers observations with h until the run ends or ctx is done.
func (a *Agent) Run(ctx context.Context, h Handler) error { panic("TODO") }
