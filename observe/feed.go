package observe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/terrarium-sim/terrarium/events"
)

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("feed closed")

// Start says where a Feed begins. The zero Start is the first event.
type Start struct {
	// Seq, if not 0, starts at the event with this seq (the stream's
	// sequence equals the event seq when the stream missed nothing).
	Seq uint64
	// Time, if not zero, starts at the first event stored at or after it.
	Time time.Time
	// New starts with the first event stored after the Feed opened.
	New bool
}

// Feed is one observer's ordered reading of a run's event stream.
type Feed struct {
	msgs      jetstream.MessagesContext
	closeOnce sync.Once
	closed    chan struct{}
}

// Open starts reading stream (bus.StreamName(run)) over nc from start.
// nc may be an observer's connection (it must then have been made with
// nats.CustomInboxPrefix(info.InboxPrefix)) or the host's. The Feed
// creates its own ordered consumer on the server; the server removes it
// when the Feed is closed or its connection gone (after a few seconds of
// inactivity).
func Open(ctx context.Context, nc *nats.Conn, stream string, start Start) (*Feed, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open feed: %w", err)
	}
	cfg := jetstream.OrderedConsumerConfig{InactiveThreshold: 10 * time.Second}
	switch {
	case start.New:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	case start.Seq > 0:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = start.Seq
	case !start.Time.IsZero():
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		t := start.Time
		cfg.OptStartTime = &t
	default:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("open feed on stream %s: %w", stream, err)
	}
	// The client asks for at most 256 events (or 8 MiB) at a time: a
	// reader that stops reading stops asking, and the rest waits in the
	// stream.
	// Heartbeats every 2 s: a pull the server lost (an overloaded
	// machine) is noticed after 4 s, and the ordered consumer starts again
	// after the last event read, instead of after the default 10 s.
	msgs, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(256, 8<<20),
		jetstream.PullExpiry(10*time.Second), jetstream.PullHeartbeat(2*time.Second))
	if err != nil {
		return nil, fmt.Errorf("open feed on stream %s: %w", stream, err)
	}
	return &Feed{msgs: msgs, closed: make(chan struct{})}, nil
}

// Next returns the next event. It blocks until there is one, ctx ends
// (ctx.Err()) or the Feed is closed (ErrClosed).
func (f *Feed) Next(ctx context.Context) (events.Record, error) {
	for {
		select {
		case <-f.closed:
			return events.Record{}, ErrClosed
		default:
		}
		m, err := f.msgs.Next(jetstream.NextContext(ctx))
		switch {
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			return events.Record{}, ErrClosed
		case ctx.Err() != nil:
			return events.Record{}, ctx.Err()
		case errors.Is(err, jetstream.ErrNoHeartbeat):
			continue // the ordered consumer recreates itself from the last event
		case err != nil:
			return events.Record{}, fmt.Errorf("feed: %w", err)
		}
		var rec events.Record
		if err := json.Unmarshal(m.Data(), &rec); err != nil {
			return events.Record{}, fmt.Errorf("feed: event on %s is not a record: %w", m.Subject(), err)
		}
		return rec, nil
	}
}

// Close stops the Feed. Safe to call more than once, from any goroutine.
func (f *Feed) Close() {
	f.closeOnce.Do(func() {
		close(f.closed)
		f.msgs.Stop()
	})
}
