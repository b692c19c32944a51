package terrarium

import (
	"strconv"
	"strings"

	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/internal/testenv"
)

// A base far from the default, so these tests never meet real runs' UIDs.
const testUIDBase = 1_500_000_000

func TestUIDBlocksAreExclusive(t *testing.T) {
	a, err := reserveUIDs(testUIDBase, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := reserveUIDs(testUIDBase, 3)
	if err != nil {
		t.Fatal(err)
	}
	if a.base != testUIDBase || b.base != testUIDBase+uidBlockSize {
		t.Fatalf("bases %d and %d, want %d and %d: concurrent runs must not share UIDs", a.base, b.base, testUIDBase, testUIDBase+uidBlockSize)
	}
	a.release()
	c, err := reserveUIDs(testUIDBase, 3)
	if err != nil {
		t.Fatal(err)
	}
	if c.base != testUIDBase {
		t.Errorf("after release, base %d, want %d again", c.base, testUIDBase)
	}
	b.release()
	c.release()
	if _, err := reserveUIDs(testUIDBase, uidBlockSize+1); err == nil {
		t.Error("a block was reserved for more agents than it has UIDs")
	}
	// Regression: a base inside a held block must not overlap it.
	held, err := reserveUIDs(testUIDBase, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer held.release()
	inside, err := reserveUIDs(testUIDBase+1, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer inside.release()
	if inside.base < held.base+uidBlockSize {
		t.Errorf("base %d overlaps the held block %d..%d", inside.base, held.base, held.base+uidBlockSize-1)
	}
}

// Processes left under a block's UIDs (a crashed run's agents and what they
// spawned, in their own sessions too) are killed before the block is used.
func TestUIDBlockKillsLeftovers(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root to start processes as other users")
	}
	uid := uint32(testUIDBase + 2*uidBlockSize + 1)
	cmd := exec.Command("/bin/sh", "-c", "sleep 1000 & setsid sleep 1000 & exec sleep 1000")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for countProcs(uid) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("leftover processes did not start (%d)", countProcs(uid))
		}
		time.Sleep(5 * time.Millisecond)
	}
	b, err := reserveUIDs(testUIDBase+2*uidBlockSize, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer b.release()
	if n := countProcs(uid); n != 0 {
		t.Errorf("%d processes of uid %d survived the reservation", n, uid)
	}
	<-waited
}

// countProcs counts live (non-zombie) processes of uid.
func countProcs(uid uint32) int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		u, state, ok := procUID("/proc/" + e.Name() + "/status")
		if ok && u == uid && state != "Z" {
			n++
		}
	}
	return n
}

// procUID reads the real UID and the state of a process from its status file.
func procUID(path string) (uid uint32, state string, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, "", false
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		switch {
		case k == "State" && len(f) > 0:
			state = f[0]
		case k == "Uid" && len(f) > 0:
			u, err := strconv.ParseUint(f[0], 10, 32)
			if err != nil {
				return 0, "", false
			}
			uid, ok = uint32(u), true
		}
	}
	return uid, state, ok
}
