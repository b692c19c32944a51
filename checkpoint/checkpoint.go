package checkpoint

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/terrarium-sim/terrarium/world"
)

// Version is the version of checkpoint.json.
const Version = 1

// File names inside a checkpoint directory.
const (
	MetaFile  = "checkpoint.json"
	WorldFile = "world.snap"
)

// DefaultKeep is how many checkpoints a Writer keeps by default (the
// scenario's checkpoint_keep).
const DefaultKeep = 3

// A Part adds its own files to a checkpoint and puts them back when a run
// goes on from it. The agents' workspaces are one (DirPart); the shared
// tree's versions and the lease table another (the host's "shared" part).
type Part interface {
	// Name is the part's directory inside the checkpoint ([a-z0-9_-]+).
	Name() string
	// Save writes the part into dir, which exists and is empty.
	Save(dir string) error
	// Restore puts the part back from dir (what Save wrote).
	Restore(dir string) error
}

// AgentState is what the supervisor knows of one agent at the checkpoint.
type AgentState struct {
	Restarts int  `json:"restarts"`
	Turns    int  `json:"turns"`
	Failed   bool `json:"failed,omitempty"`
	Spent    bool `json:"spent,omitempty"`
}

// Meta is checkpoint.json.
type Meta struct {
	V         int        `json:"v"`
	Run       string     `json:"run"`
	Tick      world.Tick `json:"tick"`
	Seed      uint64     `json:"seed"`
	StateHash string     `json:"state_hash"`
	// EventSeq and EventHash are the last event written before the
	// checkpoint: a resumed run's log goes on from there.
	EventSeq  uint64    `json:"event_seq"`
	EventHash string    `json:"event_hash"`
	Reason    string    `json:"reason"` // "every" (checkpoint_every) or "stop" (orderly shutdown)
	Written   time.Time `json:"written"`
	// Loop is the loop's state; Agents the supervisor's, by agent id.
	Loop   world.LoopState              `json:"loop"`
	Agents map[world.AgentID]AgentState `json:"agents"`
	// Files maps each file of the checkpoint (slash path) to its SHA-256.
	Files map[string]string `json:"files"`
	Parts []string          `json:"parts,omitempty"`
}

// Checkpoint is one complete checkpoint on disk.
type Checkpoint struct {
	Dir  string
	Meta Meta
}

// World returns the world's snapshot.
func (c *Checkpoint) World() ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(c.Dir, WorldFile))
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", c.Dir, err)
	}
	return b, nil
}

// Restore puts part p back from this checkpoint.
func (c *Checkpoint) Restore(p Part) error {
	dir := filepath.Join(c.Dir, p.Name())
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("checkpoint %s has no part %s: %w", c.Dir, p.Name(), err)
	}
	if err := p.Restore(dir); err != nil {
		return fmt.Errorf("restore %s from checkpoint at tick %d: %w", p.Name(), c.Meta.Tick, err)
	}
	return nil
}

var dirPattern = regexp.MustCompile(`^tick-(\d{10})$`)

// DirName is the directory of the checkpoint at tick t.
func DirName(t world.Tick) string { return fmt.Sprintf("tick-%010d", uint64(t)) }

// Stages of a write, as passed to Writer.Hook.
const (
	// StageWritten: every file is in the temporary directory, synced, not
	// yet renamed into place.
	StageWritten = "written"
	// StageRenamed: the checkpoint is in place and its directory synced;
	// older ones are not pruned yet.
	StageRenamed = "renamed"
)

// Writer writes checkpoints into one directory (a run's checkpoints/).
type Writer struct {
	Root string
	// Keep is how many checkpoints are kept besides the pinned ones: 0
	// means DefaultKeep, a negative number keeps them all. The one just
	// written and the pinned ones are never removed.
	Keep int
	// Pinned are ticks whose checkpoints are never removed (the one the
	// run started from; a fork's first, which replay starts from).
	Pinned []world.Tick
	// Hook, if set, is called at each stage of a write (StageWritten,
	// StageRenamed). Tests use it to crash the host at a fixed point.
	Hook func(stage string, t world.Tick)

	last world.Tick // the tick of the last checkpoint this Writer wrote
}

// LastWritten is the tick of the last checkpoint this Writer wrote (0:
// none yet).
func (w *Writer) LastWritten() world.Tick { return w.last }

// ErrOtherTimeline is returned by Write when a checkpoint of another
// timeline (other events or another state) is already at that tick.
var ErrOtherTimeline = errors.New("a checkpoint of another timeline is already at this tick")

