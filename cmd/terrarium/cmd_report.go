package main

import (
	"fmt"
	"io"

	"github.com/terrarium-sim/terrarium/report"
)

func init() {
	register(command{name: "report", order: 35, usage: "report RUN_DIR|SWEEP_DIR...", summary: "write a run's or a sweep's self-contained report.html (charts, grids, results)", run: cmdReport})
}

func cmdReport(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("report", "report RUN_DIR|SWEEP_DIR...",
		"Writes RUN_DIR/report.html: one self-contained page (no scripts, no\nexternal files; opens offline) with the scenario, the key results from\nresult.json, a chart per metric of metrics.csv over the ticks, and the\ngrid at every tick the world took a snapshot of (a grid world's\nsnapshots setting). For a sweep directory (terrarium sweep's, with\nsweep.csv): the sweep's parameters, a table of its runs, and a chart of\neach key result against the swept variable, the mean over the seeds with\ntheir range. Exit code 1 if a directory cannot be read.\n", stderr)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "terrarium report: no run directory given")
		fs.Usage()
		return exitUsage
	}
	code := exitOK
	for _, dir := range fs.Args() {
		path, err := report.Write(dir)
		if err != nil {
			fmt.Fprintf(stderr, "terrarium report: %v\n", err)
			code = exitFailed
			continue
		}
		fmt.Fprintln(stdout, path)
	}
	return code
}
