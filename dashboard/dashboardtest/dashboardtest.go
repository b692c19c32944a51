// Package dashboardtest talks to a real dashboard over HTTP as a page or
// a script would: its state, its controls and its stream.
package dashboardtest

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/dashboard"
)

// State gets the dashboard's current snapshot (GET /api/state) at url
// (its Info().URL). Call it from the test's goroutine.
func State(t testing.TB, url string) dashboard.Snapshot {
	t.Helper()
	res, err := http.Get(url + "api/state")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var s dashboard.Snapshot
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// Post sends body to POST /api/control with token in the token header
// (none if empty) and returns the answer's status and body. A transport
// error fails t without stopping it, so Post may be called from another
// goroutine (a host's callback); it then returns 0.
func Post(t testing.TB, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"api/control", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	if token != "" {
		req.Header.Set(dashboard.TokenHeader, token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// Control posts a control action (dashboard.ActionPause, ...).
func Control(t testing.TB, url, token, action string) (int, string) {
	t.Helper()
	return Post(t, url, token, `{"action":"`+action+`"}`)
}

// Stream is a page's reading of GET /api/stream: every snapshot it was
// sent, until the stream's end.
type Stream struct {
	mu    sync.Mutex
	snaps []dashboard.Snapshot
	ended bool // the "end" event came (not only the connection's end)
	done  chan struct{}
}

// OpenStream starts reading the stream at url; the reading stops at the
// stream's end, or when the test ends.
func OpenStream(t testing.TB, url string) *Stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"api/stream", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("stream content type %q", ct)
	}
	s := &Stream{done: make(chan struct{})}
	t.Cleanup(func() { cancel(); <-s.done })
	go func() {
		defer close(s.done)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			data, isData := strings.CutPrefix(line, "data: ")
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case isData && event == "state":
				var snap dashboard.Snapshot
				if json.Unmarshal([]byte(data), &snap) != nil {
					return // Wait reports the stream as cut
				}
				s.mu.Lock()
				s.snaps = append(s.snaps, snap)
				s.mu.Unlock()
			case isData && event == "end":
				s.mu.Lock()
				s.ended = true
				s.mu.Unlock()
				return
			}
		}
	}()
	return s
}

// First waits (up to a minute) for the first snapshot.
func (s *Stream) First(t testing.TB) dashboard.Snapshot {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		s.mu.Lock()
		n := len(s.snaps)
		s.mu.Unlock()
		if n > 0 {
			break
		}
		select {
		case <-s.done:
			t.Fatal("the stream ended before its first snapshot")
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no snapshot on the stream")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snaps[0]
}

// Wait waits for the stream's end and returns its last snapshot and how
// many it got; a stream cut before its "end" event fails t.
func (s *Stream) Wait(t testing.TB) (last dashboard.Snapshot, n int) {
	t.Helper()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		t.Errorf("the stream was cut before its end (after %d snapshots)", len(s.snaps))
	}
	if len(s.snaps) == 0 {
		return dashboard.Snapshot{}, 0
	}
	return s.snaps[len(s.snaps)-1], len(s.snaps)
}
