package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamName is the name of run's event stream. Run ids are valid stream
// names (no dots, wildcards or spaces), so the stream of run R is EVENTS_R.
func StreamName(run string) string { return "EVENTS_" + run }

// Event stream defaults (StreamOptions).
const (
	// DefaultStreamMaxBytes bounds the stream on disk. Past it the oldest
	// events are discarded from the stream (events.jsonl keeps them all).
	DefaultStreamMaxBytes = 1 << 30
	// DefaultStreamInFlight bounds the publishes waiting for the server's ack.
	DefaultStreamInFlight = 4096
	// DefaultStreamQueue bounds the events waiting to be published, in
	// events; DefaultStreamQueueBytes in bytes. Past either, an event is not
	// put in the stream (counted as Dropped); the file still has it.
	DefaultStreamQueue      = 1 << 16
	DefaultStreamQueueBytes = 64 << 20
	// streamMaxConsumers bounds the consumers observers may create.
	streamMaxConsumers = 1024
	// streamDuplicates is the window in which a second publish of the same
	// event (same Nats-Msg-Id, the event's seq) is discarded by the server.
	streamDuplicates = 2 * time.Minute
)

// StreamOptions configure Server.OpenEventStream; zero values take the defaults.
type StreamOptions struct {
	MaxBytes   int64 // stream size limit (DefaultStreamMaxBytes)
	InFlight   int   // unacknowledged publishes (DefaultStreamInFlight)
	Queue      int   // events waiting to be published (DefaultStreamQueue)
	QueueBytes int   // bytes waiting to be published (DefaultStreamQueueBytes)
}

// StreamStats counts what happened to the events handed to an
// EventPublisher. Queued = Stored + Failed + Dropped + the events still
// waiting (none after Close).
type StreamStats struct {
	Queued  uint64 `json:"queued"`  // handed to Publish
	Stored  uint64 `json:"stored"`  // acknowledged by the stream
	Failed  uint64 `json:"failed"`  // refused by the server or not acknowledged in time
	Dropped uint64 `json:"dropped"` // not published: the queue was full or the event too large
}

// EventPublisher puts a run's events into its JetStream stream. Publish
// never blocks: it queues the event for one goroutine that publishes
// asynchronously, with a bounded number of publishes in flight. Events are
// published in the order they were queued, each with the header
// Nats-Msg-Id set to its event seq, so a second publish of the same event
// is discarded by the stream.
type EventPublisher struct {
	log      hclog.Logger
	js       jetstream.JetStream
	stream   string
	guard    *nats.Subscription // guardConsumers
	queue    chan pending
	maxBytes int64

	queuedBytes atomic.Int64
	queued      atomic.Uint64
	stored      atomic.Uint64
	failed      atomic.Uint64
	dropped     atomic.Uint64
	consumers   atomic.Int64 // seen by the last WaitConsumers

	closeOnce sync.Once
	mu        sync.Mutex // guards closed against Publish's send
	closed    bool
	done      chan struct{} // closed when the publishing goroutine has exited
}

type pending struct {
	seq     uint64
	subject string
	data    []byte
}

