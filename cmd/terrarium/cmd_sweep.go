package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/sweep"
)

func init() {
	register(command{name: "sweep", order: 22, usage: "sweep [flags] SCENARIO.hcl", summary: "run every combination of variable values and seeds", run: cmdSweep})
}

// sweepVars collects repeated --var name=v1,v2,... flags.
type sweepVars []sweep.Var

func (s *sweepVars) String() string { return "" }

func (s *sweepVars) Set(v string) error {
	name, vals, ok := strings.Cut(v, "=")
	if !ok || name == "" || vals == "" {
		return fmt.Errorf("want name=v1,v2,..., like --var rounds=50,100")
	}
	for _, o := range *s {
		if o.Name == name {
			return fmt.Errorf("%s is given twice: give all its values in one --var %s=v1,v2,...", name, name)
		}
	}
	values := strings.Split(vals, ",")
	seen := map[string]bool{}
	for _, x := range values {
		switch {
		case x == "":
			return fmt.Errorf("%s=%s has an empty value (two commas, or one at an end)", name, vals)
		case seen[x]:
			return fmt.Errorf("%s=%s names the value %q twice", name, vals, x)
		}
		seen[x] = true
	}
	*s = append(*s, sweep.Var{Name: name, Values: values})
	return nil
}

func cmdSweep(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("sweep", "sweep [flags] SCENARIO.hcl",
		"Runs the scenario for every combination of the given variable values and\nseeds, each in its own directory <out>/<name=value,...>/seed-<n>/, at most\n--parallel at a time, and writes <out>/sweep.csv (variables, seed, status,\nticks, state hash, the last value of each metric, then the world's result\nfigures as world.* columns; terrarium report <out> draws them). A failed run is reported\nand the others go on (exit 1 at the end). Running the same sweep again skips\nthe runs that are done.\n", stderr)
	var lf logFlags
	lf.register(fs)
	var vars sweepVars
	fs.Var(&vars, "var", "a variable and its values, name=v1,v2,... (repeatable)")
	seedsFlag := fs.String("seeds", "", "seeds, like 1..5 or 1,2,7 (default: the scenario's seed)")
	parallel := fs.Int("parallel", 1, "runs at a time")
	out := fs.String("out", "", "the sweep's directory (default sweeps/<scenario>)")
	quiet := fs.Bool("quiet", false, "no progress display")
	agentUsers := fs.String("agent-users", terrarium.AgentUsersAuto, "run each agent as its own user: auto, on, off")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "terrarium sweep: give exactly one scenario file")
		fs.Usage()
		return exitUsage
	}
	log, err := lf.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "terrarium sweep:", err)
		return exitUsage
	}
	if *parallel < 1 {
		fmt.Fprintf(stderr, "terrarium sweep: --parallel %d: want 1 or more runs at a time\n", *parallel)
		return exitUsage
	}
	var seeds []uint64
	if *seedsFlag != "" {
		if seeds, err = sweep.ParseSeeds(*seedsFlag); err != nil {
			fmt.Fprintln(stderr, "terrarium sweep:", err)
			return exitUsage
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	interrupted := watchSignals(ctx, cancel, stderr)
	bar := newSweepBar(stderr, *quiet)
	sum, err := sweep.Run(ctx, sweep.Config{
		Scenario: fs.Arg(0), Vars: vars, Seeds: seeds, Parallel: *parallel, Out: *out, Logger: log,
		Host: terrarium.Config{AgentUsers: *agentUsers, CheckpointHook: checkpointHook}, Progress: bar.update,
	})
	bar.done()
	if sum == nil {
		fmt.Fprintln(stderr, "terrarium sweep:", err)
		return exitUsage
	}
	for _, o := range sum.Outcomes {
		if o.Status != terrarium.StatusFinished && o.Status != "" {
			fmt.Fprintf(stderr, "%s: %s: %s\n", o.Dir, o.Status, o.Error)
		}
	}
	fmt.Fprintf(stdout, "sweep %s: %d points (%d run now, %d refused by the scenario, %d done before), %d failed; table in %s/sweep.csv\n",
		sum.Dir, len(sum.Outcomes), sum.Ran, sum.Refused, sum.Skipped, sum.Failed, sum.Dir)
	switch {
	case interrupted():
		return exitInterrupted
	case err != nil:
		fmt.Fprintln(stderr, "terrarium sweep:", err)
		return exitFailed
	case sum.Failed > 0:
		return exitFailed
	}
	return exitOK
}

// sweepBar shows the progress of a whole sweep.
type sweepBar struct {
	w     io.Writer
	tty   bool
	quiet bool
	mu    sync.Mutex
	last  time.Time
	lastN int
	start time.Time
}

func newSweepBar(w io.Writer, quiet bool) *sweepBar {
	b := &sweepBar{w: w, quiet: quiet, start: time.Now(), lastN: -1}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			b.tty = true
		}
	}
	return b
}

func (b *sweepBar) update(p sweep.Progress) {
	if b.quiet {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	pct := 0
	if p.TotalTicks > 0 {
		pct = int(100 * p.Ticks / p.TotalTicks)
	}
	line := fmt.Sprintf("runs %d/%d (%d failed, %d done before)  ticks %d/%d  %3d%%  %s", p.Done, p.Runs, p.Failed, p.Skipped, p.Ticks, p.TotalTicks, pct, time.Since(b.start).Round(time.Second))
	if b.tty {
		if time.Since(b.last) < 100*time.Millisecond && p.Done != p.Runs {
			return
		}
		b.last = time.Now()
		const width = 30
		n := width * pct / 100
		fmt.Fprintf(b.w, "\r[%s%s] %s ", strings.Repeat("#", n), strings.Repeat(".", width-n), line)
		return
	}
	if p.Done != b.lastN { // one line per finished run
		b.lastN = p.Done
		fmt.Fprintln(b.w, line)
	}
}

func (b *sweepBar) done() {
	if b.tty && !b.quiet {
		fmt.Fprintln(b.w)
	}
}
