package workspace_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/workspace"
	"github.com/terrarium-sim/terrarium/workspace/wstest"
)

// otherPID stands for a process of agent b (no such process needs to exist:
// the workspace only asks AgentOfPID).
const otherPID = 999999

// replaceEnv is a detect-mode workspace whose agent a is this test process
// and b is otherPID, with plan.md committed by a as "A1\n" and still
// leased to a.
func replaceEnv(t *testing.T) (*wstest.Env, workspace.Lease, string) {
	t.Helper()
	env := wstest.Start(t, wstest.Config{
		Enforcement: workspace.Detect, Debounce: 10 * time.Millisecond, Reconcile: time.Hour, TTL: time.Minute, LockDelay: time.Millisecond,
		AgentOfPID: func(pid int) string {
			switch pid {
			case os.Getpid():
				return "a"
			case otherPID:
				return "b"
			}
			return ""
		},
	})
	l, err := env.WS.Create("a", "plan.md", false)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(env.Shared, "plan.md")
	write(t, p, "A1\n")
	if _, err := env.WS.Commit("a", l.Token, "", sum("A1\n")); err != nil {
		t.Fatal(err)
	}
	return env, l, p
}

func sum(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// replace writes content to tmp next to p and renames it over p, as the
// claude CLI's Write and Edit tools do.
func replace(t *testing.T, p, tmp, content string) {
	t.Helper()
	write(t, filepath.Join(filepath.Dir(p), tmp), content)
	if err := os.Rename(filepath.Join(filepath.Dir(p), tmp), p); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// In detect mode the holder's replace (its temporary file names one of its
// processes) is its pending change, whether the watcher sees it first or
// the commit does; no violation, and the commit records it.
func TestDetectHolderReplaceIsItsChange(t *testing.T) {
	env, l, p := replaceEnv(t)
	ctx := context.Background()
	tmp := fmt.Sprintf("plan.md.tmp.%d.0123456789ab", os.Getpid())

	replace(t, p, tmp, "A2\n")
	env.WS.Sync(ctx) // the watcher's check first
	if got := read(t, p); got != "A2\n" {
		t.Fatalf("plan.md = %q after the holder's replace, want A2", got)
	}
	changed := false
	for _, ev := range env.Events(workspace.EventFileChanged) {
		changed = changed || (ev.Agent == "a" && ev.Data["replaced_by"] == tmp && ev.Data["sha256"] == sum("A2\n"))
	}
	if !changed {
		t.Errorf("no file.changed of a replaced by %s: %v", tmp, env.Events(workspace.EventFileChanged))
	}
	vs, err := env.WS.Commit("a", l.Token, "", sum("A2\n"))
	if err != nil || len(vs) != 1 || vs[0].SHA256 != sum("A2\n") {
		t.Fatalf("commit: %v %v, want A2 recorded", vs, err)
	}

	replace(t, p, tmp, "A3\n")
	// the commit first: the watcher may not have read the rename yet
	vs, err = env.WS.Commit("a", l.Token, "", sum("A3\n"))
	if err != nil || len(vs) != 1 || vs[0].SHA256 != sum("A3\n") {
		t.Fatalf("commit right after the replace: %v %v, want A3 recorded", vs, err)
	}
	env.WS.Sync(ctx)
	if vs := env.Events(workspace.EventViolation); len(vs) != 0 {
		t.Errorf("violations %v, want none", vs)
	}
	if got := read(t, p); got != "A3\n" {
		t.Errorf("plan.md = %q, want A3", got)
	}
}

// Another agent's replace of a held file (its temporary file names its own
// process) is a violation naming it, and the holder's content is back; the
// holder lost nothing, so its commit of that content succeeds.
func TestDetectIntruderReplaceIsUndoneAndNamed(t *testing.T) {
	env, l, p := replaceEnv(t)
	ctx := context.Background()
	replace(t, p, fmt.Sprintf("plan.md.tmp.%d.0123456789ab", otherPID), "B\n")
	env.WS.Sync(ctx)
	if got := read(t, p); got != "A1\n" {
		t.Fatalf("plan.md = %q, want the holder's A1 back", got)
	}
	vs := env.Events(workspace.EventViolation)
	if len(vs) != 1 || vs[0].Agent != "b" {
		t.Fatalf("violations %v, want one naming b", vs)
	}
	if !env.WS.Store().Has(sum("B\n")) {
		t.Error("the intruder's content was not kept")
	}
	if _, err := env.WS.Commit("a", l.Token, "", sum("A1\n")); err != nil {
		t.Errorf("the holder's commit: %v", err)
	}
	// Replaced again, and the holder commits before the watcher looked.
	replace(t, p, "plan.md.tmp", "B2\n")
	if _, err := env.WS.Commit("a", l.Token, "", sum("B2\n")); !errors.Is(err, workspace.ErrHashMismatch) {
		t.Errorf("commit of the intruder's content: %v, want ErrHashMismatch (it was undone)", err)
	}
	if got := read(t, p); got != "A1\n" {
		t.Errorf("plan.md = %q, want A1", got)
	}
}

// A replace nobody can be named for is undone; if it was the holder's, its
// work is gone from the file (kept in the store): the holder's next commit
// or release that would record nothing is refused with the reason
// (ErrUndone), never a success. A new change then commits as usual.
func TestDetectUnattributedReplaceIsNeverALostSuccess(t *testing.T) {
	env, l, p := replaceEnv(t)
	ctx := context.Background()
	replace(t, p, "plan.md.tmp", "A2 via a tool that names no process\n")
	env.WS.Sync(ctx)
	if got := read(t, p); got != "A1\n" {
		t.Fatalf("plan.md = %q, want A1 restored", got)
	}
	if vs := env.Events(workspace.EventViolation); len(vs) != 1 || vs[0].Agent != "" {
		t.Fatalf("violations %v, want one naming nobody", vs)
	}
	kept := sum("A2 via a tool that names no process\n")
	vs, err := env.WS.Commit("a", l.Token, "", sum("A1\n"))
	if !errors.Is(err, workspace.ErrUndone) || !strings.Contains(err.Error(), kept) || len(vs) != 0 {
		t.Fatalf("commit after the undo: %v %v, want ErrUndone naming %s", vs, err, kept)
	}
	if workspace.Code(err) != workspace.CodeUndone {
		t.Errorf("wire code %q, want %q", workspace.Code(err), workspace.CodeUndone)
	}
	if _, err := env.WS.Release("a", l.Token); !errors.Is(err, workspace.ErrUndone) || !strings.Contains(err.Error(), "released") {
		t.Errorf("release after the undo: %v, want ErrUndone saying the lease is released", err)
	}
	l2, err := env.WS.Acquire(ctx, "b", "plan.md", workspace.AcquireOptions{})
	if err != nil {
		t.Fatalf("the lease was not released: %v", err)
	}

	// The next holder's unattributed replace, then a change written in
	// place: the commit records it.
	replace(t, p, "plan.md.tmp", "lost\n")
	env.WS.Sync(ctx)
	write(t, p, "B in place\n")
	if vs, err := env.WS.Commit("b", l2.Token, "", sum("B in place\n")); err != nil || len(vs) != 1 {
		t.Errorf("commit of a change made in place: %v %v", vs, err)
	}
	if vs, err := env.WS.Release("b", l2.Token); err != nil || len(vs) != 0 {
		t.Errorf("release: %v %v, want nothing more to record", vs, err)
	}
}
