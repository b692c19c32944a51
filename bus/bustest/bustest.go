package bustest

import (
	"github.com/terrarium-sim/terrarium/internal/testlog"

	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium/bus"
)

// Logger returns a debug-level logger that writes through t.Log (see
// testlog.New).
func Logger(t testing.TB) hclog.Logger { return testlog.New(t) }

// NewServer starts a real bus server for run with its store in
// t.TempDir() and a test logger; it is closed in t.Cleanup.
func NewServer(t testing.TB, run string) *bus.Server {
	t.Helper()
	return Start(t, bus.Options{Run: run})
}

// Start starts a real bus server with opts, filling Dir (t.TempDir()) and
// Logger (Logger(t)) when they are empty; it is closed in t.Cleanup.
func Start(t testing.TB, opts bus.Options) *bus.Server {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = Logger(t)
	}
	s, err := bus.Start(opts)
	if err != nil {
		t.Fatalf("start bus: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close bus: %v", err)
		}
	})
	return s
}

// Violations records the violations a server reports. Pass Record as
// Options.OnViolation.
type Violations struct {
	mu   sync.Mutex
	list []bus.Violation
}

// Record appends v.
func (r *Violations) Record(v bus.Violation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, v)
}

// All returns the violations recorded so far, in report order.
func (r *Violations) All() []bus.Violation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bus.Violation(nil), r.list...)
}

// Wait polls until a recorded violation matches want (non-empty fields of
// want must be equal; Reason is not compared) and returns it, failing the
// test after Timeout.
func (r *Violations) Wait(t testing.TB, want bus.Violation) bus.Violation {
	t.Helper()
	var got bus.Violation
	Eventually(t, fmt.Sprintf("violation %+v", want), func() bool {
		for _, v := range r.All() {
			if (want.Agent == "" || v.Agent == want.Agent) &&
				(want.User == "" || v.User == want.User) &&
				(want.Op == "" || v.Op == want.Op) &&
				(want.Subject == "" || v.Subject == want.Subject) {
				got = v
				return true
			}
		}
		return false
	})
	return got
}

// Timeout is how long Eventually and the helpers built on it wait. It is a
// deadline against a hung test, not a performance threshold.
var Timeout = 10 * time.Second

// Eventually polls cond until it is true, failing the test (naming what)
// if it is still false after Timeout.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", Timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
