package workspace

import (
	"errors"
	"testing"
	"time"
)

func TestTable(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type step struct {
		at     int // ms
		op     string
		agent  string
		path   string
		prefix bool
		wait   int // ms
		token  uint64
		err    error
		queued bool
		// after the step
		granted map[string]uint64 // agent -> token granted by this step's outcome
		expired int
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"grant then conflict fails fast", []step{
			{op: "acquire", agent: "a", path: "x", token: 1},
			{op: "acquire", agent: "b", path: "x", err: ErrLeaseHeld},
		}},
		{"prefix covers files below it", []step{
			{op: "acquire", agent: "a", path: "d", prefix: true, token: 1},
			{op: "acquire", agent: "b", path: "d/e/f", err: ErrLeaseHeld},
			{op: "acquire", agent: "b", path: "de", token: 2},
		}},
		{"file below blocks prefix above", []step{
			{op: "acquire", agent: "a", path: "d/x", token: 1},
			{op: "acquire", agent: "b", path: "d", prefix: true, err: ErrLeaseHeld},
		}},
		{"waiters are served first come first served", []step{
			{op: "acquire", agent: "a", path: "x", token: 1},
			{at: 1, op: "acquire", agent: "b", path: "x", wait: 5000, queued: true},
			{at: 2, op: "acquire", agent: "c", path: "x", wait: 5000, queued: true},
			{at: 3, op: "release", agent: "a", token: 1, granted: map[string]uint64{"b": 2}},
			{at: 4, op: "release", agent: "b", token: 2, granted: map[string]uint64{"c": 3}},
		}},
		{"no overtaking a waiter that overlaps", []step{
			{op: "acquire", agent: "a", path: "x", token: 1},
			{at: 1, op: "acquire", agent: "b", path: "x", wait: 5000, queued: true},
			{at: 2, op: "acquire", agent: "c", path: "x", err: ErrLeaseHeld},
			{at: 2, op: "acquire", agent: "c", path: "y", token: 2},
		}},
		{"expiry, lock delay, then the waiter", []step{
			{op: "acquire", agent: "a", path: "x", token: 1},
			{at: 1, op: "acquire", agent: "b", path: "x", wait: 60000, queued: true},
			{at: 9999, op: "advance"},
			{at: 10000, op: "advance", expired: 1},
			{at: 10499, op: "advance"},
			{at: 10500, op: "advance", granted: map[string]uint64{"b": 2}},
			{at: 10600, op: "renew", agent: "a", token: 1, err: ErrStaleToken},
			{at: 10600, op: "release", agent: "a", token: 1, err: ErrStaleToken},
		}},
		{"renew keeps it alive", []step{
			{op: "acquire", agent: "a", path: "x", token: 1},
			{at: 9000, op: "renew", agent: "a", token: 1},
			{at: 18000, op: "advance"},
			{at: 19000, op: "advance", expired: 1},
		}},
		{"death: lock delay before the next grant", []step{
			{op: "acquire", agent: "a", path: "x", token: 1},
			{at: 1, op: "acquire", agent: "b", path: "x", wait: 5000, queued: true},
			{at: 100, op: "dead", agent: "a"},
			{at: 599, op: "advance"},
			{at: 600, op: "advance", granted: map[string]uint64{"b": 2}},
		}},
		{"a wait ends", []step{
			{op: "acquire", agent: "a", path: "x", token: 1},
			{at: 1, op: "acquire", agent: "b", path: "x", wait: 100, queued: true},
			{at: 101, op: "advance"},
			{at: 102, op: "release", agent: "a", token: 1},
		}},
		{"a token of someone else is stale", []step{
			{op: "acquire", agent: "a", path: "x", token: 1},
			{op: "release", agent: "b", token: 1, err: ErrStaleToken},
		}},
		{"asking again for one's own lease renews it", []step{
			{op: "acquire", agent: "a", path: "x", token: 1},
			{at: 9000, op: "acquire", agent: "a", path: "x", token: 1},
			{at: 18000, op: "advance"},
		}},
		{"tokens only grow across releases", []step{
			{op: "acquire", agent: "a", path: "x", token: 1},
			{op: "release", agent: "a", token: 1},
			{op: "acquire", agent: "a", path: "x", token: 2},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := NewTable(10*time.Second, 500*time.Millisecond, 0)
			byID := map[uint64]string{}
			for i, s := range c.steps {
				now := at(s.at)
				var out Outcome
				var err error
				switch s.op {
				case "acquire":
					var l Lease
					var id uint64
					var queued bool
					l, id, queued, err = tb.Acquire(now, s.agent, s.path, s.prefix, time.Duration(s.wait)*time.Millisecond)
					if queued != s.queued {
						t.Fatalf("step %d: queued %v, want %v", i, queued, s.queued)
					}
					if queued {
						byID[id] = s.agent
					} else if err == nil && l.Token != s.token {
						t.Fatalf("step %d: token %d, want %d", i, l.Token, s.token)
					}
				case "release":
					_, out, err = tb.Release(now, s.agent, s.token)
				case "renew":
					_, err = tb.Renew(now, s.agent, s.token)
				case "advance":
					out = tb.Advance(now)
				case "dead":
					_, _, out = tb.Dead(now, s.agent)
				}
				if !errors.Is(err, s.err) || (s.err == nil && err != nil) {
					t.Fatalf("step %d (%s): error %v, want %v", i, s.op, err, s.err)
				}
				got := map[string]uint64{}
				for id, l := range out.Granted {
					got[byID[id]] = l.Token
				}
				if len(got) != len(s.granted) {
					t.Fatalf("step %d: granted %v, want %v", i, got, s.granted)
				}
				for a, tok := range s.granted {
					if got[a] != tok {
						t.Fatalf("step %d: granted %v, want %v", i, got, s.granted)
					}
				}
				if len(out.Expired) != s.expired {
					t.Fatalf("step %d: expired %v, want %d", i, out.Expired, s.expired)
				}
			}
		})
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{"a/b": "a/b", "./a//b/": "a/b", "a/./b": "a/b"} {
		if got, err := CleanPath(in); err != nil || got != want {
			t.Errorf("CleanPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "/etc/passwd", "../agents/other/notes", "a/../../b", "a/..", ".", "a\x00b"} {
		if _, err := CleanPath(bad); !errors.Is(err, ErrBadPath) {
			t.Errorf("CleanPath(%q): error %v, want ErrBadPath", bad, err)
		}
	}
}

func TestTokensSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	tf, err := openTokenFile(dir + "/tokens")
	if err != nil {
		t.Fatal(err)
	}
	tb := NewTable(time.Second, 0, tf.last)
	tb.OnToken = tf.issue
	now := time.Now()
	var last uint64
	for i := 0; i < 3; i++ {
		l, _, _, err := tb.Acquire(now, "a", "x", false, 0)
		if err != nil {
			t.Fatal(err)
		}
		last = l.Token
		tb.Release(now, "a", l.Token)
	}
	tf2, err := openTokenFile(dir + "/tokens")
	if err != nil {
		t.Fatal(err)
	}
	tb2 := NewTable(time.Second, 0, tf2.last)
	l, _, _, err := tb2.Acquire(now, "a", "x", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if l.Token <= last {
		t.Fatalf("after reopening, token %d was issued again (last before: %d)", l.Token, last)
	}
}
