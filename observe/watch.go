package observe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/events"
)

// ErrHostGone is returned by Watch when the live run's host went away
// before the run finished (its bus connection was lost for good).
var ErrHostGone = errors.New("the run's host is gone")

// WatchOptions configure Watch.
type WatchOptions struct {
	// Target is a run directory, or a nats:// or ws:// URL of a live
	// run's bus (then Run and credentials are needed).
	Target string
	// Run is the run id, for a URL Target.
	Run string
	// User and Password are the observer's credentials, for a URL Target
	// (they may also be given in the URL: nats://user:pass@host:port).
	User, Password string
	// Filter selects what is printed; Start where a live stream is read from.
	Filter Filter
	Start  Start
	// JSON prints each event as its JSON line instead of a readable line.
	JSON bool
	// Replay reads the run directory's events.jsonl even if the run is live.
	Replay bool
	// Out gets the events; Notes gets what Watch has to say about them
	// (replaying, gaps). Notes may be nil.
	Out, Notes io.Writer
}

// Watch prints a run's events: a finished run's (or one whose host is
// gone) from its events.jsonl, a live run's from its event stream until
// run.finished. It returns nil at the end of the events, ErrHostGone
// (wrapped, with what to do) when a live run's host goes away first, and
// ctx.Err() when ctx ends.
func Watch(ctx context.Context, o WatchOptions) error {
	if err := o.Filter.Check(); err != nil {
		return err
	}
	if o.Notes == nil {
		o.Notes = io.Discard
	}
	o.Notes = &lockedWriter{w: o.Notes} // the bus's callbacks write too
	if strings.Contains(o.Target, "://") {
		return watchURL(ctx, o)
	}
	dir := o.Target
	if _, err := os.Stat(filepath.Join(dir, "events.jsonl")); err != nil {
		return fmt.Errorf("%s is not a run directory (no events.jsonl): %w", dir, err)
	}
	if o.Replay {
		return replayDir(o, dir, "")
	}
	if _, err := os.Stat(filepath.Join(dir, "result.json")); err == nil {
		return replayDir(o, dir, "") // finished
	}
	info, err := ReadInfo(dir)
	switch {
	case err != nil && errors.Is(err, os.ErrNotExist):
		return replayDir(o, dir, "no observer.json (the run has not started its bus, or is from an older version): replaying events.jsonl")
	case err != nil:
		return err
	case info.HostPID > 0 && !processAlive(info.HostPID):
		return replayDir(o, dir, fmt.Sprintf("the host (pid %d) is no longer running: replaying events.jsonl", info.HostPID))
	}
	last, err := watchLive(ctx, o, info, dir)
	if err != nil && ctx.Err() == nil {
		// The run finished and its host shut the bus down before this
		// observer had everything (or between the check and the
		// connection): the rest is in the file.
		if _, serr := os.Stat(filepath.Join(dir, "result.json")); serr == nil {
			o.Filter.AfterSeq = max(o.Filter.AfterSeq, last)
			return replayDir(o, dir, "")
		}
	}
	return err
}

// watchURL watches a live run given by its bus URL.
func watchURL(ctx context.Context, o WatchOptions) error {
	u, err := url.Parse(o.Target)
	if err != nil {
		return fmt.Errorf("url %q: %w", o.Target, err)
	}
	info := Info{URL: o.Target, User: o.User, Password: o.Password, Run: o.Run}
	if u.User != nil {
		info.User = u.User.Username()
		info.Password, _ = u.User.Password()
		u.User = nil
		info.URL = u.String()
	}
	if info.Run == "" || info.User == "" {
		return errors.New("watch URL: give the run id (--run) and the observer's user and password (see the run's observer.json)")
	}
	info.Stream = bus.StreamName(info.Run)
	info.InboxPrefix = bus.ObserverInboxPrefix(info.Run, strings.TrimPrefix(info.User, "observer."))
	_, err = watchLive(ctx, o, info, "")
	return err
}