// Write writes a checkpoint of m's tick: world is the world's snapshot,
// parts add their files. It returns the checkpoint and its size in bytes.
// A checkpoint already present at that tick is returned as it is if it
// records the same event and state; otherwise Write fails
// (ErrOtherTimeline) and changes nothing.
func (w *Writer) Write(m Meta, snapshot []byte, parts []Part) (*Checkpoint, int64, error) {
	if err := os.MkdirAll(w.Root, 0o755); err != nil {
		return nil, 0, fmt.Errorf("checkpoint: %w", err)
	}
	final := filepath.Join(w.Root, DirName(m.Tick))
	if _, err := os.Lstat(final); err == nil {
		c, err := read(final)
		if err == nil && c.Meta.EventSeq == m.EventSeq && c.Meta.EventHash == m.EventHash && c.Meta.StateHash == m.StateHash {
			return c, 0, nil
		}
		if err == nil {
			err = fmt.Errorf("it records event %d and state %.12s, this one event %d and state %.12s", c.Meta.EventSeq, c.Meta.StateHash, m.EventSeq, m.StateHash)
		}
		return nil, 0, fmt.Errorf("checkpoint at tick %d: %w (%s): %w", m.Tick, ErrOtherTimeline, final, err)
	}
	w.removeTemps()
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	tmp := filepath.Join(w.Root, ".tmp-"+DirName(m.Tick)+"-"+hex.EncodeToString(rb[:]))
	fail := func(err error) (*Checkpoint, int64, error) {
		os.RemoveAll(tmp)
		return nil, 0, fmt.Errorf("checkpoint at tick %d: %w", m.Tick, err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, WorldFile), snapshot, 0o600); err != nil {
		return fail(err)
	}
	m.Parts = nil
	for _, p := range parts {
		d := filepath.Join(tmp, p.Name())
		if err := os.Mkdir(d, 0o700); err != nil {
			return fail(err)
		}
		if err := p.Save(d); err != nil {
			return fail(fmt.Errorf("part %s: %w", p.Name(), err))
		}
		m.Parts = append(m.Parts, p.Name())
	}
	files, size, err := digestTree(tmp)
	if err != nil {
		return fail(err)
	}
	m.V, m.Files = Version, files
	if m.Written.IsZero() {
		m.Written = time.Now().UTC()
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, MetaFile), b, 0o600); err != nil {
		return fail(err)
	}
	size += int64(len(b))
	if err := syncTree(tmp); err != nil {
		return fail(err)
	}
	if w.Hook != nil {
		w.Hook(StageWritten, m.Tick)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fail(err)
	}
	if err := syncDir(w.Root); err != nil {
		return nil, 0, fmt.Errorf("checkpoint at tick %d: %w", m.Tick, err)
	}
	if w.Hook != nil {
		w.Hook(StageRenamed, m.Tick)
	}
	w.last = m.Tick
	w.prune(m.Tick)
	return &Checkpoint{Dir: final, Meta: m}, size, nil
}

// removeTemps removes what crashed writes left.
func (w *Writer) removeTemps() {
	ents, _ := os.ReadDir(w.Root)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			os.RemoveAll(filepath.Join(w.Root, e.Name()))
		}
	}
}

// prune removes the oldest checkpoints past Keep (the pinned ones do not
// count), never the one just written nor a pinned one.
func (w *Writer) prune(written world.Tick) {
	keep := w.Keep
	switch {
	case keep < 0:
		return
	case keep == 0:
		keep = DefaultKeep
	}
	var ticks []world.Tick // the pinned ones do not count
	for _, t := range Ticks(w.Root) {
		if !slices.Contains(w.Pinned, t) {
			ticks = append(ticks, t)
		}
	}
	n := len(ticks)
	for _, t := range ticks {
		if n <= keep {
			return
		}
		if t == written {
			continue
		}
		os.RemoveAll(filepath.Join(w.Root, DirName(t)))
		n--
	}
}

// Ticks lists the ticks of the checkpoint directories under root
// (complete or not, intact or not), ascending.
func Ticks(root string) []world.Tick {
	ents, _ := os.ReadDir(root)
	var ticks []world.Tick
	for _, e := range ents {
		if m := dirPattern.FindStringSubmatch(e.Name()); m != nil && e.IsDir() {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			ticks = append(ticks, world.Tick(n))
		}
	}
	sort.Slice(ticks, func(i, j int) bool { return ticks[i] < ticks[j] })
	return ticks
}

// List returns the complete, intact checkpoints under root, oldest first,
// and a note for each one that is not (damaged files, a missing meta).
func List(root string) ([]*Checkpoint, []error) {
	var out []*Checkpoint
	var bad []error
	for _, t := range Ticks(root) {
		c, err := read(filepath.Join(root, DirName(t)))
		if err != nil {
			bad = append(bad, err)
			continue
		}
		out = append(out, c)
	}
	return out, bad
}

// At returns the checkpoint at tick t under root.
func At(root string, t world.Tick) (*Checkpoint, error) {
	c, err := read(filepath.Join(root, DirName(t)))
	if err != nil {
		var have []string
		cs, _ := List(root)
		for _, c := range cs {
			have = append(have, strconv.FormatUint(uint64(c.Meta.Tick), 10))
		}
		if len(have) == 0 {
			have = []string{"none"}
		}
		return nil, fmt.Errorf("no usable checkpoint at tick %d in %s (have: %s): %w", t, root, strings.Join(have, ", "), err)
	}
	return c, nil
}

// read loads and checks one checkpoint directory.
func read(dir string) (*Checkpoint, error) {
	b, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %s: %w", dir, MetaFile, err)
	}
	if m.V != Version {
		return nil, fmt.Errorf("checkpoint %s: version %d, want %d", dir, m.V, Version)
	}
	files, _, err := digestTree(dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	delete(files, MetaFile)
	for name, sum := range m.Files {
		if files[name] != sum {
			return nil, fmt.Errorf("checkpoint %s: %s is damaged or missing", dir, name)
		}
	}
	if len(files) != len(m.Files) {
		return nil, fmt.Errorf("checkpoint %s: has %d files, its %s lists %d", dir, len(files), MetaFile, len(m.Files))
	}
	return &Checkpoint{Dir: dir, Meta: m}, nil
}

// digestTree hashes every regular file under root (symlinks by target).
func digestTree(root string) (map[string]string, int64, error) {
	files := map[string]string{}
	var size int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256([]byte("link:" + t))
			files[rel] = hex.EncodeToString(sum[:])
		case d.Type().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			n, err := io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			size += n
			files[rel] = hex.EncodeToString(h.Sum(nil))
		}
		return nil
	})
	return files, size, err
}

// syncTree fsyncs every file and directory under root, root last.
func syncTree(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			dirs = append(dirs, p)
		case d.Type().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			err = f.Sync()
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syncDir(dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
