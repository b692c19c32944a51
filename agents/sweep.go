package agents

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// children is the process-wide registry of the agent processes of every
// Supervisor: from just before the fork until exec.Cmd.Wait has reaped them.
// A sweep never touches a registered pid (its exec.Cmd must reap it), and
// Start holds mu across the fork, so no sweep can see an agent that is not
// registered yet.
var children = struct {
	mu   sync.Mutex
	live map[int]*Supervisor // agent pid (= its pgid and sid) -> owner
}{live: map[int]*Supervisor{}}

// subreaper counts the supervisors that asked for PR_SET_CHILD_SUBREAPER and
// have not finished Shutdown; the attribute is cleared when the count drops
// to zero, unless the process was a subreaper before the first one.
var subreaper = struct {
	mu      sync.Mutex
	n       int
	already bool // set before we first set it: never clear it
}{}

// acquireSubreaper makes this process a child subreaper.
func acquireSubreaper() error {
	subreaper.mu.Lock()
	defer subreaper.mu.Unlock()
	if subreaper.n == 0 {
		var cur int32
		if err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&cur)), 0, 0, 0); err != nil {
			return fmt.Errorf("get child subreaper: %w", err)
		}
		subreaper.already = cur != 0
		if !subreaper.already {
			if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
				return fmt.Errorf("set child subreaper: %w", err)
			}
		}
	}
	subreaper.n++
	return nil
}

// releaseSubreaper undoes one acquireSubreaper.
func releaseSubreaper() error {
	subreaper.mu.Lock()
	defer subreaper.mu.Unlock()
	subreaper.n--
	if subreaper.n > 0 || subreaper.already {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clear child subreaper: %w", err)
	}
	return nil
}

// procStat is what the sweep needs of /proc/<pid>/stat.
type procStat struct {
	pid, ppid, pgid, sid int
	state                byte
}

func (p procStat) zombie() bool { return p.state == 'Z' || p.state == 'X' || p.state == 'x' }

// readStat reads /proc/<pid>/stat; ok is false when the process is gone.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, false
	}
	return parseStat(pid, b)
}

// parseStat parses "pid (comm) state ppid pgrp session ..."; comm may hold
// spaces and parentheses, so the fields start after the last ')'.
func parseStat(pid int, b []byte) (procStat, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 4 || len(f[0]) != 1 {
		return procStat{}, false
	}
	var n [3]int
	for k := range n {
		v, err := strconv.Atoi(f[k+1])
		if err != nil {
			return procStat{}, false
		}
		n[k] = v
	}
	return procStat{pid: pid, state: f[0][0], ppid: n[0], pgid: n[1], sid: n[2]}, true
}

// listProcs reads every process of /proc.
func listProcs() ([]procStat, error) { return readTable(readStat) }

// freshTable shares reads of the process table between the goroutines
// that handle agents' exits: each needs a table read after it was asked
// for (so it sees whatever is still alive after its leader died), but
// when a thousand agents exit at once, one read that starts after all of
// them asked serves them all, instead of a thousand full reads of /proc.
// Reads run one at a time; callers must not modify the table they get.
var freshTable = struct {
	mu            sync.Mutex
	cond          *sync.Cond
	running       bool
	started, done uint64 // generations: of the last read begun, of the last finished
	ps            []procStat
	err           error
	read          func() ([]procStat, error) // listProcs; a test counts its calls
}{read: listProcs}

func init() { freshTable.cond = sync.NewCond(&freshTable.mu) }

// listProcsFresh returns a process table whose read began after the call.
func listProcsFresh() ([]procStat, error) {
	t := &freshTable
	t.mu.Lock()
	defer t.mu.Unlock()
	// The read in flight (if any) began before this call: the next one
	// (t.started+1) is the first that did not.
	need := t.started + 1
	for t.done < need {
		if t.running {
			t.cond.Wait()
			continue
		}
		t.running = true
		t.started++
		gen := t.started
		t.mu.Unlock()
		ps, err := t.read()
		t.mu.Lock()
		t.running = false
		t.done, t.ps, t.err = gen, ps, err
		t.cond.Broadcast()
	}
	return t.ps, t.err
}

// readTable reads every process of /proc with read, skipping the ones that
// are gone by the time they are read.
func readTable[P any](read func(pid int) (P, bool)) ([]P, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	ps := make([]P, 0, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := read(pid); ok {
			ps = append(ps, p)
		}
	}
	return ps, nil
}

// pidfdHeld returns the pids that a pidfd open in this process refers to:
// since Go 1.23 every os.Process started here (by any package) holds one until
// it has been waited for, so these are children other code owns.
func pidfdHeld() map[int]bool {
	held := map[int]bool{}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return held
	}
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || !strings.Contains(link, "pidfd") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", e.Name()))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Pid:"); ok {
				if pid, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && pid > 0 {
					held[pid] = true
				}
			}
		}
	}
	return held
}

