package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/bus/bustest"
)

// streamRig is a rig with the run's event stream open.
type streamRig struct {
	*rig
	pub *bus.EventPublisher
}

func newStreamRig(t *testing.T, o bus.StreamOptions) *streamRig {
	t.Helper()
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), bustest.Timeout)
	defer cancel()
	pub, err := r.s.OpenEventStream(ctx, r.host, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = pub.Close(context.Background()) })
	return &streamRig{rig: r, pub: pub}
}

// emit publishes events seq from..to (inclusive) as the events writer would.
func (r *streamRig) emit(from, to uint64) {
	for seq := from; seq <= to; seq++ {
		r.pub.Publish(seq, bus.EventSubject(run, "tick.closed"), fmt.Appendf(nil, `{"v":1,"seq":%d,"kind":"tick.closed"}`, seq))
	}
}

// observer registers an observer and connects it over TCP.
func (r *streamRig) observer(t *testing.T, name string, url string) (*nats.Conn, bus.ObserverCredentials) {
	t.Helper()
	c, err := r.s.AddObserver(name)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url,
		nats.UserInfo(c.User, c.Password), nats.CustomInboxPrefix(c.InboxPrefix), nats.NoReconnect(),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatalf("connect observer %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	return nc, c
}

// readSeqs reads n messages through an ordered consumer and returns the
// seq each carries (its Nats-Msg-Id).
func readSeqs(t *testing.T, nc *nats.Conn, n int, cfg jetstream.OrderedConsumerConfig) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bustest.Timeout)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, bus.StreamName(run), cfg)
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	it, err := cons.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	var got []string
	for len(got) < n {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			t.Fatalf("after %d messages: %v", len(got), err)
		}
		got = append(got, m.Headers().Get(jetstream.MsgIDHeader))
	}
	return got
}

func wantSeqs(t *testing.T, got []string, from, to uint64) {
	t.Helper()
	if uint64(len(got)) != to-from+1 {
		t.Fatalf("got %d events, want %d", len(got), to-from+1)
	}
	for i, s := range got {
		if want := fmt.Sprint(from + uint64(i)); s != want {
			t.Fatalf("event %d has seq %s, want %s (out of order or missing)", i, s, want)
		}
	}
}

func TestObserverReadsStreamInOrder(t *testing.T) {
	bustest.CheckGoroutines(t)
	r := newStreamRig(t, bus.StreamOptions{})
	r.emit(1, 500)
	obs, _ := r.observer(t, "o1", r.s.ClientURL())
	wantSeqs(t, readSeqs(t, obs, 500, jetstream.OrderedConsumerConfig{}), 1, 500)
	// From a sequence: the stream's sequence is the event seq.
	wantSeqs(t, readSeqs(t, obs, 101, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 400}), 400, 500)

	// Its other consumer operations: stream info, a durable consumer and its info.
	ctx, cancel := context.WithTimeout(context.Background(), bustest.Timeout)
	defer cancel()
	js, err := jetstream.New(obs)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, bus.StreamName(run))
	if err != nil {
		t.Fatalf("observer stream info: %v", err)
	}
	if n := st.CachedInfo().State.Msgs; n != 500 {
		t.Errorf("stream has %d events, want 500", n)
	}
	dc, err := js.CreateConsumer(ctx, bus.StreamName(run), jetstream.ConsumerConfig{Durable: "o1-durable", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("observer durable consumer: %v", err)
	}
	b, err := dc.Fetch(10, jetstream.FetchMaxWait(bustest.Timeout))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range b.Messages() {
		if err := m.Ack(); err != nil {
			t.Fatalf("ack: %v", err)
		}
		n++
	}
	if n != 10 {
		t.Fatalf("fetched %d, want 10", n)
	}
	if _, err := dc.Info(ctx); err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	if v := r.viol.All(); len(v) != 0 {
		t.Errorf("an observer reading the stream caused violations: %+v", v)
	}
}

