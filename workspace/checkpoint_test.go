package workspace_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/terrarium-sim/terrarium/workspace"
)

type recorder struct {
	mu    sync.Mutex
	kinds []string
	data  []map[string]any
}

func (r *recorder) emit(kind, _ string, d map[string]any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kinds = append(r.kinds, kind)
	r.data = append(r.data, d)
}

func open(t *testing.T, shared, versions string, rec *recorder) *workspace.Workspace {
	t.Helper()
	if err := os.MkdirAll(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	ws, err := workspace.New(workspace.Config{Shared: shared, Versions: versions, Enforcement: workspace.Detect, Emit: rec.emit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func edit(t *testing.T, ws *workspace.Workspace, p, content string, create bool) {
	t.Helper()
	var l workspace.Lease
	var err error
	if create {
		l, err = ws.Create("a", p, false)
	} else {
		l, err = ws.Acquire(context.Background(), "a", p, workspace.AcquireOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(ws.Shared(), p), content)
	if _, err := ws.Release("a", l.Token); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A checkpoint's State puts a later workspace on the same store (resume)
// or on another store (fork, after CopyBlobs) back to the checkpoint's
// committed versions; its leases end, and tokens go on after every token
// issued before.
func TestRestoreCheckpointState(t *testing.T) {
	base := t.TempDir()
	shared, versions := filepath.Join(base, "shared"), filepath.Join(base, "versions")
	rec := &recorder{}
	ws := open(t, shared, versions, rec)
	edit(t, ws, "a.md", "v1\n", true)
	held, err := ws.Acquire(context.Background(), "b", "a.md", workspace.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(shared, "a.md"), "uncommitted\n")
	st, err := ws.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Leases) != 1 || st.Leases[0].Token != held.Token || st.LastToken != held.Token || len(st.Files) != 1 || st.Files[0].Version != 1 {
		t.Fatalf("state %+v", st)
	}
	// After the checkpoint: a.md committed again, b.md created.
	if _, err := ws.Release("b", held.Token); err != nil {
		t.Fatal(err)
	}
	edit(t, ws, "b.md", "new\n", true)
	lastTok, err := ws.Acquire(context.Background(), "a", "a.md", workspace.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ws.Close()

	check := func(ws *workspace.Workspace, shared string, after uint64) {
		t.Helper()
		if got := readFile(t, filepath.Join(shared, "a.md")); got != "v1\n" {
			t.Errorf("a.md = %q, want the checkpoint's %q", got, "v1\n")
		}
		if _, err := os.Lstat(filepath.Join(shared, "b.md")); !os.IsNotExist(err) {
			t.Errorf("b.md, created after the checkpoint, is still there: %v", err)
		}
		l, err := ws.Acquire(context.Background(), "c", "a.md", workspace.AcquireOptions{})
		if err != nil {
			t.Fatal(err) // the checkpoint's lease is gone
		}
		if l.Token <= after {
			t.Errorf("token %d after the restore, want > %d", l.Token, after)
		}
	}

	rec2 := &recorder{}
	ws2 := open(t, shared, versions, rec2)
	if err := ws2.Restore(st, "test"); err != nil {
		t.Fatal(err)
	}
	check(ws2, shared, lastTok.Token)
	expired := 0
	for i, k := range rec2.kinds {
		if k == workspace.EventLeaseExpired && rec2.data[i]["token"] == held.Token {
			expired++
		}
	}
	if expired != 1 {
		t.Errorf("%d lease.expired for the checkpoint's lease, want 1", expired)
	}
	if log := ws2.Store().Log("b.md"); len(log) != 2 || !log[1].Deleted || log[1].Reason != "resume" {
		t.Errorf("b.md's versions %+v: want the created one kept and a deleted one (resume)", log)
	}

	// A fork: another run's empty tree and store.
	fshared, fversions := filepath.Join(base, "fork", "shared"), filepath.Join(base, "fork", "versions")
	if err := workspace.CopyBlobs(st, versions, fversions); err != nil {
		t.Fatal(err)
	}
	ws3 := open(t, fshared, fversions, &recorder{})
	if err := ws3.Restore(st, "fork"); err != nil {
		t.Fatal(err)
	}
	check(ws3, fshared, st.LastToken)

	// A state naming content no store has is refused.
	st.Files[0].SHA256 = "0000000000000000000000000000000000000000000000000000000000000000"
	if err := workspace.CopyBlobs(st, versions, filepath.Join(base, "x")); err == nil {
		t.Error("CopyBlobs of missing content: no error")
	}
	if err := ws3.Restore(st, "bad"); err == nil {
		t.Error("Restore of missing content: no error")
	}
}
