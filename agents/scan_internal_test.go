package agents

import (
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// Agents that exit together share process-table scans (a scan per exit
// made stopping 500 agents take seconds of CPU), and each caller still
// gets a table read after it asked: a process started before the call is
// in it.
func TestExitsShareProcessScans(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	const callers = 200
	// The first scan waits until every caller waits: those that came after
	// it started share the second.
	first := true
	scans.mu.Lock()
	before := scans.n
	scans.beforeScan = func() {
		if !first {
			return
		}
		first = false
		for {
			scans.mu.Lock()
			w := scans.waiting
			scans.mu.Unlock()
			if w == callers {
				return
			}
			runtime.Gosched()
		}
	}
	scans.mu.Unlock()
	t.Cleanup(func() {
		scans.mu.Lock()
		scans.beforeScan = nil
		scans.mu.Unlock()
	})

	var wg sync.WaitGroup
	missing := make(chan int, callers)
	for range callers {
		wg.Go(func() {
			ps, err := scans.table()
			if err != nil {
				t.Error(err)
				return
			}
			if !slices.ContainsFunc(ps, func(p procStat) bool { return p.pid == cmd.Process.Pid }) ||
				!slices.ContainsFunc(ps, func(p procStat) bool { return p.pid == os.Getpid() }) {
				missing <- 1
			}
		})
	}
	wg.Wait()
	close(missing)
	if len(missing) > 0 {
		t.Errorf("%d tables lacked a process that ran before the call", len(missing))
	}
	scans.mu.Lock()
	n := scans.n - before
	scans.mu.Unlock()
	if n < 1 || n > 2 {
		t.Errorf("%d scans for %d concurrent callers, want 1 or 2 (the first caller's, and one shared by those that came while it ran)", n, callers)
	}
}
