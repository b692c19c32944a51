package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/dashboard"
	"github.com/terrarium-sim/terrarium/observe"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

func init() {
	register(command{name: "run", order: 10, usage: "run [flags] SCENARIO.hcl", summary: "run a scenario, leave a run directory", run: cmdRun})
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
	var vars varFlags
	fs.Var(&vars, "var", "set a scenario variable, name=value (repeatable)")
	from := fs.String("from", "", "start from another run's checkpoint, RUN_DIR@TICK (a fork)")
	ws := fs.String("ws", "", "also serve the bus over websocket on HOST:PORT (loopback, plain ws://; port 0 picks one), for browsers")
	ui := fs.String("ui", "", "serve the live dashboard on HOST:PORT (e.g. 127.0.0.1:8080; port 0 picks one); its URL and control token are printed")
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
	var fork *terrarium.Fork
	if *from != "" {
		if fork, err = terrarium.ParseFork(*from); err != nil {
			fmt.Fprintln(stderr, "terrarium run:", err)
			return exitUsage
		}
	}
	sc, diags := scenarios.LoadWith(fs.Arg(0), scenarios.LoadOptions{Vars: vars.values})
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
		AgentUsers: *agentUsers, AgentUIDBase: uint32(*uidBase), Fork: fork, CheckpointHook: checkpointHook,
		Websocket: *ws, Observers: func(in observe.Info) { printObservers(stderr, in) },
		UI: *ui, Dashboard: func(in dashboard.Info) { printDashboard(stderr, in) },
	})
	if err != nil {
		fmt.Fprintln(stderr, "terrarium run:", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "run %s: %s, %d agents -> %s\n", h.RunID(), sc.Name, len(sc.Seats()), h.Dir())
	res, err := h.Run(ctx)
	prog.done()
	if *ui != "" && res != nil && res.Dir != "" {
		fmt.Fprintf(stderr, "dashboard closed; play the run back with: terrarium ui %s\n", res.Dir)
	}
	return finishRun(h, res, err, interrupted, stdout, stderr)
}

// printDashboard prints where the dashboard is: the URL carries the
// control token in its fragment (never sent to the server by a browser).
func printDashboard(w io.Writer, in dashboard.Info) {
	fmt.Fprintf(w, "dashboard: %s#token=%s (control token %s)\n", in.URL, in.Token, in.Token)
}

// finishRun prints a run's outcome and returns the exit code.
func finishRun(h *terrarium.Host, res *terrarium.Result, err error, interrupted func() bool, stdout, stderr io.Writer) int {
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
			fmt.Fprintln(stderr, "go on with: terrarium resume", res.Dir)
		}
		return exitInterrupted
	default:
		fmt.Fprintln(stderr, "terrarium run:", err)
		return exitFailed
	}
}

// checkpointHook is passed to every host's Config.CheckpointHook; nil
// except in tests, which use it to kill the host while it writes one.
var checkpointHook func(stage string, t world.Tick)

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
