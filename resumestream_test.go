package terrarium_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/observe"
	"github.com/terrarium-sim/terrarium/world"
)

// watchOut collects what observe.Watch prints and closes seen once a line
// holds want.
type watchOut struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	once sync.Once
	seen chan struct{}
}

func (w *watchOut) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *watchOut) records(t *testing.T) []events.Record {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []events.Record
	sc := bufio.NewScanner(bytes.NewReader(w.buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r events.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("watch printed %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// Observers of a resumed run see the events kept before the checkpoint,
// then the resumed run's, and nothing of the timeline it left: through
// the watch code reading the live stream from the start, and through
// Host.Events. The killed run's stream store (here copied with the run
// directory) holds the superseded events under the same seqs.
func TestResumedRunStreamShowsOneTimeline(t *testing.T) {
	const ticks = 60
	whole, _ := runWithSeed(t, tournamentWithRandom(ticks, 20), 3)
	dir := killedCopy(t, whole, 50)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The watcher starts when the resumed host's bus is up and reads the
	// stream from the start; the last tick waits until it has printed
	// that tick, so it reads the live stream, not the file.
	out := &watchOut{want: `"kind":"tick.closed","tick":60,`, seen: make(chan struct{})}
	watchDone := make(chan error, 1)
	h, rep, err := terrarium.Resume(dir, terrarium.Config{Logger: testLogger(t), Env: raceEnv, EventBuffer: 16,
		Observers: func(observe.Info) {
			go func() { watchDone <- observe.Watch(ctx, observe.WatchOptions{Target: dir, JSON: true, Out: out}) }()
		},
		Progress: func(p terrarium.Progress) {
			if p.Tick == ticks {
				select {
				case <-out.seen:
				case <-ctx.Done():
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tick != 40 {
		t.Fatalf("resumed after tick %d, want 40", rep.Tick)
	}
	var fromHost []events.Record
	hostDone := make(chan struct{})
	go func() {
		defer close(hostDone)
		for r := range h.Events() {
			fromHost = append(fromHost, r)
		}
	}()
	res, err := h.Run(ctx)
	h.Close()
	<-hostDone
	if err != nil || res.Status != terrarium.StatusFinished {
		t.Fatalf("resumed run: %v (%v)", err, res)
	}
	if err := <-watchDone; err != nil {
		t.Fatalf("watch: %v", err)
	}
	select {
	case <-out.seen:
	default:
		t.Fatal("the watcher never printed the last tick")
	}

	final := mustRead(t, dir)
	old := map[string]bool{} // the events of the timeline the resume left
	for _, r := range mustRead(t, whole.Dir)[rep.EventSeq:] {
		old[r.Hash] = true
	}
	check := func(who string, got []events.Record, from uint64, firstTick world.Tick) {
		t.Helper()
		want := final[from-1:]
		if len(got) != len(want) {
			t.Errorf("%s: %d events, events.jsonl has %d from seq %d", who, len(got), len(want), from)
		}
		closed := map[world.Tick]int{}
		resumed := 0
		for i, r := range got {
			if old[r.Hash] {
				t.Errorf("%s: event %d (%s, tick %d) is from the superseded timeline", who, r.Seq, r.Kind, r.Tick)
			}
			if i < len(want) && (r.Seq != want[i].Seq || r.Hash != want[i].Hash) {
				t.Errorf("%s: event %d is seq %d %s (%.12s), events.jsonl has seq %d %s (%.12s)", who, i, r.Seq, r.Kind, r.Hash, want[i].Seq, want[i].Kind, want[i].Hash)
				break
			}
			switch r.Kind {
			case world.EventTickClosed:
				closed[r.Tick]++
			case events.RunResumed:
				resumed++
			}
		}
		if resumed != 1 {
			t.Errorf("%s: run.resumed %d times, want once", who, resumed)
		}
		for tk := firstTick; tk <= ticks; tk++ {
			if closed[tk] != 1 {
				t.Errorf("%s: tick %d closed %d times", who, tk, closed[tk])
			}
		}
		if len(closed) != int(ticks-firstTick+1) {
			t.Errorf("%s: %d ticks closed, want %d to %d", who, len(closed), firstTick, ticks)
		}
	}
	check("watch", out.records(t), 1, 1)
	check("Host.Events", fromHost, rep.EventSeq+1, rep.Tick+1)
}
