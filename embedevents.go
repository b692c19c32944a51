package terrarium

import (
	"context"
	"errors"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/observe"
)

// eventFeed feeds Host.Events from the run's event stream, through an
// ordered consumer of its own: the world publishes to the stream and never
// waits for the channel; a channel that is not read holds the consumer,
// and the stream keeps the rest. When the stream has a gap or goes away
// (the run ended before the game caught up), the feed goes on from
// events.jsonl once the event log is closed, so nothing is lost.
type eventFeed struct {
	ch      chan events.Record
	log     hclog.Logger
	feedc   chan *observe.Feed // the stream's feed, once the stream is up
	logDone chan struct{}      // closed when events.jsonl is complete (or was never made)
	stop    chan struct{}      // closed by Host.Close: give up on the reader
	exited  chan struct{}

	// Set before feedc is sent or logDone closed.
	path  string // events.jsonl
	first uint64 // seq of this process's first event (a resumed run goes on from its checkpoint)
}

func newEventFeed(n int, log hclog.Logger) *eventFeed {
	return &eventFeed{ch: make(chan events.Record, n), log: log, feedc: make(chan *observe.Feed, 1),
		logDone: make(chan struct{}), stop: make(chan struct{}), exited: make(chan struct{})}
}

// opened records where the event log is and the seq it goes on from.
func (f *eventFeed) opened(path string, last uint64) {
	if f == nil {
		return
	}
	f.path, f.first = path, last+1
}

// follow hands over the run's stream; called once, when it is up.
func (f *eventFeed) follow(r *run) {
	if f == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), streamCloseWait)
	feed, err := r.h.Observe(ctx, observe.Start{Seq: f.first})
	cancel()
	if err != nil {
		f.log.Warn("the Events channel reads events.jsonl at the end of the run instead of the stream", "error", err)
		return
	}
	f.feedc <- feed
}

// logClosed is called once the run is over and its event log closed.
func (f *eventFeed) logClosed() {
	if f == nil {
		return
	}
	close(f.logDone)
}

// close stops the feed (Host.Close) and waits for it to end.
func (f *eventFeed) close() {
	if f == nil {
		return
	}
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.exited
}

// run forwards the events to ch, in seq order, each once, then closes it.
func (f *eventFeed) run() {
	defer close(f.exited)
	defer close(f.ch)
	var feed *observe.Feed
	select {
	case feed = <-f.feedc:
	case <-f.logDone:
	case <-f.stop:
		return
	}
	next := f.first
	if feed != nil {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-f.logDone:
			case <-f.stop:
			case <-ctx.Done():
			}
			cancel()
		}()
		var done bool
		next, done = f.fromStream(ctx, feed, next)
		feed.Close()
		cancel()
		if done {
			return
		}
	}
	select {
	case <-f.logDone:
	case <-f.stop:
		return
	}
	f.fromLog(next)
}

// fromStream forwards the stream's events from seq next until run.finished
// (done), a gap, or the stream's end; it returns the next seq to send.
func (f *eventFeed) fromStream(ctx context.Context, feed *observe.Feed, next uint64) (uint64, bool) {
	for {
		rec, err := feed.Next(ctx)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				f.log.Debug("the event stream ended before the run's last event: the rest comes from events.jsonl", "error", err)
			}
			return next, false
		}
		switch {
		case rec.Seq < next:
			continue
		case rec.Seq > next:
			f.log.Debug("the event stream misses events: the rest comes from events.jsonl", "want", next, "got", rec.Seq)
			return next, false
		}
		if !f.send(rec) {
			return next, true
		}
		next++
		if rec.Kind == events.RunFinished {
			return next, true
		}
	}
}

// fromLog forwards events.jsonl's events from seq next.
func (f *eventFeed) fromLog(next uint64) {
	if f.path == "" {
		return
	}
	recs, err := events.ReadFile(f.path)
	if err != nil {
		f.log.Error("the Events channel could not read the event log", "error", err)
	}
	for _, rec := range recs {
		if rec.Seq >= next && !f.send(rec) {
			return
		}
	}
}

func (f *eventFeed) send(rec events.Record) bool {
	select {
	case f.ch <- rec:
		return true
	case <-f.stop:
		return false
	}
}
