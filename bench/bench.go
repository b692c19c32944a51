package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Options configure Run.
type Options struct {
	// Logger is the root logger (default: discard). Runs log at its level;
	// at Info a run of 1,000 agents is quiet.
	Logger hclog.Logger
	// Dir is the scratch directory for run directories (default: a new
	// temporary directory, removed at the end). With agent users on it
	// must be reachable by other users.
	Dir string
	// Executable is the binary re-executed as the builtin agents (default
	// os.Executable()); it must call builtin.Main first thing.
	Executable string
	// Short is the CI mode: the smallest sizes, few ticks, two runs a side.
	Short bool
	// Runs is how many runs each side gets per size (default 3; Short 2).
	Runs int
	// Sizes are the lockstep agent counts (default 1, 10, 100, 1000; Short 1, 10).
	Sizes []int
	// Ticks overrides the ticks per run (0: per size, about two seconds).
	Ticks int
	// Env holds extra variables for every agent on both sides.
	Env map[string]string
	// AgentUsers is "on", "off" or "auto" (default: on when root).
	AgentUsers string
	// Progress, if set, gets one line per finished run.
	Progress io.Writer
	// Only, if "terrarium" or "baseline", runs that side alone (for
	// profiling one side; the report then has no ratios).
	Only string
	// LockstepOnly runs the lockstep cases only: no pool, lease or
	// observer case.
	LockstepOnly bool
}

// Stats summarises one figure over the runs of one side.
type Stats struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Runs   []float64 `json:"runs"`
}

