package terrarium

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/observe"
)

// ErrNotRunning is returned by Host.Observe when no run is live.
var ErrNotRunning = errors.New("no run is live")

// How long the host waits at the end of a run for the stream's last
// publishes to be stored, then for observers to be sent the rest: as long
// as the observers behind keep reading (up to observersWait), but no
// longer than observersIdle once none of them takes anything.
const (
	streamCloseWait = 10 * time.Second
	observersWait   = 30 * time.Second
	observersIdle   = 2 * time.Second
	observersLinger = 250 * time.Millisecond
)

// startObservers opens the run's event stream (every event, from
// run.started on, goes there after events.jsonl), registers the default
// observer, writes observer.json and reports it through Config.Observers.
func (r *run) startObservers(ctx context.Context) error {
	pub, err := r.srv.OpenEventStream(ctx, r.nc, bus.StreamOptions{})
	if err != nil {
		return err
	}
	r.stream = pub
	if rp := r.h.cfg.resume; rp != nil {
		// The stream of the timeline the run left was moved aside with
		// jetstream/: this one starts with the events kept in events.jsonl.
		next, closeLog := keptEvents(filepath.Join(r.dir, "events.jsonl"), r.res.Run, rp.report.EventSeq)
		n, err := pub.Republish(ctx, next)
		closeLog()
		if err != nil {
			r.log.Warn("the resumed run's stream misses some of the events before the checkpoint (events.jsonl has them)", "republished", n, "error", err)
		} else {
			r.log.Debug("the events kept before the checkpoint are in the stream again", "events", n)
		}
	}
	r.events.SetPublisher(pub)
	creds, err := r.srv.AddObserver(bus.DefaultObserver)
	if err != nil {
		return err
	}
	info := observe.Info{
		Run: r.res.Run, URL: r.srv.ClientURL(), WebsocketURL: r.srv.WebsocketURL(),
		User: creds.User, Password: creds.Password, InboxPrefix: creds.InboxPrefix,
		Stream: creds.Stream, Subjects: creds.Subjects, HostPID: os.Getpid(),
	}
	if err := observe.WriteInfo(r.dir, info); err != nil {
		return err
	}
	r.log.Info("observers may connect", "url", info.URL, "ws_url", info.WebsocketURL, "user", info.User, "stream", info.Stream, "info", observe.InfoFile)
	r.h.live.Store(r)
	r.h.events.follow(r)
	r.h.uiFeed.follow(r)
	if f := r.h.cfg.Observers; f != nil {
		f(info)
	}
	return nil
}

// closeStream stores the stream's last events, gives observers a moment
// to be sent them, and records the stream's counts in the result. It runs
// after run.finished was emitted and the publisher unset.
func (r *run) closeStream() {
	r.h.live.CompareAndSwap(r, nil)
	if r.stream == nil {
		return
	}
	// The credentials die with the bus: observer.json is for live runs
	// (watch replays a run without one from events.jsonl).
	defer func() { _ = os.Remove(filepath.Join(r.dir, observe.InfoFile)) }()
	ctx, cancel := context.WithTimeout(context.Background(), streamCloseWait)
	st, err := r.stream.Close(ctx)
	cancel()
	if err != nil {
		r.log.Warn("event stream", "error", err)
	}
	r.res.Stream = &st
	if st.Failed+st.Dropped > 0 {
		r.log.Warn("events missing from the stream (events.jsonl has them all)", "failed", st.Failed, "dropped", st.Dropped)
	}
	ctx, cancel = context.WithTimeout(context.Background(), observersWait)
	defer cancel()
	if err := r.stream.WaitConsumers(ctx, observersIdle); err != nil {
		r.log.Debug("observers", "error", err)
		return
	}
	// Sent is not yet read: a client drops what it had buffered when its
	// server goes away. Give the last messages a moment to be taken in.
	if r.stream.Consumers() > 0 {
		time.Sleep(observersLinger)
	}
}

// Observe opens a feed of the live run's events from start, over the
// host's own connection (for a program embedding the host, such as a
// dashboard). It fails with ErrNotRunning before the bus is up and after
// the run ended; a feed still open when the run ends returns an error
// from Next. Close the feed when done.
func (h *Host) Observe(ctx context.Context, start observe.Start) (*observe.Feed, error) {
	r := h.live.Load()
	if r == nil {
		return nil, fmt.Errorf("observe: %w", ErrNotRunning)
	}
	return observe.Open(ctx, r.nc, bus.StreamName(r.res.Run), start)
}

// Observer returns the live run's observer.json contents: where and how
// an observer connects. ok is false when no run is live.
func (h *Host) Observer() (info observe.Info, ok bool) {
	r := h.live.Load()
	if r == nil {
		return observe.Info{}, false
	}
	info, err := observe.ReadInfo(r.dir)
	return info, err == nil
}

// keptEvents reads the first keep lines of events.jsonl for
// EventPublisher.Republish; close closes the file.
func keptEvents(path, run string, keep uint64) (next func() (bus.StoredEvent, bool, error), close func()) {
	f, err := os.Open(path)
	if err != nil {
		return func() (bus.StoredEvent, bool, error) { return bus.StoredEvent{}, false, err }, func() {}
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var read uint64
	next = func() (bus.StoredEvent, bool, error) {
		if read >= keep {
			return bus.StoredEvent{}, false, nil
		}
		line, err := br.ReadBytes('\n')
		if err != nil {
			return bus.StoredEvent{}, false, fmt.Errorf("events.jsonl line %d: %w", read+1, err)
		}
		read++
		line = line[:len(line)-1]
		var rec struct {
			Seq  uint64 `json:"seq"`
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return bus.StoredEvent{}, false, fmt.Errorf("events.jsonl line %d: %w", read, err)
		}
		return bus.StoredEvent{Seq: rec.Seq, Subject: bus.EventSubject(run, rec.Kind), Line: line}, true, nil
	}
	return next, func() { f.Close() }
}
