package agents

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The shim reads each rlimit back after setting it, and fails, naming the
// limit and both values, when the kernel holds something else.
func TestSetRlimitsReadsBack(t *testing.T) {
	held := map[int]unix.Rlimit{}
	set := func(res int, r *unix.Rlimit) error { held[res] = *r; return nil }
	get := func(res int, r *unix.Rlimit) error { *r = held[res]; return nil }
	rls := []Rlimit{{Resource: unix.RLIMIT_AS, Cur: 1 << 30, Max: 1 << 30}, {Resource: unix.RLIMIT_NPROC, Cur: 64, Max: 64}}
	if err := setRlimits(rls, set, get); err != nil {
		t.Fatalf("a kernel that holds what was set: %v", err)
	}
	if held[unix.RLIMIT_AS].Cur != 1<<30 || held[unix.RLIMIT_NPROC].Max != 64 {
		t.Fatalf("set %v", held)
	}

	// A kernel that clamps what it is given.
	clamp := func(res int, r *unix.Rlimit) error {
		held[res] = unix.Rlimit{Cur: min(r.Cur, 32), Max: min(r.Max, 32)}
		return nil
	}
	err := setRlimits(rls, clamp, get)
	if err == nil || !strings.Contains(err.Error(), "RLIMIT_AS to 1073741824 (hard 1073741824): the kernel holds 32 (hard 32)") {
		t.Errorf("clamped limit: %v", err)
	}

	denied := errors.New("denied")
	if err := setRlimits(rls, func(int, *unix.Rlimit) error { return denied }, get); !errors.Is(err, denied) || !strings.Contains(err.Error(), "setrlimit RLIMIT_AS") {
		t.Errorf("set fails: %v", err)
	}
	if err := setRlimits(rls, set, func(int, *unix.Rlimit) error { return denied }); !errors.Is(err, denied) || !strings.Contains(err.Error(), "getrlimit RLIMIT_AS after setting it") {
		t.Errorf("get fails: %v", err)
	}
}
