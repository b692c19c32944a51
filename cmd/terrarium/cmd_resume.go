package main

import (
	"context"
	"fmt"
	"io"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/dashboard"
)

func init() {
	register(command{name: "resume", order: 15, usage: "resume [flags] RUN_DIR", summary: "go on with a stopped or killed run from its last checkpoint", run: cmdResume})
}

func cmdResume(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("resume", "resume [flags] RUN_DIR",
		"Goes on with a run that stopped (Ctrl-C, or the host was killed) from its last\nusable checkpoint: the world's state, the agents' workspaces and the\nsupervisor's counts come back, the agents are started again with\nTERRARIUM_RESUME_TICK, and the events after the checkpoint are moved to\nevents.superseded-N.jsonl (a run.resumed event names them). Nothing is deleted.\n", stderr)
	var lf logFlags
	lf.register(fs)
	quiet := fs.Bool("quiet", false, "no progress display")
	agentUsers := fs.String("agent-users", terrarium.AgentUsersAuto, "run each agent as its own user: auto, on, off")
	uidBase := fs.Uint("agent-uid-base", terrarium.DefaultAgentUIDBase, "UID and GID of the first agent")
	ui := fs.String("ui", "", "serve the live dashboard on HOST:PORT (port 0 picks one)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "terrarium resume: give one run directory")
		fs.Usage()
		return exitUsage
	}
	log, err := lf.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "terrarium resume:", err)
		return exitUsage
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	interrupted := watchSignals(ctx, cancel, stderr)
	prog := newProgress(stderr, *quiet)
	h, rep, err := terrarium.Resume(fs.Arg(0), terrarium.Config{
		Logger: log, Progress: prog.update, AgentUsers: *agentUsers, AgentUIDBase: uint32(*uidBase), CheckpointHook: checkpointHook,
		UI: *ui, Dashboard: func(in dashboard.Info) { printDashboard(stderr, in) },
	})
	if err != nil {
		fmt.Fprintln(stderr, "terrarium resume:", err)
		return exitFailed
	}
	if rep.BadLine != "" {
		fmt.Fprintf(stderr, "events.jsonl is damaged: %s\n", rep.BadLine)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(stderr, n)
	}
	if rep.Checkpoint != "" {
		fmt.Fprintf(stderr, "resuming run %s after tick %d from %s\n", rep.Run, rep.Tick, rep.Checkpoint)
	} else {
		fmt.Fprintf(stderr, "restarting run %s from tick 0\n", rep.Run)
	}
	if s := rep.Superseded; s.Count > 0 {
		fmt.Fprintf(stderr, "%d events after event %d moved to %s\n", s.Count, rep.EventSeq, s.File)
	}
	res, err := h.Run(ctx)
	prog.done()
	return finishRun(h, res, err, interrupted, stdout, stderr)
}
