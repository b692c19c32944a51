package agents

import (
	"os/exec"
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
