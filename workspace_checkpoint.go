package terrarium

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/terrarium-sim/terrarium/workspace"
)

// sharedStateFile is the shared part's file inside a checkpoint.
const sharedStateFile = "state.json"

// sharedCheckpoint is the shared part's state.json: the workspace's state
// and the version store its contents are in.
type sharedCheckpoint struct {
	Store string          `json:"store"` // absolute path of the run's versions/
	State workspace.State `json:"state"`
}

// sharedPart is the checkpoint part of the shared tree: each path's
// current version, the lease table and the fencing-token counter. Every
// run has it (every run has a shared tree).
type sharedPart struct {
	versions string               // this run's version store
	ws       *workspace.Workspace // nil while the run is not started (resume)
}

// Name implements checkpoint.Part.
func (sharedPart) Name() string { return "shared" }

// Save implements checkpoint.Part.
func (p sharedPart) Save(dir string) error {
	if p.ws == nil {
		return errors.New("the workspace is not running")
	}
	st, err := p.ws.Checkpoint()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(p.versions)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(sharedCheckpoint{Store: abs, State: st}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, sharedStateFile), b, 0o600)
}

// Restore implements checkpoint.Part: it checks that every content the
// checkpoint names is in this run's version store, copying it from the
// checkpoint's run for a fork. The tree itself is put back when the
// workspace starts (startWorkspace), through its no-follow operations.
func (p sharedPart) Restore(dir string) error {
	sc, err := readShared(dir)
	if err != nil {
		return err
	}
	if err := workspace.CopyBlobs(sc.State, sc.Store, p.versions); err != nil {
		return fmt.Errorf("the checkpoint's shared files are not in a version store: %w", err)
	}
	return nil
}

func readShared(dir string) (*sharedCheckpoint, error) {
	b, err := os.ReadFile(filepath.Join(dir, sharedStateFile))
	if err != nil {
		return nil, err
	}
	var sc sharedCheckpoint
	if err := json.Unmarshal(b, &sc); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, sharedStateFile), err)
	}
	return &sc, nil
}

// sharedPart is this run's shared part.
func (r *run) sharedPart() sharedPart {
	p := sharedPart{versions: filepath.Join(r.dir, "versions")}
	if r.wsh != nil {
		p.ws = r.wsh.ws
	}
	return p
}

// restoreShared puts the shared tree back to the checkpoint the run goes
// on from (resume or fork), before the watcher starts. A checkpoint
// without a shared part (written before there was one, or rebuilt from
// the event log) leaves the tree as it is.
func (r *run) restoreShared(ws *workspace.Workspace) error {
	if r.from == nil {
		return nil
	}
	sc, err := readShared(filepath.Join(r.from.Dir, sharedPart{}.Name()))
	if errors.Is(err, os.ErrNotExist) {
		r.log.Warn("the checkpoint has no shared part: the shared tree is left as it is", "tick", r.from.Meta.Tick)
		return nil
	}
	if err != nil {
		return err
	}
	if err := ws.Restore(sc.State, fmt.Sprintf("back to the checkpoint at tick %d", r.from.Meta.Tick)); err != nil {
		return fmt.Errorf("restore the shared tree from the checkpoint at tick %d: %w", r.from.Meta.Tick, err)
	}
	return nil
}