// OpenEventStream creates (or opens again) the run's event stream over nc,
// a connection of the host (Server.Connect), and returns a publisher for
// it. The stream holds the subjects EventPrefix(run), on disk in the
// server's store, limited to MaxBytes (oldest discarded first), with
// duplicates detected by Nats-Msg-Id. The caller must Close the publisher
// before closing nc.
func (s *Server) OpenEventStream(ctx context.Context, nc *nats.Conn, o StreamOptions) (*EventPublisher, error) {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultStreamMaxBytes
	}
	if o.InFlight <= 0 {
		o.InFlight = DefaultStreamInFlight
	}
	if o.Queue <= 0 {
		o.Queue = DefaultStreamQueue
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = DefaultStreamQueueBytes
	}
	p := &EventPublisher{
		log:      s.log.Named("stream"),
		queue:    make(chan pending, o.Queue),
		maxBytes: int64(o.QueueBytes),
		stream:   StreamName(s.run),
		done:     make(chan struct{}),
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(o.InFlight),
		jetstream.WithPublishAsyncTimeout(30*time.Second),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			if n := p.failed.Add(1); n == 1 || n%1000 == 0 {
				p.log.Warn("event not stored in the stream (events.jsonl has it)", "seq", m.Header.Get(jetstream.MsgIDHeader), "failures", n, "error", err)
			}
		}),
		jetstream.WithPublishAsyncAckHandler(func(jetstream.JetStream, *nats.Msg, *jetstream.PubAck) { p.stored.Add(1) }),
	)
	if err != nil {
		return nil, fmt.Errorf("event stream: %w", err)
	}
	p.js = js
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:         StreamName(s.run),
		Description:  "events of run " + s.run + " (the record of truth is events.jsonl)",
		Subjects:     []string{EventPrefix(s.run)},
		Storage:      jetstream.FileStorage,
		Retention:    jetstream.LimitsPolicy,
		Discard:      jetstream.DiscardOld,
		MaxBytes:     o.MaxBytes,
		MaxMsgs:      -1,
		MaxAge:       0,
		MaxMsgSize:   MaxPayload,
		MaxConsumers: streamMaxConsumers,
		Duplicates:   streamDuplicates,
		Replicas:     1,
		DenyDelete:   true,
		DenyPurge:    true,
	})
	if err != nil {
		return nil, fmt.Errorf("create event stream %s: %w", StreamName(s.run), err)
	}
	if p.guard, err = s.guardConsumers(nc, js, p.stream); err != nil {
		return nil, fmt.Errorf("event stream: watch consumers: %w", err)
	}
	if err := nc.Flush(); err != nil {
		return nil, fmt.Errorf("event stream: watch consumers: %w", err)
	}
	go p.loop()
	return p, nil
}

// StoredEvent is an event already in the run's event log, to put into
// its stream again (EventPublisher.Republish).
type StoredEvent struct {
	Seq     uint64
	Subject string
	Line    []byte // the JSON line, without its newline
}

// Republish puts events the log already holds into the stream, in the
// order next returns them (ok false: no more), each with Nats-Msg-Id set
// to its seq: a resumed run's kept events, into the fresh stream that
// replaces the one of the timeline it left. It must be called before any
// Publish, so that the stream holds them first; unlike Publish it blocks
// while the server is behind (InFlight publishes unacknowledged). It
// returns how many it handed over; the ones the server refuses are
// counted as Failed, like Publish's.
func (p *EventPublisher) Republish(ctx context.Context, next func() (ev StoredEvent, ok bool, err error)) (int, error) {
	n := 0
	for {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("republish events: %w", err)
		}
		ev, ok, err := next()
		if err != nil {
			return n, fmt.Errorf("republish events: %w", err)
		}
		if !ok {
			return n, nil
		}
		p.queued.Add(1)
		if len(ev.Line) > MaxPayload-1024 {
			p.drop(ev.Seq, "larger than the bus's message limit")
			continue
		}
		m := nats.NewMsg(ev.Subject)
		m.Data = ev.Line
		m.Header.Set(jetstream.MsgIDHeader, strconv.FormatUint(ev.Seq, 10))
		for {
			_, err := p.js.PublishMsgAsync(m, jetstream.WithStallWait(time.Second))
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) && ctx.Err() == nil {
				continue
			}
			if err != nil {
				if c := p.failed.Add(1); c == 1 || c%1000 == 0 {
					p.log.Warn("event not stored in the stream (events.jsonl has it)", "seq", ev.Seq, "failures", c, "error", err)
				}
			}
			break
		}
		n++
	}
}

// Publish queues one event (its JSON line) for the stream. It never
// blocks: when the queue is full, or the event is larger than MaxPayload,
// the event is counted as dropped. After Close it does nothing.
func (p *EventPublisher) Publish(seq uint64, subject string, data []byte) {
	p.queued.Add(1)
	if len(data) > MaxPayload-1024 { // headroom for the subject and the Nats-Msg-Id header
		p.drop(seq, "larger than the bus's message limit")
		return
	}
	if p.queuedBytes.Add(int64(len(data))) > p.maxBytes {
		p.queuedBytes.Add(-int64(len(data)))
		p.drop(seq, "publish queue full")
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.queuedBytes.Add(-int64(len(data)))
		p.drop(seq, "stream closed")
		return
	}
	select {
	case p.queue <- pending{seq: seq, subject: subject, data: data}:
	default:
		p.queuedBytes.Add(-int64(len(data)))
		p.drop(seq, "publish queue full")
	}
}