// Case 3 of issue 4: with observer credentials, everything but reading the
// event stream is refused.
func TestObserverRefusals(t *testing.T) {
	bustest.CheckGoroutines(t)
	r := newStreamRig(t, bus.StreamOptions{})
	r.emit(1, 10)
	agentCreds, err := r.s.AddAgent("A")
	if err != nil {
		t.Fatal(err)
	}
	agent := connectAgent(t, r.s, agentCreds)
	obs, creds := r.observer(t, "o1", r.s.ClientURL())
	// The host sees anything that gets through on the run's subjects.
	leak := subSync(t, r.host, "sim."+run+".>")

	for _, subject := range []string{
		bus.AgentSubject(run, "A", bus.KindAct), // as an agent
		bus.ToSubject(run, "A", bus.KindObs),    // to an agent
		bus.WorldSubject(run, bus.KindTick),     // to every agent
		bus.EventSubject(run, "run.finished"),   // a forged event
	} {
		publish(t, obs, subject, "forged")
		r.viol.Wait(t, bus.Violation{User: creds.User, Op: bus.OpPublish, Subject: subject})
	}
	if n, _, _ := leak.Pending(); n != 0 {
		t.Fatalf("%d forged messages reached the run's subjects", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), bustest.Timeout)
	defer cancel()
	js, err := jetstream.New(obs)
	if err != nil {
		t.Fatal(err)
	}
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 300*time.Millisecond) }
	stream := bus.StreamName(run)
	c1, cancel1 := short()
	defer cancel1()
	if err := js.DeleteStream(c1, stream); err == nil {
		t.Error("observer deleted the stream")
	}
	r.viol.Wait(t, bus.Violation{User: creds.User, Op: bus.OpPublish, Subject: "$JS.API.STREAM.DELETE." + stream})
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	c2, cancel2 := short()
	defer cancel2()
	if err := st.Purge(c2); err == nil {
		t.Error("observer purged the stream")
	}
	r.viol.Wait(t, bus.Violation{User: creds.User, Op: bus.OpPublish, Subject: "$JS.API.STREAM.PURGE." + stream})
	c3, cancel3 := short()
	defer cancel3()
	if _, err := js.UpdateStream(c3, jetstream.StreamConfig{Name: stream, Subjects: []string{">"}}); err == nil {
		t.Error("observer changed the stream")
	}
	r.viol.Wait(t, bus.Violation{User: creds.User, Op: bus.OpPublish, Subject: "$JS.API.STREAM.UPDATE." + stream})
	c4, cancel4 := short()
	defer cancel4()
	if _, err := js.CreateStream(c4, jetstream.StreamConfig{Name: "mine", Subjects: []string{bus.ToPrefix(run, "A")}}); err == nil {
		t.Error("observer made a stream capturing an agent's observations")
	}

	// Reading an agent's observations or inbox, or every subject.
	for _, subject := range []string{bus.ToSubject(run, "A", bus.KindObs), agentCreds.InboxPrefix + ".x", ">"} {
		if _, err := obs.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		r.viol.Wait(t, bus.Violation{User: creds.User, Op: bus.OpSubscribe, Subject: subject})
	}

	// Joining as an agent with the observer's password, or as the observer
	// with an agent's.
	for _, up := range [][2]string{{"A", creds.Password}, {creds.User, agentCreds.Password}} {
		if nc, err := nats.Connect(r.s.ClientURL(), nats.UserInfo(up[0], up[1]), nats.NoReconnect()); err == nil {
			nc.Close()
			t.Errorf("logged in as %s with the wrong password", up[0])
		}
	}

	// The stream is intact, and the agent was not disturbed.
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 10 || len(info.Config.Subjects) != 1 || info.Config.Subjects[0] != bus.EventPrefix(run) {
		t.Errorf("stream after the refusals: %d events, subjects %v", info.State.Msgs, info.Config.Subjects)
	}
	if !agent.IsConnected() {
		t.Error("agent disconnected")
	}
	// Every refusal named the observer's user and blamed no agent.
	for _, v := range r.viol.All() {
		if v.Agent != "" {
			t.Errorf("violation blames agent %q: %+v", v.Agent, v)
		}
	}
}

func TestEventPublisherDeduplicatesAndCounts(t *testing.T) {
	bustest.CheckGoroutines(t)
	r := newStreamRig(t, bus.StreamOptions{})
	r.emit(1, 20)
	r.emit(11, 20)                                                                        // published again: the stream keeps one of each
	r.pub.Publish(21, bus.EventSubject(run, "tick.closed"), make([]byte, bus.MaxPayload)) // too large for the bus
	r.emit(22, 22)
	ctx, cancel := context.WithTimeout(context.Background(), bustest.Timeout)
	defer cancel()
	st, err := r.pub.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Queued != 32 || st.Dropped != 1 || st.Failed != 0 || st.Stored != 31 {
		t.Errorf("stats %+v, want 32 queued, 31 stored (acknowledged, duplicates too), 1 dropped", st)
	}
	js, err := jetstream.New(r.host)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, bus.StreamName(run))
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 21 {
		t.Errorf("stream holds %d events, want 21 (20 + seq 22, without duplicates)", n)
	}
	// After Close, Publish is dropped, never blocks or panics.
	r.pub.Publish(23, bus.EventSubject(run, "x"), []byte("{}"))
	if st := r.pub.Stats(); st.Dropped != 2 {
		t.Errorf("after close: %+v, want 2 dropped", st)
	}
}

