// Package testlog gives tests an hclog logger whose lines go to t.Log, so
// they show only when the test fails (or with -v). Lines written after the
// test's cleanups have run are dropped instead of panicking in testing.
package testlog

import (
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// New returns a debug-level logger writing through t.Log.
func New(t testing.TB) hclog.Logger {
	w := &writer{t: t}
	t.Cleanup(w.stop)
	return hclog.New(&hclog.LoggerOptions{
		Name:       t.Name(),
		Level:      hclog.Debug,
		Output:     w,
		Color:      hclog.ColorOff,
		TimeFormat: "15:04:05.000000",
	})
}

type writer struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *writer) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
