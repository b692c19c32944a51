package scenarios_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/world"
)

// The world kinds and builtin programs the tests' scenario files name. The
// real kinds are not imported: the tests only need the registries.

type testConfig struct {
	Rounds  int         `hcl:"rounds,optional"`
	Players int         `hcl:"players,optional"`
	Label   string      `hcl:"label,optional"`
	Weights []float64   `hcl:"weights,optional"`
	Payoff  *testPayoff `hcl:"payoff,block"`
	Zones   []testZone  `hcl:"zone,block"`
}

type testPayoff struct {
	Win  int `hcl:"win"`
	Lose int `hcl:"lose,optional"`
}

type testZone struct {
	Name string `hcl:"name,label"`
	Size int    `hcl:"size"`
}

type requiredConfig struct {
	Size int        `hcl:"size"`
	Rule testPayoff `hcl:"rule,block"`
}

type badTagConfig struct {
	Rest int `hcl:"rest,bogus"`
}

func init() {
	world.Register(world.Kind{
		Name:      "test_kind",
		Doc:       "a world for the scenarios tests",
		NewConfig: func() any { return &testConfig{Rounds: 10, Label: "none"} },
		New: func(config any, seats []world.Seat) (world.World, error) {
			c := config.(*testConfig)
			if c.Rounds < 0 {
				return nil, fmt.Errorf("rounds must be >= 0, got %d", c.Rounds)
			}
			if c.Players != 0 && c.Players != len(seats) {
				return nil, fmt.Errorf("players = %d but the scenario has %d agents", c.Players, len(seats))
			}
			return nil, nil
		},
	})
	world.Register(world.Kind{
		Name:      "test_required",
		NewConfig: func() any { return &requiredConfig{} },
		New:       func(any, []world.Seat) (world.World, error) { return nil, nil },
	})
	world.Register(world.Kind{
		Name:      "test_broken",
		NewConfig: func() any { return requiredConfig{} }, // not a pointer: a bug in the kind
		New:       func(any, []world.Seat) (world.World, error) { return nil, errors.New("unreachable") },
	})
	world.Register(world.Kind{
		Name:      "test_badtag",
		NewConfig: func() any { return &badTagConfig{} },
		New:       func(any, []world.Seat) (world.World, error) { return nil, nil },
	})
	builtin.Register("test_prog", builtin.Respond(func(context.Context, sdk.Observation) (any, error) { return nil, nil }))
	builtin.Register("test_other", builtin.Respond(nil))
}
