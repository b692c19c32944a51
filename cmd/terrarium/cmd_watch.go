package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/terrarium-sim/terrarium/observe"
	"github.com/terrarium-sim/terrarium/world"
)

func init() {
	register(command{name: "watch", order: 45, usage: "watch [flags] RUN_DIR|URL", summary: "tail a live run's events, or replay a finished one", run: cmdWatch})
}

const watchHelp = `Prints a run's events, one line each (--json: the JSON records).

A live run (its host is running) is read from its event stream on the bus,
with the observer credentials in RUN_DIR/observer.json, from the first event
(or --since, --from-seq, --from-time, --new) until run.finished. A finished
run, or one whose host is gone, is replayed from RUN_DIR/events.jsonl
without a server. A URL (nats://HOST:PORT or ws://HOST:PORT) needs --run and
the observer's --user and --password (or nats://USER:PASS@HOST:PORT).

Exit codes: 0 at the end of the events, 1 when the host of a live run goes
away before run.finished (or another error), 2 bad usage.
`

// listFlag collects a repeatable, comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func cmdWatch(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("watch", "watch [flags] RUN_DIR|URL", watchHelp, stderr)
	var kinds, agents listFlag
	fs.Var(&kinds, "kind", "only these kinds: globs such as agent.* or tick.closed (repeat or comma-separate)")
	fs.Var(&agents, "agent", "only events of these agents (repeat or comma-separate)")
	fromTick := fs.Uint64("from-tick", 0, "only events of this tick or later")
	toTick := fs.Uint64("to-tick", 0, "only events of this tick or earlier (0: no limit); watch stops once past it")
	ticks := fs.String("ticks", "", "tick range FROM:TO, FROM: or :TO (instead of --from-tick/--to-tick)")
	since := fs.Uint64("since", 0, "only events after this seq (the last one you saw)")
	fromSeq := fs.Uint64("from-seq", 0, "live: read the stream from this seq")
	fromTime := fs.String("from-time", "", "live: read the stream from this time (RFC 3339) or this long ago (e.g. 30s)")
	newOnly := fs.Bool("new", false, "live: only events after watch connects")
	asJSON := fs.Bool("json", false, "print each event as its JSON line (for piping)")
	replay := fs.Bool("replay", false, "read RUN_DIR/events.jsonl even if the run is live")
	run := fs.String("run", "", "with a URL: the run id")
	user := fs.String("user", "", "with a URL: the observer's user")
	password := fs.String("password", "", "with a URL: the observer's password")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "terrarium watch: give one run directory or URL")
		fs.Usage()
		return exitUsage
	}
	f := observe.Filter{Kinds: kinds, Agents: agents, FromTick: world.Tick(*fromTick), ToTick: world.Tick(*toTick), AfterSeq: *since}
	if *ticks != "" {
		from, to, err := observe.ParseTicks(*ticks)
		if err != nil {
			fmt.Fprintln(stderr, "terrarium watch:", err)
			return exitUsage
		}
		f.FromTick, f.ToTick = from, to
	}
	if err := f.Check(); err != nil {
		fmt.Fprintln(stderr, "terrarium watch:", err)
		return exitUsage
	}
	start := observe.Start{Seq: *fromSeq, New: *newOnly}
	if *fromTime != "" {
		if d, err := time.ParseDuration(*fromTime); err == nil {
			start.Time = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339Nano, *fromTime); err == nil {
			start.Time = t
		} else {
			fmt.Fprintf(stderr, "terrarium watch: --from-time %q: want RFC 3339 (2026-12-04T08:12:00Z) or a duration (30s)\n", *fromTime)
			return exitUsage
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	interrupted := watchSignals(ctx, cancel, io.Discard)
	err := observe.Watch(ctx, observe.WatchOptions{
		Target: fs.Arg(0), Run: *run, User: *user, Password: *password,
		Filter: f, Start: start, JSON: *asJSON, Replay: *replay, Out: stdout, Notes: stderr,
	})
	switch {
	case err == nil:
		return exitOK
	case interrupted():
		return exitInterrupted
	case errors.Is(err, observe.ErrHostGone):
		fmt.Fprintln(stderr, "terrarium watch:", err)
		return exitFailed
	default:
		fmt.Fprintln(stderr, "terrarium watch:", err)
		return exitFailed
	}
}

// printObservers prints, once the run's bus is up, the one line an
// observer needs (the same is in observer.json).
func printObservers(w io.Writer, in observe.Info) {
	ws := ""
	if in.WebsocketURL != "" {
		ws = " ws=" + in.WebsocketURL
	}
	fmt.Fprintf(w, "observers: url=%s%s user=%s password=%s inbox=%s stream=%s subjects=%s\n",
		in.URL, ws, in.User, in.Password, in.InboxPrefix, in.Stream, in.Subjects)
}
