package checkpoint_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/checkpoint"
	"github.com/terrarium-sim/terrarium/world"
)

func write(t *testing.T, w *checkpoint.Writer, tick world.Tick, ws string) *checkpoint.Checkpoint {
	t.Helper()
	c, size, err := w.Write(checkpoint.Meta{Run: "r", Tick: tick, StateHash: "h" + string(rune('0'+tick%10))},
		[]byte(`{"round":`+string(rune('0'+tick%10))+`}`), []checkpoint.Part{checkpoint.DirPart{PartName: "workspace", Path: ws}})
	if err != nil {
		t.Fatal(err)
	}
	if size == 0 && c.Meta.Tick == tick {
		t.Logf("tick %d: kept the existing checkpoint", tick)
	}
	return c
}

func workspace(t *testing.T) string {
	t.Helper()
	ws := filepath.Join(t.TempDir(), "agents")
	if err := os.MkdirAll(filepath.Join(ws, "a", "notes"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "a", "notes", "memory.md"), []byte("round 1"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("notes/memory.md", filepath.Join(ws, "a", "link")); err != nil {
		t.Fatal(err)
	}
	return ws
}

func TestWriteListRestorePrune(t *testing.T) {
	ws := workspace(t)
	w := &checkpoint.Writer{Root: filepath.Join(t.TempDir(), "checkpoints"), Keep: 2}
	write(t, w, 1, ws)
	os.WriteFile(filepath.Join(ws, "a", "notes", "memory.md"), []byte("round 2"), 0o640)
	write(t, w, 2, ws)
	write(t, w, 3, ws)
	cs, bad := checkpoint.List(w.Root)
	if len(bad) != 0 || len(cs) != 2 || cs[0].Meta.Tick != 2 || cs[1].Meta.Tick != 3 {
		t.Fatalf("list: %d checkpoints %v, problems %v (want ticks 2, 3: keep 2)", len(cs), cs, bad)
	}
	snap, err := cs[1].World()
	if err != nil || string(snap) != `{"round":3}` {
		t.Errorf("world %q %v", snap, err)
	}
	// The agent writes on; restoring brings back the checkpoint's files and
	// keeps the later ones aside.
	os.WriteFile(filepath.Join(ws, "a", "notes", "memory.md"), []byte("round 9"), 0o640)
	os.WriteFile(filepath.Join(ws, "a", "later.txt"), []byte("x"), 0o640)
	if err := cs[1].Restore(checkpoint.DirPart{PartName: "workspace", Path: ws}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "a", "notes", "memory.md")); string(b) != "round 2" {
		t.Errorf("restored memory.md = %q, want round 2", b)
	}
	if _, err := os.Stat(filepath.Join(ws, "a", "later.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file written after the checkpoint is still in the workspace: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(ws+".superseded-1", "a", "later.txt")); string(b) != "x" {
		t.Error("the workspace after the checkpoint was not kept aside")
	}
	if l, err := os.Readlink(filepath.Join(ws, "a", "link")); err != nil || l != "notes/memory.md" {
		t.Errorf("symlink restored as %q, %v", l, err)
	}
	if fi, _ := os.Stat(filepath.Join(ws, "a", "notes", "memory.md")); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
}

// A damaged checkpoint is not listed; At names it and the ones there are.
func TestDamagedCheckpointSkipped(t *testing.T) {
	ws := workspace(t)
	w := &checkpoint.Writer{Root: filepath.Join(t.TempDir(), "checkpoints")}
	write(t, w, 1, ws)
	c2 := write(t, w, 2, ws)
	if err := os.WriteFile(filepath.Join(c2.Dir, "workspace", "a", "notes", "memory.md"), []byte("tampered"), 0o640); err != nil {
		t.Fatal(err)
	}
	cs, bad := checkpoint.List(w.Root)
	if len(cs) != 1 || cs[0].Meta.Tick != 1 || len(bad) != 1 || !strings.Contains(bad[0].Error(), "damaged") {
		t.Errorf("list: %v, problems %v", cs, bad)
	}
	if _, err := checkpoint.At(w.Root, 2); err == nil || !strings.Contains(err.Error(), "have: 1") {
		t.Errorf("At(2): %v", err)
	}
}

// A crash while a checkpoint is written (the hook stops the write just
// before the rename, as kill -9 would) leaves the previous checkpoint the
// latest usable one; the next write removes the leftover.
func TestCrashMidWrite(t *testing.T) {
	ws := workspace(t)
	root := filepath.Join(t.TempDir(), "checkpoints")
	w := &checkpoint.Writer{Root: root}
	write(t, w, 1, ws)
	crashing := &checkpoint.Writer{Root: root, Hook: func(stage string, tick world.Tick) {
		if stage == checkpoint.StageWritten && tick == 2 {
			panic("crash")
		}
	}}
	func() {
		defer func() { _ = recover() }()
		write(t, crashing, 2, ws)
		t.Fatal("the hook did not stop the write")
	}()
	ents, _ := os.ReadDir(root)
	if len(ents) != 2 || !strings.HasPrefix(ents[0].Name(), ".tmp-") {
		t.Fatalf("after the crash: %v (want the temporary directory and tick 1)", ents)
	}
	cs, bad := checkpoint.List(root)
	if len(cs) != 1 || cs[0].Meta.Tick != 1 || len(bad) != 0 {
		t.Fatalf("after the crash: %v %v", cs, bad)
	}
	write(t, w, 3, ws)
	ents, _ = os.ReadDir(root)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("leftover %s not removed", e.Name())
		}
	}
}

