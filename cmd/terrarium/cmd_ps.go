package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/world"
)

func init() {
	register(command{name: "ps", order: 40, usage: "ps RUN_DIR", summary: "a live or finished run's agents: state, pid, restarts, turns", run: cmdPs})
}

func cmdPs(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ps", "ps RUN_DIR",
		"Lists the agents of a run, live or finished, from its event log: state,\npid, restarts, turns (applied actions), ticks filled by the missing-action\npolicy, and the last error.\n", stderr)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "terrarium ps: give one run directory")
		fs.Usage()
		return exitUsage
	}
	st, err := terrarium.ReadRunState(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "terrarium ps:", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "run %s (%s): %s, %d ticks\n", st.Run, st.Scenario, st.Status, st.Ticks)
	t := world.Table{Columns: []string{"AGENT", "STATE", "PID", "RESTARTS", "TURNS", "MISSING", "LAST ERROR"}}
	for _, a := range st.Agents {
		t.Rows = append(t.Rows, []string{a.ID, a.State, strconv.Itoa(a.Pid), strconv.Itoa(a.Restarts), strconv.Itoa(a.Turns), strconv.Itoa(a.Missing), a.LastError})
	}
	printTable(stdout, t)
	return exitOK
}
