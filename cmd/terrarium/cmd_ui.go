package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/terrarium-sim/terrarium/dashboard"
	"github.com/terrarium-sim/terrarium/replay"
)

func init() {
	register(command{name: "ui", order: 36, usage: "ui [flags] RUN_DIR", summary: "play a finished run back in the dashboard", run: cmdUI})
}

func cmdUI(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ui", "ui [flags] RUN_DIR",
		"Serves the dashboard for a run directory and plays the run back in it, tick\nby tick: its events, metrics and the world's picture (rebuilt from the\nrecorded actions; no agent is started). Pause, step and resume act on the\nplayback. Serves until Ctrl-C. For a live run use terrarium run --ui.\n", stderr)
	var lf logFlags
	lf.register(fs)
	addr := fs.String("addr", "127.0.0.1:0", "serve on HOST:PORT (port 0 picks one)")
	speed := fs.Float64("speed", 20, "ticks per second of the playback (0: as fast as it goes)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "terrarium ui: give one run directory")
		fs.Usage()
		return exitUsage
	}
	if *speed < 0 {
		fmt.Fprintln(stderr, "terrarium ui: --speed must be >= 0")
		return exitUsage
	}
	log, err := lf.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "terrarium ui:", err)
		return exitUsage
	}
	dir := fs.Arg(0)
	p, err := replay.NewPlayer(dir, *speed)
	if err != nil {
		fmt.Fprintln(stderr, "terrarium ui:", err)
		return exitFailed
	}
	d, err := dashboard.New(dashboard.Config{Addr: *addr, Control: p, Source: dashboard.SourceRecording, Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "terrarium ui:", err)
		return exitUsage
	}
	defer d.Close()
	printDashboard(stderr, d.Info())
	if p.NoWorld != "" {
		fmt.Fprintln(stderr, "no world picture:", p.NoWorld)
	}
	if p.Bad != "" {
		fmt.Fprintf(stderr, "events.jsonl is damaged: %s (played up to there)\n", p.Bad)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stderr, "playing %s; Ctrl-C to stop\n", dir)
	if err := p.Play(ctx, d); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "terrarium ui:", err)
		return exitFailed
	}
	if ctx.Err() == nil {
		fmt.Fprintln(stderr, "played to the end; serving until Ctrl-C")
		<-ctx.Done()
	}
	return exitOK
}
