package terrarium

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// uidBlockSize is how many UIDs one run may take: agent UIDs of concurrent
// runs (and of a crashed run's leftovers) never overlap. It is at least the
// largest number of agents a scenario may have.
const uidBlockSize = 10000

// uidBlock is a range of UIDs held by one run: an flock on a file of the lock
// directory, released when the host closes it or dies (kill -9 included).
type uidBlock struct {
	base uint32
	lock *os.File
}

// uidLockDir is where blocks are locked: one machine-wide place for root.
func uidLockDir() string {
	for _, d := range []string{"/run/terrarium", filepath.Join(os.TempDir(), "terrarium-uids")} {
		if err := os.MkdirAll(d, 0o700); err == nil {
			return d
		}
	}
	return os.TempDir()
}

// reserveUIDs takes the first free block at or after first for n agents.
// Processes still running under a free block's UIDs are leftovers of a run
// that died without cleaning up (its host was killed): they are killed
// first, so no agent of this run can be spied on by them.
func reserveUIDs(first uint32, n int) (uidBlock, error) {
	if n > uidBlockSize {
		return uidBlock{}, fmt.Errorf("%d agents: at most %d can have their own users", n, uidBlockSize)
	}
	dir := uidLockDir()
	for k := uint64(0); k < 1000; k++ {
		base := uint64(first) + k*uidBlockSize
		if base+uidBlockSize > 1<<31 {
			break
		}
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("uids-%d.lock", base)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return uidBlock{}, fmt.Errorf("reserve agent uids: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close() // held by another running host
			continue
		}
		b := uidBlock{base: uint32(base), lock: f}
		if err := b.killAll(n); err != nil {
			b.release()
			return uidBlock{}, err
		}
		return b, nil
	}
	return uidBlock{}, fmt.Errorf("reserve agent uids: no free block of %d uids from %d", uidBlockSize, first)
}

// release gives the block back.
func (b *uidBlock) release() {
	if b.lock != nil {
		b.lock.Close()
		b.lock = nil
	}
}

// killAll kills every process running under the first n UIDs of the block.
// For each UID with live processes it runs `kill -KILL -1` as that UID: the
// kernel signals all of that user's processes in one pass that a fork
// cannot race, so even a process that keeps re-spawning itself in new
// sessions is caught. It waits until none is left (zombies aside).
func (b *uidBlock) killAll(n int) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		live := uidsWithProcesses(b.base, uint32(n))
		if len(live) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes of agent uids %v survive SIGKILL", live)
		}
		for _, uid := range live {
			cmd := exec.Command("/bin/sh", "-c", "kill -KILL -1")
			cmd.Dir = "/"
			cmd.Env = []string{"PATH=/usr/bin:/bin"}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
			_ = cmd.Run() // its own exit status is irrelevant: the scan decides
		}
		time.Sleep(10 * time.Millisecond) // the kernel delivers; poll the result
	}
}

// uidsWithProcesses lists the UIDs in [base, base+n) that own a process
// that is not a zombie.
func uidsWithProcesses(base, n uint32) []uint32 {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	seen := map[uint32]bool{}
	var out []uint32
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		uid, state, ok := procUID(filepath.Join("/proc", e.Name(), "status"))
		if !ok || state == "Z" || uid < base || uid >= base+n || seen[uid] {
			continue
		}
		seen[uid] = true
		out = append(out, uid)
	}
	return out
}

// procUID reads the real UID and the state of a process from its status file.
func procUID(path string) (uid uint32, state string, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var gotUID bool
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(v)
		switch {
		case k == "State" && len(fields) > 0:
			state = fields[0]
		case k == "Uid" && len(fields) > 0:
			u, err := strconv.ParseUint(fields[0], 10, 32)
			if err != nil {
				return 0, "", false
			}
			uid, gotUID = uint32(u), true
		}
	}
	return uid, state, gotUID
}
