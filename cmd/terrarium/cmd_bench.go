package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/terrarium-sim/terrarium/bench"
)

func init() {
	register(command{name: "bench", order: 60, usage: "bench [--short] [--json] [--write FILE]", summary: "measure Terrarium against its raw baseline, side by side", run: cmdBench})
}

func cmdBench(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench", "bench [flags]",
		"Runs each case (lockstep ticks/s and tick p50/p99 at N = 1, 10, 100, 1000\nagent processes; spawn to ready, host memory and descriptors per agent at\nN = 100 and 1000; 10,000 agents in two pool processes, runtime \"pool\")\nfor Terrarium and for its raw baseline (the same bus,\nspawn path, users, credentials and message sizes; no loop, envelope,\nevents or recording), alternating them, and prints median, min, max and\nthe ratio Terrarium / baseline. See docs/benchmarks.md.\n\nThe full mode takes a few minutes and 1,000 processes at a time: check\nulimit -n and kernel.pid_max. --short (seconds, N = 1 and 10) is what CI runs.\n", stderr)
	var lf logFlags
	lf.register(fs)
	short := fs.Bool("short", false, "the CI mode: N = 1 and 10, few ticks, 2 runs a side")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	write := fs.String("write", "", "also write the report as markdown to FILE (docs/benchmarks.md)")
	runs := fs.Int("runs", 0, "runs per side and size (default 3; --short 2)")
	sizes := fs.String("sizes", "", "comma-separated lockstep sizes (default 1,10,100,1000; --short 1,10)")
	ticks := fs.Int("ticks", 0, "ticks per run (default: about two seconds per size)")
	dir := fs.String("dir", "", "scratch directory (default: a new temporary directory)")
	agentUsers := fs.String("agent-users", "auto", "run agents as their own users on both sides: auto (when root), on, off")
	quiet := fs.Bool("quiet", false, "no line per finished run on stderr")
	only := fs.String("only", "", "run one side alone, terrarium or baseline (for profiling; no ratios)")
	lockstepOnly := fs.Bool("lockstep-only", false, "run the lockstep cases only (no pool, lease or observer case)")
	from := fs.String("from", "", "run nothing: read a report written by --json from FILE (to re-render it, e.g. with --write)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(stderr, "terrarium bench: takes no arguments")
		fs.Usage()
		return exitUsage
	}
	log, err := lf.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "terrarium bench:", err)
		return exitUsage
	}
	o := bench.Options{Logger: log, Short: *short, Runs: *runs, Ticks: *ticks, Dir: *dir, AgentUsers: *agentUsers, Only: *only, LockstepOnly: *lockstepOnly}
	if *sizes != "" {
		for _, s := range strings.Split(*sizes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 {
				fmt.Fprintf(stderr, "terrarium bench: --sizes: %q is not a positive number\n", s)
				return exitUsage
			}
			o.Sizes = append(o.Sizes, n)
		}
	}
	if !*quiet {
		o.Progress = stderr
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	interrupted := watchSignals(ctx, cancel, stderr)
	var rep *bench.Report
	if *from != "" {
		b, err := os.ReadFile(*from)
		if err == nil {
			rep = new(bench.Report)
			err = json.Unmarshal(b, rep)
		}
		if err != nil {
			fmt.Fprintln(stderr, "terrarium bench: --from:", err)
			return exitFailed
		}
	} else if rep, err = bench.Run(ctx, o); err != nil {
		fmt.Fprintln(stderr, "terrarium bench:", err)
		if interrupted() {
			return exitInterrupted
		}
		return exitFailed
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "terrarium bench:", err)
			return exitFailed
		}
	} else if err := rep.WriteTable(stdout); err != nil {
		fmt.Fprintln(stderr, "terrarium bench:", err)
		return exitFailed
	}
	if *write != "" {
		var b bytes.Buffer
		cmd := "terrarium bench --write " + *write
		if rep.Short {
			cmd = "terrarium bench --short --write " + *write
		}
		if err := rep.WriteMarkdown(&b, cmd); err != nil {
			fmt.Fprintln(stderr, "terrarium bench:", err)
			return exitFailed
		}
		if err := os.WriteFile(*write, b.Bytes(), 0o644); err != nil {
			fmt.Fprintln(stderr, "terrarium bench:", err)
			return exitFailed
		}
	}
	return exitOK
}
