package workspace_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/workspace"
	"github.com/terrarium-sim/terrarium/workspace/wstest"
)

// Editor and tool temporary files are not changes until renamed into
// place: one written next to a leased file is neither recorded nor
// removed while it is young; renamed over the file by its holder it is the
// holder's change. One left lying outside any lease (older than two
// reconcile periods) is a violation and goes.
func TestTempFilesCountOnceRenamedIntoPlace(t *testing.T) {
	env, l, p := replaceEnv(t)
	ctx := context.Background()
	for _, name := range []string{".#plan.md", "plan.md~", "plan.md.swp", "4913", "plan.md.part"} {
		write(t, filepath.Join(env.Shared, name), "scratch\n")
	}
	tmp := fmt.Sprintf("plan.md.tmp.%d.0123456789ab", os.Getpid())
	write(t, filepath.Join(env.Shared, tmp), "A2\n")
	env.WS.Sync(ctx)
	if vs := env.Events(workspace.EventViolation); len(vs) != 0 {
		t.Fatalf("violations for young temporary files: %v", vs)
	}
	for _, ev := range env.Events(workspace.EventFileChanged) {
		if ev.Data["path"] != "plan.md" {
			t.Errorf("a temporary file was recorded: %v", ev)
		}
	}
	if err := os.Rename(filepath.Join(env.Shared, tmp), p); err != nil {
		t.Fatal(err)
	}
	env.WS.Sync(ctx)
	if vs, err := env.WS.Commit("a", l.Token, "", sum("A2\n")); err != nil || len(vs) != 1 {
		t.Fatalf("commit of the file renamed into place: %v %v", vs, err)
	}
	// Left lying for long, more than two reconcile periods (an hour here;
	// its time is set back: no waiting on the clock).
	old := time.Now().Add(-3 * time.Hour)
	stale := filepath.Join(env.Shared, "plan.md~")
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	env.WS.Sync(ctx)
	if _, err := os.Lstat(stale); !os.IsNotExist(err) {
		t.Errorf("a stale temporary file outside any lease is still there (%v)", err)
	}
	vs := env.Events(workspace.EventViolation)
	if len(vs) != 1 || vs[0].Data["path"] != "plan.md~" {
		t.Errorf("violations %v, want one for the stale plan.md~", vs)
	}
	if !env.WS.Store().Has(sum("scratch\n")) {
		t.Error("the stale file's content was not kept")
	}
}

// The periodic reconcile is the backstop of the watcher: with the
// watcher's reader stopped and its debounce an hour (so no change it saw
// settles during the test), an unleased change is still found and undone.
func TestReconcileCatchesWhatTheWatcherMissed(t *testing.T) {
	env := wstest.Start(t, wstest.Config{Enforcement: workspace.Detect, Debounce: time.Hour, Reconcile: 50 * time.Millisecond, TTL: time.Minute})
	l, err := env.WS.Create("a", "notes.md", false)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(env.Shared, "notes.md")
	write(t, p, "kept\n")
	if _, err := env.WS.Release("a", l.Token); err != nil {
		t.Fatal(err)
	}
	resume := env.WS.PauseWatcher()
	defer resume()
	write(t, p, "sneaked in\n")
	if !env.WaitFor(20*time.Second, func() bool {
		b, _ := os.ReadFile(p)
		return string(b) == "kept\n"
	}) {
		t.Fatal("the unleased change was not undone by a reconcile while the watcher read nothing")
	}
	// (A rescan may catch the write half done, truncated: that too is a
	// change without a lease.)
	vs := env.Events(workspace.EventViolation)
	if len(vs) == 0 || vs[0].Data["path"] != "notes.md" || vs[0].Data["reason"] != "changed without a lease" {
		t.Errorf("violations %v, want the change to notes.md", vs)
	}
}

// A hard link to a shared file is a violation: a second name (inside the
// tree, or in an agent's own directory) would let its holder write the
// shared file unseen after its lease. The link inside the tree is removed;
// the shared file is rewritten as a new file, so a name outside no longer
// reaches it.
func TestHardLinksAreViolations(t *testing.T) {
	env, l, p := replaceEnv(t)
	ctx := context.Background()
	if _, err := env.WS.Release("a", l.Token); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(env.Dir, "agents", "keep")
	if err := os.Link(p, outside); err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(env.Shared, "alias.md")
	if err := os.Link(p, inside); err != nil {
		t.Fatal(err)
	}
	env.WS.Sync(ctx)
	env.WS.Sync(ctx)
	if _, err := os.Lstat(inside); !os.IsNotExist(err) {
		t.Errorf("the hard link in the tree is still there (%v)", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil || st.Nlink != 1 {
		t.Errorf("plan.md has %d names (%v), want 1", st.Nlink, err)
	}
	write(t, outside, "through the old name\n")
	if got := read(t, p); got != "A1\n" {
		t.Errorf("plan.md = %q, want A1 (the outside name must not reach it)", got)
	}
	n := 0
	for _, v := range env.Events(workspace.EventViolation) {
		if r, _ := v.Data["reason"].(string); len(r) > 11 && r[:11] == "a hard link" {
			n++
		}
	}
	if n == 0 {
		t.Errorf("no hard-link violation: %v", env.Events(workspace.EventViolation))
	}
}
