package terrarium

import (
	"github.com/terrarium-sim/terrarium/agents"

	"fmt"
	"os"
	"path/filepath"
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

// minAgentUID is the lowest agent uid base: below it are the system's
// users (Debian's first ordinary user is 1000).
const minAgentUID = 1000

// reserveUIDs takes the first free block at or after first for n agents.
// Processes still running under a free block's UIDs are leftovers of a run
// that died without cleaning up (its host was killed): they are killed
// first, so no agent of this run can be spied on by them.
func reserveUIDs(first uint32, n int) (uidBlock, error) {
	if n > uidBlockSize {
		return uidBlock{}, fmt.Errorf("%d agents: at most %d can have their own users", n, uidBlockSize)
	}
	dir := uidLockDir()
	// Blocks are aligned to uidBlockSize, so that two runs' blocks are the
	// same or disjoint whatever base each was given: a base inside a block
	// is rounded up to the next block.
	start := (uint64(first) + uidBlockSize - 1) / uidBlockSize * uidBlockSize
	for k := uint64(0); k < 1000; k++ {
		base := start + k*uidBlockSize
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

// killAll kills every process running under the first n UIDs of the
// block and waits until none is left (agents.KillUIDs).
func (b *uidBlock) killAll(n int) error {
	return agents.KillUIDs(b.base, n, 10*time.Second)
}
