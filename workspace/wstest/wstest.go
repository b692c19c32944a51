// Package wstest starts a real workspace for tests: a shared tree and a
// version store in temporary directories, the real fsnotify watcher and
// lessor running, and every event recorded.
package wstest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/internal/leaktest"
	"github.com/terrarium-sim/terrarium/internal/testlog"
	"github.com/terrarium-sim/terrarium/workspace"
)

// Event is one recorded event.
type Event struct {
	Kind, Agent string
	Data        map[string]any
}

// Env is a running workspace.
type Env struct {
	WS     *workspace.Workspace
	Shared string // the shared tree
	Dir    string // the temporary directory holding shared/, versions/ and agents/

	mu     sync.Mutex
	events []Event
}

// Config adjusts the workspace; Shared, Versions, Emit and Logger are set
// by Start.
type Config = workspace.Config

// Start makes the directories, opens the workspace with cfg and runs it
// until the test ends. The directory is searchable by other users, so
// agents running as their own users can reach it.
func Start(t testing.TB, cfg Config) *Env {
	t.Helper()
	return StartIn(t, t.TempDir(), cfg)
}

// MemDir returns a new directory on a memory file system (/dev/shm) when
// there is one, else t.TempDir(); it is removed when the test ends. Tests
// that make tens of thousands of files use it so a busy disk does not
// slow them down; the watcher and the file operations are the same.
func MemDir(t testing.TB) string {
	t.Helper()
	var st syscall.Statfs_t
	if syscall.Statfs("/dev/shm", &st) != nil || st.Type != 0x01021994 { // TMPFS_MAGIC
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "wstest-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// StartIn is Start in a directory of the caller's (see MemDir).
func StartIn(t testing.TB, dir string, cfg Config) *Env {
	t.Helper()
	leaktest.Goroutines(t) // the watcher's and the timers' goroutines end with the test
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(filepath.Dir(dir), 0o755)
	e := &Env{Dir: dir, Shared: filepath.Join(dir, "shared")}
	for _, d := range []string{"shared", "versions", "agents"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Shared = e.Shared
	cfg.Versions = filepath.Join(dir, "versions")
	cfg.Logger = testlog.New(t)
	cfg.Emit = func(kind, agent string, data map[string]any) {
		e.mu.Lock()
		e.events = append(e.events, Event{kind, agent, data})
		e.mu.Unlock()
	}
	ws, err := workspace.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.WS = ws
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := ws.Run(ctx); err != nil {
			t.Errorf("workspace run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		ws.Close()
	})
	select {
	case <-ws.Watching():
	case <-done:
		t.Fatal("workspace stopped before it watched the tree")
	}
	return e
}

// Events returns the events so far, optionally only those of kind.
func (e *Env) Events(kind string) []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Event
	for _, ev := range e.events {
		if kind == "" || ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// WaitFor polls until f holds or d passes; it reports whether f held.
func (e *Env) WaitFor(d time.Duration, f func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