func stats(xs []float64) Stats {
	if len(xs) == 0 {
		return Stats{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stats{Median: m, Min: s[0], Max: s[len(s)-1], Runs: xs}
}

// Case is one figure, Terrarium's and the baseline's.
type Case struct {
	Name   string `json:"name"`   // e.g. "lockstep ticks/s"
	Agents int    `json:"agents"` // N
	Unit   string `json:"unit"`
	// HigherIsBetter tells how to read Ratio.
	HigherIsBetter bool  `json:"higher_is_better"`
	Terrarium      Stats `json:"terrarium"`
	Baseline       Stats `json:"baseline"`
	// Ratio is Terrarium's median / the baseline's (0 when not measured).
	Ratio float64 `json:"ratio"`
	// Target describes the goal, if the case has one ("ratio >= 0.8").
	Target string `json:"target,omitempty"`
	// Met says whether the target was met (nil: no target or not measured).
	Met *bool `json:"met,omitempty"`
	// NotMeasured, when set, says why the case has no figures.
	NotMeasured string `json:"not_measured,omitempty"`
}

// Report is one invocation's results.
type Report struct {
	Machine Machine       `json:"machine"`
	Short   bool          `json:"short"`
	Runs    int           `json:"runs"`
	Users   bool          `json:"agent_users"` // agents ran as their own users, on both sides
	Payload Payload       `json:"payload"`
	Cases   []Case        `json:"cases"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Payload is the message sizes both sides send, in bytes.
type Payload struct {
	Observation int `json:"observation"`
	Action      int `json:"action"`
}

// defaultTicks is about two seconds of lockstep at each size on a 2-core
// machine (see docs/benchmarks.md for the measured rates).
func defaultTicks(n int, short bool) int {
	switch {
	case short && n <= 1:
		return 300
	case short:
		return 100
	case n <= 1:
		return 4000
	case n <= 10:
		return 2000
	case n <= 100:
		return 300
	default:
		return 40
	}
}

// spawnSizes are the sizes whose runs report spawn-to-ready, memory and
// descriptors per agent.
func spawnSizes(short bool) []int {
	if short {
		return []int{10}
	}
	return []int{100, 1000}
}

// side is one run's figures.
// A side's figures in the order side.figures gives them.
const (
	figTicks = iota
	figP50
	figP99
	figHostCPU
	figAgentCPU
	figReady
	figRSS
	figFDs
)

// figures lists s's figures (indexed by the fig constants), for
// alternate and addCase.
func (s side) figures() []float64 {
	return []float64{s.ticksPerSec, s.p50us, s.p99us, s.hostCPUus, s.agentCPUus, s.readyMS, s.rssKiB, s.fds}
}

// showSide is the lockstep cases' progress line for one run.
func showSide(f []float64) string {
	return fmt.Sprintf("%8.1f ticks/s  p50 %7.0f µs  p99 %7.0f µs  cpu/trip host %5.1f agents %5.1f µs  ready %6.0f ms  %6.1f KiB/agent  %4.1f fds/agent",
		f[figTicks], f[figP50], f[figP99], f[figHostCPU], f[figAgentCPU], f[figReady], f[figRSS], f[figFDs])
}

// target sets c's target and whether it was met (none without
// Terrarium's runs, as with --only baseline).
func target(c *Case, text string, met bool) {
	c.Target = text
	if len(c.Terrarium.Runs) > 0 {
		c.Met = &met
	}
}

type side struct {
	ticksPerSec, p50us, p99us float64
	readyMS                   float64 // first spawn to last ready
	rssKiB, fds               float64 // growth per agent
	// CPU per agent round trip (one observation and its action) while
	// ticking, in µs: the host process's and the agents'.
	hostCPUus, agentCPUus float64
}

// cpuPerRoundTrip divides the CPU used from tick 1 to the last tick by
// the round trips in between.
func (s *side) cpuPerRoundTrip(from, to cpuSample, n, ticks int) {
	trips := float64(n * (ticks - 1))
	if trips <= 0 {
		return
	}
	s.hostCPUus = float64((to.host - from.host).Microseconds()) / trips
	s.agentCPUus = float64((to.agents - from.agents).Microseconds()) / trips
}

// Run runs every case and returns the report. It fails on the first run
// that fails (a partial comparison would mislead).
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Runs <= 0 {
		o.Runs = 3
		if o.Short {
			o.Runs = 2
		}
	}
	if len(o.Sizes) == 0 {
		o.Sizes = []int{1, 10, 100, 1000}
		if o.Short {
			o.Sizes = []int{1, 10}
		}
	}
	if o.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		o.Executable = exe
	}
	switch o.Only {
	case "", "terrarium", "baseline":
	default:
		return nil, fmt.Errorf("bench: only %q: want terrarium or baseline", o.Only)
	}
	switch o.AgentUsers {
	case "", "auto":
		o.AgentUsers = "off"
		if os.Geteuid() == 0 {
			o.AgentUsers = "on"
		}
	case "on", "off":
	default:
		return nil, fmt.Errorf("bench: agent users %q: want auto, on or off", o.AgentUsers)
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "terrarium-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	if err := os.Chmod(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	start := time.Now()
	rep := &Report{Machine: describeMachine(), Short: o.Short, Runs: o.Runs, Users: o.AgentUsers == "on"}
	rep.Payload = payloadSizes()
	spawns := spawnSizes(o.Short)
	seq := 0
	for _, n := range o.Sizes {
		ticks := o.Ticks
		if ticks <= 0 {
			ticks = defaultTicks(n, o.Short)
		}
		if !o.Short && o.Only == "" {
			// One untimed baseline run first: the first run at a size pays
			// for warming the kernel (the agents' users, the file system)
			// and would otherwise fall to whichever side goes first.
			seq++
			dir := filepath.Join(o.Dir, strconv.Itoa(seq))
			if _, err := runBaseline(ctx, o, dir, n, 5); err != nil {
				return nil, fmt.Errorf("bench: warm-up, %d agents: %w", n, err)
			}
			_ = os.RemoveAll(dir)
			if o.Progress != nil {
				fmt.Fprintf(o.Progress, "warm-up   N=%-5d done (not counted)\n", n)
			}
		}
		what := fmt.Sprintf("N=%-5d", n)
		ts, bs, err := alternate(ctx, o, &seq, what, showSide, func(ctx context.Context, dir string, terr bool) ([]float64, error) {
			var s side
			var err error
			if terr {
				s, err = runTerrarium(ctx, o, dir, n, ticks)
			} else {
				s, err = runBaseline(ctx, o, dir, n, ticks)
			}
			return s.figures(), err
		})
		if err != nil {
			return nil, err
		}
		c := addCase(rep, "lockstep ticks/s", "ticks/s", n, true, ts, bs, figTicks)
		if n >= 100 {
			target(c, "ratio >= 0.8", c.Ratio >= 0.8)
		}
		addCase(rep, "lockstep tick p50", "µs", n, false, ts, bs, figP50)
		addCase(rep, "lockstep tick p99", "µs", n, false, ts, bs, figP99)
		addCase(rep, "host CPU per round trip", "µs", n, false, ts, bs, figHostCPU)
		addCase(rep, "agent CPU per round trip", "µs", n, false, ts, bs, figAgentCPU)
		if slices.Contains(spawns, n) {
			c := addCase(rep, "spawn to ready", "ms", n, false, ts, bs, figReady)
			if n >= 1000 {
				target(c, "ratio <= 1.25", c.Ratio <= 1.25)
			}
			c = addCase(rep, "host RSS per agent", "KiB", n, false, ts, bs, figRSS)
			if n >= 1000 {
				target(c, "<= 150 KiB/agent", c.Terrarium.Median <= 150)
			}
			addCase(rep, "host fds per agent", "fds", n, false, ts, bs, figFDs)
		}
	}
	if !o.LockstepOnly {
		if err := runPoolCase(ctx, o, rep, &seq); err != nil {
			return nil, err
		}
		if err := runServiceCases(ctx, o, rep, &seq); err != nil {
			return nil, err
		}
	}
	rep.Machine.LoadAfter = loadAverage()
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// errNoTicks is returned when a run closed too few ticks to time.
var errNoTicks = errors.New("too few ticks to time (want at least 3)")

// tickFigures turns the times at which ticks 1..T closed into ticks/s, p50
// and p99 of the tick intervals. The first tenth of the intervals (at least
// two: the first ticks warm caches, and the memory sample is taken after
// tick 1) is left out on both sides.
func tickFigures(closed []time.Time) (perSec, p50, p99 float64, err error) {
	skip := max(2, len(closed)/10)
	if len(closed) < skip+2 {
		return 0, 0, 0, errNoTicks
	}
	c := closed[skip:]
	iv := make([]float64, 0, len(c)-1)
	for i := 1; i < len(c); i++ {
		iv = append(iv, float64(c[i].Sub(c[i-1]).Microseconds()))
	}
	slices.Sort(iv)
	q := func(p float64) float64 { return iv[int(p*float64(len(iv)-1)+0.5)] }
	total := c[len(c)-1].Sub(c[0]).Seconds()
	if total <= 0 {
		return 0, 0, 0, errNoTicks
	}
	return float64(len(iv)) / total, q(0.5), q(0.99), nil
}
