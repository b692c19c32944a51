package grid

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Rule set names (the world block's rules setting).
const (
	RulesSchelling    = "schelling"
	RulesBoltzmann    = "boltzmann"
	RulesLife         = "life"
	RulesPredatorPrey = "predator_prey"
)

// Topologies and neighbourhoods.
const (
	Torus      = "torus"
	Bounded    = "bounded"
	Moore      = "moore"
	VonNeumann = "von_neumann"
)

// Life patterns that ship (the pattern setting).
var lifePatterns = map[string][][2]int{
	"blinker": {{0, 0}, {1, 0}, {2, 0}},
	"block":   {{0, 0}, {1, 0}, {0, 1}, {1, 1}},
	// The glider moves one cell down and one right every 4 generations (y grows downwards).
	"glider": {{1, 0}, {2, 1}, {0, 2}, {1, 2}, {2, 2}},
	// Diehard dies out after 130 generations.
	"diehard": {{6, 0}, {0, 1}, {1, 1}, {1, 2}, {5, 2}, {6, 2}, {7, 2}},
}

// Config is the world block of a grid scenario. The scenarios package
// decodes it with gohcl; NewConfig gives the defaults. Settings of one rule
// set are refused (when changed from their default) under another.
type Config struct {
	// Rules is the rule set: "schelling", "boltzmann", "life" or "predator_prey". Required.
	Rules string `hcl:"rules"`
	// Width and Height are the grid's size in cells (default 20 x 20).
	Width  int `hcl:"width,optional"`
	Height int `hcl:"height,optional"`
	// Topology is "torus" (default: edges wrap) or "bounded".
	Topology string `hcl:"topology,optional"`
	// Neighbourhood is "moore" (default: 8 cells) or "von_neumann" (4 cells).
	Neighbourhood string `hcl:"neighbourhood,optional"`
	// Horizon is the last tick: the world is done after it (default 1000).
	Horizon int `hcl:"horizon,optional"`
	// MeasureFrom is the first tick the result's per-metric summary counts (default 1).
	MeasureFrom int `hcl:"measure_from,optional"`
	// Snapshots lists ticks (0: the initial state) at which the world
	// reports a world.grid event with the whole grid; SnapshotEvery adds
	// every k-th tick.
	Snapshots     []int `hcl:"snapshots,optional"`
	SnapshotEvery int   `hcl:"snapshot_every,optional"`

	// Threshold (schelling) is the share of like neighbours an agent
	// wants; the observation carries it (default 0.3).
	Threshold float64 `hcl:"threshold,optional"`

	// Pattern (life) is the initial pattern: "blinker", "block", "glider",
	// "diehard", or "" with Cells. At is where its top-left corner goes
	// (default: the grid's centre). Block is the side of the square of
	// cells each agent drives (default 8).
	Pattern string  `hcl:"pattern,optional"`
	Cells   [][]int `hcl:"cells,optional"`
	At      []int   `hcl:"at,optional"`
	Block   int     `hcl:"block,optional"`

	// Predator-prey (after Wilensky's NetLogo Wolf Sheep Predation). Prey
	// and Predator name the agent blocks (default "sheep" and "wolves");
	// each block's count is its pool of seats, of which InitialPrey and
	// InitialPredators start alive.
	Prey              string  `hcl:"prey,optional"`
	Predator          string  `hcl:"predator,optional"`
	InitialPrey       int     `hcl:"initial_prey,optional"`
	InitialPredators  int     `hcl:"initial_predators,optional"`
	PreyGain          int     `hcl:"prey_gain,optional"`
	PredatorGain      int     `hcl:"predator_gain,optional"`
	PreyReproduce     float64 `hcl:"prey_reproduce,optional"`
	PredatorReproduce float64 `hcl:"predator_reproduce,optional"`
	Grass             bool    `hcl:"grass,optional"`
	GrassRegrowth     int     `hcl:"grass_regrowth,optional"`
}

// NewConfig returns a Config with its defaults set.
func NewConfig() *Config {
	return &Config{
		Width: 20, Height: 20, Topology: Torus, Neighbourhood: Moore,
		Horizon: 1000, MeasureFrom: 1,
		Threshold: 0.3,
		Block:     8,
		Prey:      "sheep", Predator: "wolves",
		InitialPrey: 100, InitialPredators: 50,
		PreyGain: 4, PredatorGain: 20,
		PreyReproduce: 0.04, PredatorReproduce: 0.05,
		Grass: true, GrassRegrowth: 30,
	}
}

// settingError is a problem with one setting; WorldSetting lets the
// scenarios package report it at that setting's line.
type settingError struct {
	setting string
	err     error
}

func (e *settingError) Error() string                  { return e.err.Error() }
func (e *settingError) Unwrap() error                  { return e.err }
func (e *settingError) WorldSetting() (string, string) { return e.setting, "" }

func settingErrorf(setting, format string, args ...any) error {
	return &settingError{setting: setting, err: fmt.Errorf(format, args...)}
}

// MaxCells bounds width x height (cells are sparse, but a position must fit).
const MaxCells = 1 << 40

// check reports every problem of c at once.
func (c *Config) check() error {
	var errs []error
	switch c.Rules {
	case RulesSchelling, RulesBoltzmann, RulesLife, RulesPredatorPrey:
	default:
		errs = append(errs, settingErrorf("rules", "rules = %q: unknown rule set (known: %s, %s, %s, %s)", c.Rules, RulesBoltzmann, RulesLife, RulesPredatorPrey, RulesSchelling))
	}
	if c.Width < 1 || c.Height < 1 || float64(c.Width)*float64(c.Height) > MaxCells {
		errs = append(errs, settingErrorf("width", "width = %d, height = %d: each must be at least 1 and width x height at most 2^40", c.Width, c.Height))
	}
	if c.Topology != Torus && c.Topology != Bounded {
		errs = append(errs, settingErrorf("topology", "topology = %q: want %q or %q", c.Topology, Torus, Bounded))
	}
	if c.Neighbourhood != Moore && c.Neighbourhood != VonNeumann {
		errs = append(errs, settingErrorf("neighbourhood", "neighbourhood = %q: want %q or %q", c.Neighbourhood, Moore, VonNeumann))
	}
	if c.Horizon < 1 {
		errs = append(errs, settingErrorf("horizon", "horizon = %d: want at least 1 tick", c.Horizon))
	}
	if c.MeasureFrom < 1 {
		errs = append(errs, settingErrorf("measure_from", "measure_from = %d: ticks start at 1", c.MeasureFrom))
	}
	for _, t := range c.Snapshots {
		if t < 0 {
			errs = append(errs, settingErrorf("snapshots", "snapshots: tick %d is negative", t))
		}
	}
	if c.SnapshotEvery < 0 {
		errs = append(errs, settingErrorf("snapshot_every", "snapshot_every = %d: want 0 (off) or more", c.SnapshotEvery))
	}
	d := NewConfig()
	only := func(setting, rules string, changed bool) {
		if changed && c.Rules != rules {
			errs = append(errs, settingErrorf(setting, "%s is a setting of rules = %q; this world has rules = %q (remove it)", setting, rules, c.Rules))
		}
	}
	only("threshold", RulesSchelling, c.Threshold != d.Threshold)
	only("pattern", RulesLife, c.Pattern != d.Pattern)
	only("cells", RulesLife, c.Cells != nil)
	only("at", RulesLife, c.At != nil)
	only("block", RulesLife, c.Block != d.Block)
	pp := RulesPredatorPrey
	only("prey", pp, c.Prey != d.Prey)
	only("predator", pp, c.Predator != d.Predator)
	only("initial_prey", pp, c.InitialPrey != d.InitialPrey)
	only("initial_predators", pp, c.InitialPredators != d.InitialPredators)
	only("prey_gain", pp, c.PreyGain != d.PreyGain)
	only("predator_gain", pp, c.PredatorGain != d.PredatorGain)
	only("prey_reproduce", pp, c.PreyReproduce != d.PreyReproduce)
	only("predator_reproduce", pp, c.PredatorReproduce != d.PredatorReproduce)
	only("grass", pp, c.Grass != d.Grass)
	only("grass_regrowth", pp, c.GrassRegrowth != d.GrassRegrowth)

	switch c.Rules {
	case RulesSchelling:
		if math.IsNaN(c.Threshold) || c.Threshold < 0 || c.Threshold > 1 {
			errs = append(errs, settingErrorf("threshold", "threshold = %g: want a share between 0 and 1", c.Threshold))
		}
	case RulesLife:
		if c.Block < 1 {
			errs = append(errs, settingErrorf("block", "block = %d: each agent drives a block x block square; want at least 1", c.Block))
		}
		if c.Pattern != "" && c.Cells != nil {
			errs = append(errs, settingErrorf("cells", "set pattern or cells, not both"))
		}
		if c.Pattern == "" && c.Cells == nil {
			errs = append(errs, settingErrorf("pattern", "life needs an initial pattern: pattern = %q, or cells = [[x, y], ...]", strings.Join(LifePatterns(), `" | "`)))
		}
		if c.Pattern != "" {
			if _, ok := lifePatterns[c.Pattern]; !ok {
				errs = append(errs, settingErrorf("pattern", "pattern = %q: unknown (known: %s)", c.Pattern, strings.Join(LifePatterns(), ", ")))
			}
		}
		for i, xy := range c.Cells {
			if len(xy) != 2 {
				errs = append(errs, settingErrorf("cells", "cells[%d]: want [x, y], got %d numbers", i, len(xy)))
			} else if xy[0] < 0 || xy[1] < 0 || xy[0] >= c.Width || xy[1] >= c.Height {
				errs = append(errs, settingErrorf("cells", "cells[%d] = [%d, %d] is outside the %dx%d grid", i, xy[0], xy[1], c.Width, c.Height))
			}
		}
		if c.At != nil && len(c.At) != 2 {
			errs = append(errs, settingErrorf("at", "at: want [x, y], got %d numbers", len(c.At)))
		}
	case RulesPredatorPrey:
		if c.Prey == c.Predator {
			errs = append(errs, settingErrorf("predator", "prey and predator name the same agent block %q", c.Prey))
		}
		if c.InitialPrey < 0 || c.InitialPredators < 0 {
			errs = append(errs, settingErrorf("initial_prey", "initial_prey and initial_predators must be >= 0"))
		}
		if c.PreyGain < 0 || c.PredatorGain < 0 {
			errs = append(errs, settingErrorf("prey_gain", "prey_gain and predator_gain must be >= 0"))
		}
		for _, p := range []struct {
			name string
			v    float64
		}{{"prey_reproduce", c.PreyReproduce}, {"predator_reproduce", c.PredatorReproduce}} {
			if math.IsNaN(p.v) || p.v < 0 || p.v > 1 {
				errs = append(errs, settingErrorf(p.name, "%s = %g: want a probability between 0 and 1", p.name, p.v))
			}
		}
		if c.GrassRegrowth < 1 {
			errs = append(errs, settingErrorf("grass_regrowth", "grass_regrowth = %d: want at least 1 tick", c.GrassRegrowth))
		}
	}
	return errors.Join(errs...)
}

// LifePatterns lists the named life patterns, sorted.
func LifePatterns() []string { return []string{"blinker", "block", "diehard", "glider"} }