func (p *EventPublisher) drop(seq uint64, why string) {
	if n := p.dropped.Add(1); n == 1 || n%1000 == 0 {
		p.log.Warn("event not put in the stream (events.jsonl has it)", "seq", seq, "reason", why, "dropped", n)
	}
}

// loop publishes queued events until the queue is closed.
func (p *EventPublisher) loop() {
	defer close(p.done)
	for ev := range p.queue {
		p.queuedBytes.Add(-int64(len(ev.data)))
		m := nats.NewMsg(ev.subject)
		m.Data = ev.data
		m.Header.Set(jetstream.MsgIDHeader, strconv.FormatUint(ev.seq, 10))
		for {
			// Blocks (this goroutine only) while InFlight publishes wait
			// for their ack.
			_, err := p.js.PublishMsgAsync(m, jetstream.WithStallWait(time.Second))
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				continue
			}
			if err != nil {
				if n := p.failed.Add(1); n == 1 || n%1000 == 0 {
					p.log.Warn("event not stored in the stream (events.jsonl has it)", "seq", ev.seq, "failures", n, "error", err)
				}
			}
			break
		}
	}
}

// Consumers is the number of consumers WaitConsumers last saw.
func (p *EventPublisher) Consumers() int { return int(p.consumers.Load()) }

// Stats returns the counts so far.
func (p *EventPublisher) Stats() StreamStats {
	return StreamStats{Queued: p.queued.Load(), Stored: p.stored.Load(), Failed: p.failed.Load(), Dropped: p.dropped.Load()}
}

// Close publishes what is queued, waits until every publish is
// acknowledged or ctx ends, and returns the final counts. Later Publish
// calls are dropped. A second Close waits again and returns the counts.
func (p *EventPublisher) Close(ctx context.Context) (StreamStats, error) {
	p.closeOnce.Do(func() {
		_ = p.guard.Unsubscribe()
		p.mu.Lock()
		p.closed = true
		close(p.queue)
		p.mu.Unlock()
	})
	select {
	case <-p.done:
	case <-ctx.Done():
		return p.Stats(), fmt.Errorf("close event stream: %w", ctx.Err())
	}
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return p.Stats(), fmt.Errorf("close event stream: %d publishes not acknowledged: %w", p.js.PublishAsyncPending(), ctx.Err())
	}
	return p.Stats(), nil
}

// WaitConsumers waits until every consumer of the stream has been sent
// every event it selects (NumPending 0), so observers reading at their
// own pace get the whole run before the host shuts the bus down. It
// waits as long as the consumers that are behind make progress: it
// returns once none is behind, when none of those behind was sent
// anything for idle (an observer that stopped reading cannot hold the
// host longer than that), or when ctx ends (the error says how many
// were behind).
func (p *EventPublisher) WaitConsumers(ctx context.Context, idle time.Duration) error {
	st, err := p.js.Stream(ctx, p.stream)
	if err != nil {
		return fmt.Errorf("wait for observers: %w", err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	sent := map[string]uint64{} // per consumer: the stream seq it was sent up to
	progress := time.Now()
	for {
		behind, n := 0, 0
		l := st.ListConsumers(ctx)
		for ci := range l.Info() {
			n++
			if ci.NumPending > 0 {
				behind++
			}
			if s := ci.Delivered.Stream; s > sent[ci.Name] {
				sent[ci.Name] = s
				progress = time.Now()
			}
		}
		p.consumers.Store(int64(n))
		if err := l.Err(); err != nil && ctx.Err() == nil {
			return fmt.Errorf("wait for observers: %w", err)
		}
		if behind == 0 && ctx.Err() == nil {
			return nil
		}
		if time.Since(progress) > idle {
			return fmt.Errorf("wait for observers: %d consumers behind and not reading for %s", behind, idle)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for observers: %d consumers still behind: %w", behind, ctx.Err())
		case <-tick.C:
		}
	}
}
