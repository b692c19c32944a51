package main

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/terrarium-sim/terrarium/replay"
	"github.com/terrarium-sim/terrarium/world"
)

func init() {
	register(command{name: "replay", order: 35, usage: "replay [--to TICK] RUN_DIR", summary: "re-apply a run's actions without agents; check every tick's hash", run: cmdReplay})
}

func cmdReplay(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("replay", "replay [--to TICK [--state FILE]] RUN_DIR",
		"Re-applies the actions recorded in RUN_DIR/events.jsonl to a fresh world built\nfrom RUN_DIR/scenario.hcl, starting no agent, and checks every tick's state\nhash, world events and checkpoint. It certifies the run (exit 0) only if the\nwhole log is intact and reproduces result.json; otherwise it names the first\nbad line or the first diverging tick with a diff of the state (exit 1).\nWith --to it stops after that tick and writes the world's state there.\n", stderr)
	to := fs.Uint64("to", 0, "stop after this tick and write the state there")
	state := fs.String("state", "", "with --to: write the state to this file (default: stdout)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "terrarium replay: give one run directory")
		fs.Usage()
		return exitUsage
	}
	dir := fs.Arg(0)
	rep, err := replay.Run(dir, replay.Options{To: world.Tick(*to)})
	if err != nil {
		fmt.Fprintln(stderr, "terrarium replay:", err)
		return exitFailed
	}
	out := stdout
	if *to > 0 && *state == "" {
		out = stderr // the state goes to stdout
	}
	fmt.Fprintf(out, "replayed ticks %d..%d of run %s in %s (%.0f ticks/s), state %.16s\n", rep.From+1, rep.Ticks, rep.Run,
		rep.Elapsed.Round(1e5), float64(rep.Ticks-rep.From)/max(rep.Elapsed.Seconds(), 1e-9), rep.Hash)
	if rep.Checkpoints > 0 {
		fmt.Fprintf(out, "checked %d checkpoints\n", rep.Checkpoints)
	}
	if d := rep.Divergence; d != nil {
		fmt.Fprintf(out, "DIVERGES at tick %d: %s\n  recorded %s\n  replayed %s\n", d.Tick, d.What, d.Expected, d.Got)
		if len(d.Diff) > 0 {
			fmt.Fprintf(out, "  diff (%s):\n", d.DiffOf)
			for _, l := range d.Diff {
				fmt.Fprintf(out, "    %s\n", l)
			}
		}
	}
	if *to > 0 {
		if rep.State != nil {
			if *state == "" {
				stdout.Write(append(rep.State, '\n'))
			} else if err := os.WriteFile(*state, append(rep.State, '\n'), 0o644); err != nil {
				fmt.Fprintln(stderr, "terrarium replay:", err)
				return exitFailed
			} else {
				fmt.Fprintf(out, "state after tick %s written to %s\n", strconv.FormatUint(*to, 10), *state)
			}
		}
		if rep.Divergence != nil {
			return exitFailed
		}
		return exitOK
	}
	if !rep.Certified {
		fmt.Fprintln(out, "NOT CERTIFIED:")
		for _, p := range rep.Problems {
			fmt.Fprintf(out, "  %s\n", p)
		}
		return exitFailed
	}
	fmt.Fprintf(out, "certified: the run reproduces exactly (%d ticks, final state %.16s)\n", rep.Ticks, rep.Hash)
	return exitOK
}
