// Package leaktest checks that a test leaves no goroutine behind.
package leaktest

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Goroutines fails the test if goroutines started after this call
// are still running once the test and its other cleanups are done. Call it
// first in the test, before creating what it should check: it registers
// its check with t.Cleanup, and cleanups run last-registered first, so the
// check runs after the resources' own cleanups (a server's Close). It
// polls until the new goroutines are gone or Timeout passes, then reports
// their stacks.
//
// Goroutines of the testing package (other tests' runners, alarms) and of
// the runtime's signal handling are ignored. Tests running in parallel with
// the checked one may still be reported: do not use it in t.Parallel tests.
func Goroutines(t testing.TB) {
	t.Helper()
	before := map[uint64]bool{}
	for _, g := range goroutines() {
		before[g.id] = true
	}
	t.Cleanup(func() {
		var leaked []goroutine
		deadline := time.Now().Add(Timeout)
		for {
			leaked = leaked[:0]
			for _, g := range goroutines() {
				if !before[g.id] && !ignored(g.stack) {
					leaked = append(leaked, g)
				}
			}
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		var b strings.Builder
		for _, g := range leaked {
			b.WriteString("\n\n")
			b.WriteString(g.stack)
		}
		t.Errorf("%d goroutine(s) leaked (still running %s after the test):%s", len(leaked), Timeout, b.String())
	})
}

// Timeout is how long Goroutines waits for new goroutines to end.
var Timeout = 10 * time.Second

type goroutine struct {
	id    uint64
	stack string
}

// goroutines returns every goroutine's id and stack.
func goroutines() []goroutine {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var gs []goroutine
	for _, block := range bytes.Split(buf, []byte("\n\n")) {
		s := string(block)
		rest, ok := strings.CutPrefix(s, "goroutine ")
		if !ok {
			continue
		}
		idText, _, _ := strings.Cut(rest, " ")
		id, err := strconv.ParseUint(idText, 10, 64)
		if err != nil {
			continue
		}
		gs = append(gs, goroutine{id: id, stack: s})
	}
	return gs
}

// ignored says whether a goroutine belongs to the test framework or the
// runtime rather than to the code under test.
func ignored(stack string) bool {
	for _, s := range []string{
		"created by testing.",      // test runners and alarms
		"testing.(*M).",            // the main test goroutine
		"testing.runTests",         //
		"os/signal.signal_recv",    // signal.Notify's loop, lives forever
		"os/signal.loop",           //
		"runtime.ensureSigM",       //
		"runtime/trace.Start.func", // tracing, when -trace is used
	} {
		if strings.Contains(stack, s) {
			return true
		}
	}
	return false
}