// A full queue makes Publish drop (and count), not wait: the caller is the
// world's loop.
func TestEventPublisherQueueFullDropsAndCounts(t *testing.T) {
	bustest.CheckGoroutines(t)
	r := newStreamRig(t, bus.StreamOptions{Queue: 1, InFlight: 1})
	const n = 2000
	r.emit(1, n)
	ctx, cancel := context.WithTimeout(context.Background(), bustest.Timeout)
	defer cancel()
	st, err := r.pub.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Queued != n || st.Stored+st.Dropped+st.Failed != n {
		t.Fatalf("stats %+v do not account for %d events", st, n)
	}
	if st.Dropped == 0 {
		t.Errorf("a one-event queue took %d events without dropping: %+v", n, st)
	}
}

func TestWebsocketObserver(t *testing.T) {
	bustest.CheckGoroutines(t)
	viol := &bustest.Violations{}
	s := bustest.Start(t, bus.Options{Run: run, OnViolation: viol.Record, Websocket: "127.0.0.1:0"})
	host, err := s.Connect("host")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(host.Close)
	ctx, cancel := context.WithTimeout(context.Background(), bustest.Timeout)
	defer cancel()
	pub, err := s.OpenEventStream(ctx, host, bus.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = pub.Close(context.Background()) })
	r := &streamRig{rig: &rig{s: s, viol: viol, host: host}, pub: pub}
	r.emit(1, 50)

	u := s.WebsocketURL()
	if !strings.HasPrefix(u, "ws://127.0.0.1:") || strings.HasSuffix(u, ":-1") || strings.HasSuffix(u, ":0") {
		t.Fatalf("websocket URL %q", u)
	}
	obs, creds := r.observer(t, "browser", u)
	wantSeqs(t, readSeqs(t, obs, 50, jetstream.OrderedConsumerConfig{}), 1, 50)
	// The same permissions apply over websocket.
	publish(t, obs, bus.WorldSubject(run, bus.KindEnd), "forged")
	viol.Wait(t, bus.Violation{User: creds.User, Op: bus.OpPublish, Subject: bus.WorldSubject(run, bus.KindEnd)})
	// A wrong password is refused over websocket too.
	if nc, err := nats.Connect(u, nats.UserInfo(creds.User, "wrong"), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Error("websocket login with a wrong password accepted")
	}
}

func TestWebsocketAddressChecked(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "10.1.2.3:80", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000"} {
		_, err := bus.Start(bus.Options{Run: run, Dir: t.TempDir(), Logger: bustest.Logger(t), Websocket: addr})
		if err == nil || !strings.Contains(err.Error(), "websocket") {
			t.Errorf("websocket %q: error %v, want a refusal naming the websocket address", addr, err)
		}
	}
	if s := bustest.NewServer(t, run); s.WebsocketURL() != "" {
		t.Errorf("WebsocketURL without a listener = %q", s.WebsocketURL())
	}
}

