package agents

import (
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// zombieChild sees an exited, unreaped child without reaping it, and
// nothing once it is reaped.
func TestZombieChild(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "exit 0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for !zombieChild() {
		if time.Now().After(deadline) {
			t.Fatal("an exited child was never seen")
		}
		time.Sleep(time.Millisecond)
	}
	if !zombieChild() {
		t.Fatal("zombieChild reaped the child")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	for zombieChild() { // other tests' children may be exiting: wait for quiet
		if time.Now().After(deadline) {
			t.Fatal("a zombie child remains after Wait")
		}
		time.Sleep(time.Millisecond)
	}
}

// The reaper's pass (orphans with zombiesOnly) never reads the host's
// descriptor table for a live child outside every agent's session, such
// as the watchdog: that read, every 250 ms under children.mu, made
// spawning 1,000 agents slow down as it went (a regression test).
func TestReaperPassSkipsLiveOrphans(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // like the watchdog: its own session, not an agent
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	calls := 0
	readHeld = func() map[int]bool { calls++; return pidfdHeld() }
	t.Cleanup(func() { readHeld = pidfdHeld })
	s := &Supervisor{}
	children.mu.Lock()
	found, err := s.orphans(true)
	children.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range found {
		if p.pid == cmd.Process.Pid {
			t.Errorf("a live child was reported as a zombie orphan")
		}
	}
	if calls != 0 {
		t.Errorf("the reaper's pass read the descriptor table %d times for a live child, want 0", calls)
	}
	// The shutdown sweep does look at it (and leaves it: exec holds its pidfd).
	children.mu.Lock()
	found, err = s.orphans(false)
	children.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 {
		t.Errorf("the sweep did not consult the descriptor table for a live orphan")
	}
	for _, p := range found {
		if p.pid == cmd.Process.Pid {
			t.Errorf("the sweep took a child this process holds a pidfd for")
		}
	}
}

// Exits handled at once share table reads, and every caller gets a read
// that began after it asked (so it sees what outlived its leader).
func TestListProcsFreshSharesReads(t *testing.T) {
	var mu sync.Mutex
	var begun []int // the call count when each read began
	calls := 0
	release := make(chan struct{})
	first := make(chan struct{})
	freshTable.mu.Lock()
	freshTable.read = func() ([]procStat, error) {
		mu.Lock()
		n := len(begun)
		begun = append(begun, calls)
		mu.Unlock()
		if n == 0 {
			close(first)
			<-release // hold the first read while others ask
		}
		return []procStat{{pid: n}}, nil
	}
	freshTable.mu.Unlock()
	t.Cleanup(func() {
		freshTable.mu.Lock()
		freshTable.read = listProcs
		freshTable.mu.Unlock()
	})

	var wg sync.WaitGroup
	results := make([]int, 51)
	callNo := make([]int, 51)
	ask := func(i int) {
		mu.Lock()
		calls++
		callNo[i] = calls
		mu.Unlock()
		ps, err := listProcsFresh()
		if err != nil || len(ps) != 1 {
			t.Errorf("caller %d: %v, %v", i, ps, err)
			return
		}
		results[i] = ps[0].pid
	}
	wg.Go(func() { ask(0) })
	<-first // read 0 is in flight: 50 more callers arrive during it
	for i := 1; i <= 50; i++ {
		wg.Go(func() { ask(i) })
	}
	waitUntil(t, "50 callers waiting", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls == 51
	})
	close(release)
	wg.Wait()
	for i, r := range results {
		if begun[r] < callNo[i] {
			t.Errorf("caller %d (call %d) got read %d, which began at call %d: before it asked", i, callNo[i], r, begun[r])
		}
	}
	// One read for the first caller, then one (or, for a caller that was
	// slow to get to the lock, very few) for the 50 that came during it.
	if len(begun) < 2 || len(begun) > 5 {
		t.Errorf("%d reads for 51 callers (began at call counts %v), want 2 to 5", len(begun), begun)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
