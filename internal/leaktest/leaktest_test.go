package leaktest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB whose cleanups and errors the test controls.
type recorder struct {
	testing.TB
	cleanups []func()
	errs     []string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Cleanup(f func())          { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(f string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(f, a...)) }

func (r *recorder) runCleanups() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func TestGoroutines(t *testing.T) {
	t.Run("leak reported", func(t *testing.T) {
		// The leaked goroutine is blocked until after the check: the
		// check's deadline only bounds how long this case takes.
		old := Timeout
		Timeout = 200 * time.Millisecond
		t.Cleanup(func() { Timeout = old })
		r := &recorder{TB: t}
		Goroutines(r)
		stop := make(chan struct{})
		exited := make(chan struct{})
		go func() { defer close(exited); <-stop }()
		r.runCleanups()
		close(stop)
		<-exited
		if len(r.errs) != 1 || !strings.Contains(r.errs[0], "1 goroutine(s) leaked") || !strings.Contains(r.errs[0], "TestGoroutines") {
			t.Fatalf("errors %q", r.errs)
		}
	})
	t.Run("stopped goroutine is fine", func(t *testing.T) {
		r := &recorder{TB: t}
		Goroutines(r)
		stop := make(chan struct{})
		go func() { <-stop }()
		close(stop) // exits on its own; the check polls until it has
		r.runCleanups()
		if len(r.errs) != 0 {
			t.Fatalf("errors %q", r.errs)
		}
	})
}
