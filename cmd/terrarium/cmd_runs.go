package main

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/world"
)

func init() {
	register(command{name: "runs", order: 42, usage: "runs [DIR]", summary: "list the run directories in DIR (default runs): scenario, status, ticks, duration", run: cmdRuns})
}

func cmdRuns(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("runs", "runs [DIR]",
		"Lists the run directories directly under DIR (default runs), oldest first:\nrun id, scenario, status (running, finished, interrupted, aborted, failed,\nor abandoned: no run.finished and the host is gone), ticks, duration, start.\n", stderr)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	dir := "runs"
	switch fs.NArg() {
	case 0:
	case 1:
		dir = fs.Arg(0)
	default:
		fmt.Fprintln(stderr, "terrarium runs: give at most one directory")
		fs.Usage()
		return exitUsage
	}
	list, err := terrarium.ListRuns(dir)
	if list == nil && err != nil {
		fmt.Fprintln(stderr, "terrarium runs:", err)
		return exitFailed
	}
	t := world.Table{Columns: []string{"RUN", "SCENARIO", "STATUS", "TICKS", "DURATION", "STARTED", "DIR"}}
	for _, r := range list {
		t.Rows = append(t.Rows, []string{r.Run, r.Scenario, r.Status, strconv.FormatUint(uint64(r.Ticks), 10),
			r.Duration.Round(time.Millisecond).String(), r.Started.UTC().Format(time.RFC3339), r.Dir})
	}
	printTable(stdout, t)
	if err != nil {
		fmt.Fprintln(stderr, "terrarium runs: some directories could not be read:", err)
		return exitFailed
	}
	return exitOK
}