// killSession sends SIGKILL to every live process of session sid except its
// leader. The caller guarantees that sid cannot be reused meanwhile (its
// leader is an unreaped zombie). Each process is signalled through a pidfd
// opened and then checked to still be in the session, so a recycled pid is
// never hit. A member may fork between the scan and its death, so it scans
// again until a scan finds no member it has not signalled yet (at most a
// bounded number of times).
func killSession(sid int) error {
	signalled := map[int]bool{}
	for range 100 {
		ps, err := listProcsFresh()
		if err != nil {
			return err
		}
		found := false
		for _, p := range ps {
			if p.sid != sid || p.pid == sid || p.zombie() || signalled[p.pid] {
				continue
			}
			found = true
			signalled[p.pid] = true
			if err := killIf(p.pid, func(q procStat) bool { return q.sid == sid }); err != nil {
				return err
			}
		}
		if !found {
			return nil
		}
	}
	return fmt.Errorf("kill session %d: processes keep appearing", sid)
}

// killIf sends SIGKILL to pid if, once a pidfd pins it, still(its stat) holds.
func killIf(pid int, still func(procStat) bool) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("pidfd_open %d: %w", pid, err)
		}
		// No pidfd: check and kill by pid (a small window for pid reuse).
		if q, ok := readStat(pid); ok && still(q) {
			if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("kill %d: %w", pid, err)
			}
		}
		return nil
	}
	defer unix.Close(fd)
	if q, ok := readStat(pid); !ok || !still(q) {
		return nil
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	return nil
}

// readHeld is pidfdHeld; a test counts its calls.
var readHeld = pidfdHeld

// orphans returns the children of this process that the sweep of s takes:
// not a registered agent of any supervisor, not held by a pidfd of this
// process, not in the host's own session, and not in the session of another
// supervisor's live agent. The caller holds children.mu.
//
// With zombiesOnly it returns only orphans that have exited, and never
// reads the host's descriptor table unless one has: the reaper calls it
// every reaperInterval, and a live child of the host outside every
// agent's session (the watchdog) would otherwise make each call readlink
// every descriptor of a host holding thousands (a pidfd and pipes per
// agent), under children.mu, which Start waits for.
func (s *Supervisor) orphans(zombiesOnly bool) ([]procStat, error) {
	ps, err := listProcs()
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	hostSid, err := unix.Getsid(0)
	if err != nil {
		return nil, fmt.Errorf("get session: %w", err)
	}
	var held map[int]bool
	var out []procStat
	for _, p := range ps {
		if p.ppid != self || p.sid == hostSid {
			continue
		}
		if _, ok := children.live[p.pid]; ok {
			continue
		}
		if owner, ok := children.live[p.sid]; ok && owner != s {
			continue
		}
		if owner, ok := children.live[p.pgid]; ok && owner != s {
			continue
		}
		if zombiesOnly && !p.zombie() {
			continue
		}
		if held == nil {
			held = readHeld()
		}
		if held[p.pid] {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// sweep kills and reaps the orphaned descendants of agents that were
// reparented to this process (see the package doc for the rule). Killing an
// orphan reparents its own children to us, so it repeats until a round finds
// nothing.
func (s *Supervisor) sweep() error {
	for round := 0; ; round++ {
		children.mu.Lock()
		found, err := s.orphans(false)
		if err == nil {
			for _, p := range found {
				// Our child: its pid cannot be reused before we reap it.
				if kerr := unix.Kill(p.pid, unix.SIGKILL); kerr != nil && !errors.Is(kerr, unix.ESRCH) {
					err = fmt.Errorf("kill orphan %d: %w", p.pid, kerr)
					break
				}
			}
		}
		children.mu.Unlock()
		if err != nil {
			return fmt.Errorf("sweep orphans: %w", err)
		}
		if len(found) == 0 {
			return nil
		}
		for _, p := range found {
			if !p.zombie() {
				s.log.Warn("killed orphaned agent descendant", "pid", p.pid, "pgid", p.pgid, "sid", p.sid)
			}
			if err := reap(p.pid); err != nil {
				return fmt.Errorf("sweep orphans: %w", err)
			}
		}
		if round >= 1000 {
			return errors.New("sweep orphans: processes keep appearing")
		}
	}
}

// reap waits for our child pid, which we killed and which is not an
// exec.Cmd's (see orphans), and collects it. Like Terminate after SIGKILL, it
// waits as long as the kernel takes to end the process.
func reap(pid int) error {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, 0, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err == nil, errors.Is(err, unix.ECHILD): // ECHILD: a concurrent sweep reaped it
			return nil
		default:
			return fmt.Errorf("reap %d: %w", pid, err)
		}
	}
}

// reapSession collects, without waiting, the zombie children of this process
// that were in the group or session of the agent leader (a subreaper adopted
// them when their parent died; they were killed with the group or session).
// It runs after the leader was reaped: those zombies still pin the id, so a
// match is one of them, and none of them is anyone's exec.Cmd. Members that
// are still dying are left to Shutdown's sweep.
func reapSession(leader int) {
	ps, err := listProcsFresh()
	if err != nil {
		return
	}
	self := os.Getpid()
	for _, p := range ps {
		if p.ppid != self || p.pid == leader || !p.zombie() || (p.sid != leader && p.pgid != leader) {
			continue
		}
		var ws unix.WaitStatus
		_, _ = unix.Wait4(p.pid, &ws, unix.WNOHANG, nil)
	}
}
