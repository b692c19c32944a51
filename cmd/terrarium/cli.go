package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitInterrupted = 130
)

const usage = `terrarium hosts multi-agent simulations: an embedded NATS bus, one OS
process per agent, and a world loop stepping the shared world.

Usage:
  terrarium run [flags] SCENARIO.hcl     run a scenario, leave a run directory
  terrarium validate SCENARIO.hcl...     check scenario files, report every problem
  terrarium verify RUN_DIR...            check a run directory's event log and results
  terrarium ps RUN_DIR                   a live or finished run's agents: state, pid, restarts, turns
  terrarium version                      print the version

Run 'terrarium COMMAND -h' for a command's flags.
Exit codes: 0 ok, 1 run failed, 2 bad usage or scenario, 130 interrupted.
`

// Main is the whole CLI; it returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "verify":
		return cmdVerify(args[1:], stdout, stderr)
	case "ps":
		return cmdPs(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, terrarium.VersionString())
		return exitOK
	case "help", "-h", "--help", "-help":
		if len(args) > 1 {
			return Main([]string{args[1], "-h"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "terrarium: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

// logFlags are the logging flags every command has.
type logFlags struct {
	level string
	json  bool
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "warn", "log level: trace, debug, info, warn, error, off")
	fs.BoolVar(&l.json, "log-json", false, "write logs as JSON lines")
}

func (l *logFlags) logger(w io.Writer) (hclog.Logger, error) {
	lvl := hclog.LevelFromString(l.level)
	if lvl == hclog.NoLevel {
		return nil, fmt.Errorf("unknown --log-level %q (trace, debug, info, warn, error, off)", l.level)
	}
	return hclog.New(&hclog.LoggerOptions{
		Name: "terrarium", Level: lvl, Output: w, JSONFormat: l.json,
		Color: hclog.ColorOff, TimeFormat: "15:04:05.000",
	}), nil
}

func newFlagSet(name, synopsis, help string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: terrarium %s\n\n%s", synopsis, help)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintf(stderr, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses flags, which may come before or after the arguments
// ("run x.hcl --quiet"); "--" ends the flags. It returns ok=false with the
// exit code to use.
func parse(fs *flag.FlagSet, args []string) (code int, ok bool) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK, false
			}
			return exitUsage, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Parse the collected arguments again so fs.Args() returns them.
	_ = fs.Parse(append([]string{"--"}, positional...))
	return 0, true
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", "validate SCENARIO.hcl...",
		"Checks scenario files without running anything and reports every problem\nwith file:line:column. Exit code 2 if any file has errors.\n", stderr)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "terrarium validate: no scenario file given")
		fs.Usage()
		return exitUsage
	}
	code := exitOK
	for _, path := range fs.Args() {
		sc, diags := scenarios.Load(path)
		if diags.HasErrors() {
			scenarios.FormatDiagnostics(stderr, diags)
			code = exitUsage
			continue
		}
		if len(diags) > 0 {
			scenarios.FormatDiagnostics(stderr, diags)
		}
		fmt.Fprintf(stdout, "%s: ok (scenario %q, world %s, %d agents)\n", path, sc.Name, sc.World.Kind, len(sc.Seats()))
	}
	return code
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

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", "run [flags] SCENARIO.hcl",
		"Runs a scenario: starts the embedded bus, one process per agent, and steps\nthe world. Leaves runs/<run-id>/ (or --out DIR) with result.json, events.jsonl,\nmetrics.csv, logs/ and each agent's workspace.\n", stderr)
	var lf logFlags
	lf.register(fs)
	out := fs.String("out", "", "run directory (default runs/<run-id>)")
	runsDir := fs.String("runs", "runs", "where run directories are made when --out is not given")
	runID := fs.String("run-id", "", "run id, [A-Za-z0-9_-]+ (default <scenario>-<time>-<random>)")
	quiet := fs.Bool("quiet", false, "no progress display")
	agentUsers := fs.String("agent-users", terrarium.AgentUsersAuto, "run each agent as its own user: auto (when root and the run directory allows), on, off")
	uidBase := fs.Uint("agent-uid-base", terrarium.DefaultAgentUIDBase, "UID and GID of the first agent (the others follow in id order)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "terrarium run: give exactly one scenario file")
		fs.Usage()
		return exitUsage
	}
	log, err := lf.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "terrarium run:", err)
		return exitUsage
	}
	sc, diags := scenarios.Load(fs.Arg(0))
	if diags.HasErrors() {
		scenarios.FormatDiagnostics(stderr, diags)
		return exitUsage
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	interrupted := watchSignals(ctx, cancel, stderr)

	prog := newProgress(stderr, *quiet)
	h, err := terrarium.New(terrarium.Config{
		Scenario: sc, Logger: log, Dir: *out, RunsDir: *runsDir, RunID: *runID, Progress: prog.update,
		AgentUsers: *agentUsers, AgentUIDBase: uint32(*uidBase),
	})
	if err != nil {
		fmt.Fprintln(stderr, "terrarium run:", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "run %s: %s, %d agents -> %s\n", h.RunID(), sc.Name, len(sc.Seats()), h.Dir())
	res, err := h.Run(ctx)
	prog.done()
	_ = h.Close()
	if res != nil {
		printResult(stdout, res)
	}
	switch {
	case err == nil:
		return exitOK
	case interrupted():
		if res != nil && res.Dir != "" {
			fmt.Fprintln(stderr, "terrarium run: interrupted; partial results in", res.Dir)
		}
		return exitInterrupted
	default:
		fmt.Fprintln(stderr, "terrarium run:", err)
		return exitFailed
	}
}

// watchSignals cancels on the first SIGINT or SIGTERM; later ones are only
// acknowledged, so the orderly shutdown is never cut short.
func watchSignals(ctx context.Context, cancel context.CancelFunc, stderr io.Writer) (interrupted func() bool) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP) // SIGHUP: the terminal went away
	got := make(chan struct{})
	go func() {
		first := true
		for {
			select {
			case s := <-ch:
				if first {
					first = false
					fmt.Fprintf(stderr, "\nterrarium: %s: stopping agents and saving results (the run is being shut down)\n", s)
					close(got)
					cancel()
				} else {
					fmt.Fprintf(stderr, "terrarium: %s: already shutting down\n", s)
				}
			case <-ctx.Done():
				if !first {
					// keep absorbing signals until the process exits
					continue
				}
				signal.Stop(ch)
				return
			}
		}
	}()
	return func() bool {
		select {
		case <-got:
			return true
		default:
			return false
		}
	}
}

func printResult(w io.Writer, res *terrarium.Result) {
	if res.Table != nil && len(res.Table.Rows) > 0 && res.Ticks > 0 {
		if res.Status != terrarium.StatusFinished {
			res.Table.Title += fmt.Sprintf(" (partial: the run was %s after %d ticks)", res.Status, res.Ticks)
		}
		printTable(w, *res.Table)
	}
	fmt.Fprintf(w, "\nstatus %s after %d ticks in %s (median tick %s)\n", res.Status, res.Ticks,
		(time.Duration(res.DurationMS) * time.Millisecond).String(), (time.Duration(res.TickTime.MedianUS) * time.Microsecond).String())
	if res.Dir != "" {
		fmt.Fprintf(w, "results in %s\n", res.Dir)
	}
}

func printTable(w io.Writer, t world.Table) {
	if t.Title != "" {
		fmt.Fprintf(w, "\n%s\n", t.Title)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.Columns, "\t"))
	for _, r := range t.Rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}
