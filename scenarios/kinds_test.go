package scenarios_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

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

// multiConfig is the settings of test_multi, whose New reports each problem
// as its own error, most of them naming their setting.
type multiConfig struct {
	Mode    string             `hcl:"mode,optional"`
	Size    int                `hcl:"size,optional"`
	Weights map[string]float64 `hcl:"weights,optional"`
}

// settingErr is what test_multi's New returns for one setting: it has the
// WorldSetting method the scenarios package looks for.
type settingErr struct {
	setting, key, msg string
}

func (e settingErr) Error() string                  { return e.msg }
func (e settingErr) WorldSetting() (string, string) { return e.setting, e.key }

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
	world.Register(world.Kind{
		Name:      "test_multi",
		NewConfig: func() any { return &multiConfig{Mode: "fast", Size: 1} },
		New: func(config any, seats []world.Seat) (world.World, error) {
			c := config.(*multiConfig)
			var errs []error
			if c.Mode != "fast" && c.Mode != "slow" {
				errs = append(errs, settingErr{"mode", "", fmt.Sprintf("mode = %q: want \"fast\" or \"slow\"", c.Mode)})
			}
			if c.Size < 1 {
				errs = append(errs, settingErr{"size", "", fmt.Sprintf("size = %d: want at least 1", c.Size)})
			}
			sum := 0.0
			for _, k := range slices.Sorted(maps.Keys(c.Weights)) {
				if k != "x" && k != "y" {
					errs = append(errs, settingErr{"weights", k, fmt.Sprintf("weights: unknown key %q", k)})
				}
				sum += c.Weights[k]
			}
			if sum > 10 {
				errs = append(errs, settingErr{"weights", "", fmt.Sprintf("weights: the sum is %g, more than 10", sum)})
			}
			if len(seats) > 2 {
				errs = append(errs, fmt.Errorf("at most 2 agents; got %d", len(seats)))
			}
			if len(seats) > 3 {
				errs = append(errs, errors.New("and really, more than 3 is far too many"))
			}
			return nil, errors.Join(errors.Join(errs...))
		},
	})
	builtin.Register("test_prog", builtin.Respond(func(context.Context, sdk.Observation) (any, error) { return nil, nil }))
	builtin.Register("test_other", builtin.Respond(nil))
}