// A push consumer cannot be stopped by subject permissions (its deliver
// subject is in the request body): the host deletes one that delivers
// outside the observer's inbox and reports it; one into its own inbox stays.
func TestObserverPushConsumerOutsideItsInboxIsDeleted(t *testing.T) {
	bustest.CheckGoroutines(t)
	r := newStreamRig(t, bus.StreamOptions{})
	r.emit(1, 5)
	obs, creds := r.observer(t, "o1", r.s.ClientURL())
	js, err := jetstream.New(obs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bustest.Timeout)
	defer cancel()
	evil := bus.ToSubject(run, "A", bus.KindObs)
	if _, err := js.CreateOrUpdatePushConsumer(ctx, bus.StreamName(run), jetstream.ConsumerConfig{Name: "evil", DeliverSubject: evil}); err != nil {
		t.Fatalf("create push consumer: %v", err)
	}
	r.viol.Wait(t, bus.Violation{User: creds.User, Op: bus.OpConsumer, Subject: evil})
	hjs, err := jetstream.New(r.host)
	if err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, "the push consumer deleted", func() bool {
		_, err := hjs.Consumer(ctx, bus.StreamName(run), "evil")
		return errors.Is(err, jetstream.ErrConsumerNotFound)
	})
	own := creds.InboxPrefix + ".push"
	if _, err := js.CreateOrUpdatePushConsumer(ctx, bus.StreamName(run), jetstream.ConsumerConfig{Name: "mine", DeliverSubject: own}); err != nil {
		t.Fatalf("create push consumer into its own inbox: %v", err)
	}
	sub := subSync(t, obs, own)
	for i := 0; i < 5; i++ {
		next(t, sub)
	}
	if _, err := hjs.PushConsumer(ctx, bus.StreamName(run), "mine"); err != nil {
		t.Errorf("push consumer into the observer's own inbox: %v", err)
	}
}

// At the end of a run the host waits for observers behind as long as they
// keep reading, and not for one that stopped.
func TestWaitConsumersWaitsOnlyForReaders(t *testing.T) {
	r := newStreamRig(t, bus.StreamOptions{})
	const n = 200
	r.emit(1, n)
	ctx, cancel := context.WithTimeout(context.Background(), bustest.Timeout)
	defer cancel()
	consume := func(name string, every time.Duration, stopAfter int) (got func() int, stop func()) {
		nc, _ := r.observer(t, name, r.s.ClientURL())
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		cons, err := js.OrderedConsumer(ctx, bus.StreamName(run), jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(1))
		if err != nil {
			t.Fatal(err)
		}
		var count atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			for count.Load() < int64(stopAfter) {
				if _, err := it.Next(); err != nil {
					return
				}
				count.Add(1)
				time.Sleep(every)
			}
		}()
		return func() int { return int(count.Load()) }, func() { it.Stop(); <-done }
	}
	// One reader takes an event every 5 ms: about a second for all, far
	// longer than the idle time; the host must wait for it.
	got, stop := consume("steady", 5*time.Millisecond, n)
	defer stop()
	if err := r.pub.WaitConsumers(ctx, 200*time.Millisecond); err != nil {
		t.Fatalf("wait for a reader that reads: %v", err)
	}
	if g := got(); g < n-1 {
		t.Errorf("the wait ended with the reader at %d of %d events", g, n)
	}
	// One that stops after 3 events is given up on, with a reason.
	_, stop2 := consume("stalled", 0, 3)
	defer stop2()
	err := r.pub.WaitConsumers(ctx, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not reading") {
		t.Errorf("wait for a reader that stopped: %v, want an error saying it is not reading", err)
	}
}

// Republish puts stored events into the stream before the ones Publish
// queues afterwards, in order, each under its seq, past the number of
// publishes that may wait for acknowledgement (it waits instead of
// dropping); the stream's sequence stays the event's seq.
func TestRepublishComesFirst(t *testing.T) {
	bustest.CheckGoroutines(t)
	r := newStreamRig(t, bus.StreamOptions{InFlight: 8})
	const kept = 100
	seq := uint64(0)
	n, err := r.pub.Republish(context.Background(), func() (bus.StoredEvent, bool, error) {
		if seq == kept {
			return bus.StoredEvent{}, false, nil
		}
		seq++
		return bus.StoredEvent{Seq: seq, Subject: bus.EventSubject(run, "tick.closed"), Line: fmt.Appendf(nil, `{"v":1,"seq":%d,"kind":"tick.closed"}`, seq)}, true, nil
	})
	if err != nil || n != kept {
		t.Fatalf("republish: %d, %v", n, err)
	}
	r.emit(kept+1, kept+5)
	nc, _ := r.observer(t, "o", r.s.ClientURL())
	got := readSeqs(t, nc, kept+5, jetstream.OrderedConsumerConfig{})
	for i, s := range got {
		if s != fmt.Sprint(i+1) {
			t.Fatalf("message %d carries seq %s, want %d (all: %v)", i+1, s, i+1, got)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), bustest.Timeout)
	defer cancel()
	st, err := r.pub.Close(ctx)
	if err != nil || st.Queued != kept+5 || st.Stored != kept+5 || st.Failed+st.Dropped != 0 {
		t.Errorf("stats %+v, %v", st, err)
	}
}