// A checkpoint holds every agent's workspace: no agent may enter it.
func TestCheckpointIsPrivate(t *testing.T) {
	w := &checkpoint.Writer{Root: filepath.Join(t.TempDir(), "checkpoints")}
	c := write(t, w, 1, workspace(t))
	fi, err := os.Stat(c.Dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("checkpoint directory mode %v, want 0700 (%v)", fi.Mode().Perm(), err)
	}
}

func ticksOf(cs []*checkpoint.Checkpoint) []world.Tick {
	var out []world.Tick
	for _, c := range cs {
		out = append(out, c.Meta.Tick)
	}
	return out
}

// Pruning never removes the checkpoint just written (even when it is older
// than the others: resume rebuilds one behind them) nor the pinned one (a
// fork's start); Keep < 0 keeps them all.
func TestPruneKeepsWrittenAndPinned(t *testing.T) {
	ws := workspace(t)
	root := filepath.Join(t.TempDir(), "checkpoints")
	w := &checkpoint.Writer{Root: root, Keep: 2}
	write(t, w, 5, ws)
	write(t, w, 6, ws)
	write(t, w, 2, ws) // older than both: still there after the write
	cs, _ := checkpoint.List(root)
	if got := ticksOf(cs); !slices.Equal(got, []world.Tick{2, 6}) {
		t.Errorf("after writing tick 2 behind 5 and 6 (keep 2): %v, want [2 6]", got)
	}

	pinned := &checkpoint.Writer{Root: filepath.Join(t.TempDir(), "checkpoints"), Keep: 2, Pinned: []world.Tick{1}}
	for tick := world.Tick(1); tick <= 5; tick++ {
		write(t, pinned, tick, ws)
	}
	cs, _ = checkpoint.List(pinned.Root)
	if got := ticksOf(cs); !slices.Equal(got, []world.Tick{1, 4, 5}) {
		t.Errorf("pinned 1, keep 2: %v, want [1 4 5]", got)
	}

	all := &checkpoint.Writer{Root: filepath.Join(t.TempDir(), "checkpoints"), Keep: -1}
	for tick := world.Tick(1); tick <= 5; tick++ {
		write(t, all, tick, ws)
	}
	cs, _ = checkpoint.List(all.Root)
	if got := ticksOf(cs); len(got) != 5 {
		t.Errorf("keep all: %v, want 5 checkpoints", got)
	}
}

// A checkpoint of another timeline at the same tick is neither returned
// as if it were this one's nor replaced.
func TestWriteRefusesOtherTimeline(t *testing.T) {
	ws := workspace(t)
	w := &checkpoint.Writer{Root: filepath.Join(t.TempDir(), "checkpoints")}
	old := write(t, w, 4, ws)
	again := write(t, w, 4, ws) // the same checkpoint: returned
	if again.Dir != old.Dir {
		t.Errorf("the same checkpoint again: %s", again.Dir)
	}
	_, _, err := w.Write(checkpoint.Meta{Run: "r", Tick: 4, StateHash: "other", EventSeq: 99}, []byte(`{}`), nil)
	if !errors.Is(err, checkpoint.ErrOtherTimeline) {
		t.Fatalf("another timeline's checkpoint at tick 4: %v", err)
	}
	c, err := checkpoint.At(w.Root, 4)
	if err != nil || c.Meta.StateHash != old.Meta.StateHash {
		t.Errorf("the checkpoint at tick 4 changed: %+v %v", c, err)
	}
}

// The hook sees StageRenamed once the checkpoint is in place.
func TestHookRenamed(t *testing.T) {
	root := filepath.Join(t.TempDir(), "checkpoints")
	var stages []string
	w := &checkpoint.Writer{Root: root, Hook: func(stage string, tick world.Tick) {
		_, err := checkpoint.At(root, tick)
		stages = append(stages, fmt.Sprintf("%s %d in place=%v", stage, tick, err == nil))
	}}
	write(t, w, 7, workspace(t))
	want := []string{"written 7 in place=false", "renamed 7 in place=true"}
	if !slices.Equal(stages, want) {
		t.Errorf("stages %q, want %q", stages, want)
	}
}
