package agents

import (
	"os/exec"
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
