package main

import (
	"fmt"
	"io"

	"github.com/terrarium-sim/terrarium"
)

func init() {
	register(command{name: "verify", order: 30, usage: "verify RUN_DIR...", summary: "check a run directory's event log and results", run: cmdVerify})
}

func cmdVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify", "verify RUN_DIR...",
		"Checks run directories: events.jsonl is an unbroken hash chain ending in\nrun.finished, result.json pins that same end, and metrics.csv has a row per\ntick. Exit code 1 if any problem is found.\n", stderr)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "terrarium verify: no run directory given")
		fs.Usage()
		return exitUsage
	}
	code := exitOK
	for _, dir := range fs.Args() {
		res, err := terrarium.VerifyRun(dir)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", dir, err)
			code = exitFailed
			continue
		}
		fmt.Fprintf(stdout, "%s: ok (run %s, status %s, %d ticks, %d events, state %.12s)\n", dir, res.Run, res.Status, res.Ticks, res.Events.Count, res.StateHash)
	}
	return code
}
