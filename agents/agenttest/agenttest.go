package agenttest

import (
	"github.com/terrarium-sim/terrarium/internal/leaktest"
	"github.com/terrarium-sim/terrarium/internal/testlog"

	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium/agents"
)

// CheckTimeout is how long the leak checks wait for things to go away.
const CheckTimeout = 10 * time.Second

// Logger returns a logger whose lines go to t.Log (see testlog.New).
func Logger(t testing.TB) hclog.Logger { return testlog.New(t) }

// Supervisor returns a supervisor whose Shutdown runs at cleanup (and must
// succeed). A nil cfg.Logger becomes Logger(t).
func Supervisor(t testing.TB, cfg agents.Config) *agents.Supervisor {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = Logger(t)
	}
	s := agents.NewSupervisor(cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), CheckTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("supervisor shutdown: %v", err)
		}
	})
	return s
}

// ProcessLeaks checks, at cleanup, that no process the test started is alive.
type ProcessLeaks struct {
	mu       sync.Mutex
	groups   map[int]bool
	baseline map[int]bool
}

// NoProcessLeaks registers a check, run at cleanup, that no child of the test
// process (other than those alive when it was called) and no process in a
// watched group (see Watch) is still alive; zombies count as dead. It polls
// for up to CheckTimeout, then fails the test, naming the processes, and
// SIGKILLs them.
func NoProcessLeaks(t testing.TB) *ProcessLeaks {
	t.Helper()
	l := &ProcessLeaks{groups: map[int]bool{}, baseline: map[int]bool{}}
	self := os.Getpid()
	for _, p := range Procs() {
		if p.PPid == self && p.Alive() {
			l.baseline[p.Pid] = true
		}
	}
	t.Cleanup(func() {
		var left []Proc
		deadline := time.Now().Add(CheckTimeout)
		for {
			left = l.leaked(self)
			if len(left) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		for _, p := range left {
			t.Errorf("process leak: pid %d (ppid %d, pgid %d, state %c): %s", p.Pid, p.PPid, p.PGid, p.State, p.Cmdline())
			_ = syscall.Kill(p.Pid, syscall.SIGKILL)
		}
	})
	return l
}

// Watch adds a process group (an agent's pid, see agents.Process.Pid) whose
// members must all be gone at cleanup.
func (l *ProcessLeaks) Watch(pgid int) {
	l.mu.Lock()
	l.groups[pgid] = true
	l.mu.Unlock()
}

func (l *ProcessLeaks) leaked(self int) []Proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	var left []Proc
	for _, p := range Procs() {
		if !p.Alive() || p.Pid == self {
			continue
		}
		if (p.PPid == self && !l.baseline[p.Pid]) || l.groups[p.PGid] {
			left = append(left, p)
		}
	}
	return left
}

// Proc is one line of /proc/<pid>/stat, the fields the checks need.
type Proc struct {
	Pid, PPid, PGid int
	State           byte // R, S, D, Z, ...
}

// Alive reports whether the process is not a zombie (or dead).
func (p Proc) Alive() bool { return p.State != 'Z' && p.State != 'X' && p.State != 'x' }

// Cmdline is the process's command line, or "?" when it is gone.
func (p Proc) Cmdline() string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.Pid), "cmdline"))
	if err != nil || len(b) == 0 {
		return "?"
	}
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}

// Procs lists the processes of /proc.
func Procs() []Proc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var ps []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := ReadProc(pid); ok {
			ps = append(ps, p)
		}
	}
	return ps
}

// ReadProc reads /proc/<pid>/stat; ok is false when the process is gone.
func ReadProc(pid int) (Proc, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return Proc{}, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Proc{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 || len(f[0]) != 1 {
		return Proc{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return Proc{}, false
	}
	return Proc{Pid: pid, PPid: ppid, PGid: pgid, State: f[0][0]}, true
}

// Alive reports whether process pid exists and is not a zombie.
func Alive(pid int) bool {
	p, ok := ReadProc(pid)
	return ok && p.Alive()
}

// NoGoroutineLeaks fails the test if goroutines started after this call are
// still running at cleanup (see leaktest.Goroutines); call it first.
func NoGoroutineLeaks(t testing.TB) {
	t.Helper()
	leaktest.Goroutines(t)
}

// String describes p for messages.
func (p Proc) String() string {
	return fmt.Sprintf("pid %d ppid %d pgid %d state %c", p.Pid, p.PPid, p.PGid, p.State)
}