// replayDir prints dir's events.jsonl.
func replayDir(o WatchOptions, dir, note string) error {
	if note != "" {
		fmt.Fprintf(o.Notes, "watch: %s\n", note)
	}
	recs, err := events.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil && len(recs) == 0 {
		return err
	}
	// A run still being written may end in a partial line: what was read
	// before it is printed.
	finished := false
	for _, r := range recs {
		if err := o.print(r); err != nil {
			return err
		}
		if r.Kind == events.RunFinished {
			finished = true
		}
		if o.Filter.Past(r) {
			return nil
		}
	}
	if !finished && len(recs) > 0 {
		fmt.Fprintf(o.Notes, "watch: the log ends at event %d without run.finished (the run was killed, or is still going: watch it live without --replay)\n", recs[len(recs)-1].Seq)
	}
	return nil
}

func (o WatchOptions) print(r events.Record) error {
	if !o.Filter.Match(r) {
		return nil
	}
	if o.JSON {
		return WriteJSON(o.Out, r)
	}
	return WriteLine(o.Out, r)
}

// watchLive reads a live run's stream until run.finished. It returns the
// seq of the last event it read.
func watchLive(ctx context.Context, o WatchOptions, info Info, dir string) (last uint64, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	gone := func() error {
		what := "run " + info.Run
		if info.HostPID > 0 && !processAlive(info.HostPID) {
			what += fmt.Sprintf(" (host pid %d is no longer running)", info.HostPID)
		}
		hint := ""
		if dir != "" {
			hint = fmt.Sprintf("; what it wrote is in %s (terrarium watch %s replays it)", filepath.Join(dir, "events.jsonl"), dir)
		}
		return fmt.Errorf("lost the connection to the bus of %s at %s before the run finished: %w%s", what, info.URL, ErrHostGone, hint)
	}
	closing := make(chan struct{})
	nc, err := nats.Connect(info.URL,
		nats.Name("terrarium watch"),
		nats.UserInfo(info.User, info.Password),
		nats.CustomInboxPrefix(info.InboxPrefix),
		nats.MaxReconnects(10), nats.ReconnectWait(200*time.Millisecond),
		// A slow consumer while catching up loses nothing: the ordered
		// consumer starts again after the last event read (and a gap in
		// seq would be said). Other errors are said, not printed by the
		// client's default handler.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if !errors.Is(err, nats.ErrSlowConsumer) {
				fmt.Fprintf(o.Notes, "watch: bus: %v\n", err)
			}
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			select {
			case <-closing: // we closed it
			default:
				cancel(gone())
			}
		}),
	)
	if err != nil {
		if errors.Is(err, nats.ErrNoServers) || strings.Contains(err.Error(), "connection refused") {
			return 0, fmt.Errorf("connect to %s: %w: %w", info.URL, ErrHostGone, err)
		}
		return 0, fmt.Errorf("connect to %s: %w", info.URL, err)
	}
	defer func() {
		close(closing)
		nc.Close()
	}()
	// why explains a failure: the host went away, or ctx ended, or err.
	why := func(err error) error {
		if c := context.Cause(ctx); c != nil && ctx.Err() != nil {
			return c
		}
		if !nc.IsConnected() {
			return gone()
		}
		return err
	}
	f, err := Open(ctx, nc, info.Stream, o.startFor())
	if err != nil {
		return 0, why(err)
	}
	defer f.Close()
	for {
		r, err := f.Next(ctx)
		if err != nil {
			return last, why(err)
		}
		if last > 0 && r.Seq != last+1 {
			fmt.Fprintf(o.Notes, "watch: events %d to %d are not in the stream (the host could not publish them; events.jsonl has them)\n", last+1, r.Seq-1)
		}
		last = r.Seq
		if err := o.print(r); err != nil {
			return last, err
		}
		if r.Kind == events.RunFinished || o.Filter.Past(r) {
			return last, nil
		}
	}
}

// startFor is where the stream is read from: Start, or the first seq the
// filter can want.
func (o WatchOptions) startFor() Start {
	if o.Start == (Start{}) && o.Filter.AfterSeq > 0 {
		return Start{Seq: o.Filter.AfterSeq + 1}
	}
	return o.Start
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
