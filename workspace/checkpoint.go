package workspace

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// FileRef is one path's current (last committed) version at a checkpoint.
// The content itself stays in the run's version store (append-only, never
// pruned); the checkpoint keeps only this reference.
type FileRef struct {
	Path    string `json:"path"`
	Version int    `json:"version"`
	SHA256  string `json:"sha256,omitempty"` // "" when Deleted
	Size    int64  `json:"size"`
	Deleted bool   `json:"deleted,omitempty"`
}

// State is what a checkpoint keeps of the workspace: the fencing-token
// counter, the lease table (for the record: a resumed run restarts every
// agent, so these leases end as if their holders had died) and each
// path's current version.
type State struct {
	LastToken uint64    `json:"last_token"`
	Leases    []Lease   `json:"leases"`
	Waiting   int       `json:"waiting"` // acquires waiting at the checkpoint (dropped on resume)
	Files     []FileRef `json:"files"`
}

// Checkpoint returns the workspace's state now. Contents a holder has not
// committed are not part of it: they are in the store (nothing is lost),
// but a resumed run starts from the committed versions, as if every holder
// had died.
func (w *Workspace) Checkpoint() (State, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return State{}, ErrClosed
	}
	st := State{LastToken: w.table.LastToken(), Leases: w.table.Held(), Waiting: len(w.waiters), Files: []FileRef{}}
	sortLeases(st.Leases)
	for _, p := range w.store.Paths() {
		v, _ := w.store.Latest(p)
		if v.SHA256 != "" && !w.store.Has(v.SHA256) {
			return State{}, fmt.Errorf("checkpoint: the blob of %s version %d (%s) is missing from the version store", p, v.N, v.SHA256)
		}
		st.Files = append(st.Files, FileRef{Path: p, Version: v.N, SHA256: v.SHA256, Size: v.Size, Deleted: v.Deleted})
	}
	return st, nil
}

// Restore puts the shared tree back to st before Run starts (call it right
// after New): every path whose current version differs from st's gets a
// new version (reason "resume") with st's content, or deleted when st has
// none, and the file is rewritten (or removed) through the tree's no-follow
// operations, host-owned as the enforcement mode requires. What was there
// is kept in the store. The fencing-token counter goes on after the larger
// of st's and the store's, so a token is never issued twice. st's leases
// are dropped (their holders are gone); a lease.expired event names each.
func (w *Workspace) Restore(st State, why string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if st.LastToken > w.table.token {
		w.table.token = st.LastToken
	}
	for _, l := range st.Leases {
		w.emit(EventLeaseExpired, l.Agent, map[string]any{"path": l.Path, "prefix": l.Prefix, "token": l.Token, "reason": why + ": its holder was restarted", "lock_delay_ms": 0})
	}
	want := make(map[string]FileRef, len(st.Files))
	for _, f := range st.Files {
		if _, err := CleanPath(f.Path); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if !f.Deleted && !w.store.Has(f.SHA256) {
			return fmt.Errorf("restore %s: version %d (%s) is not in the version store %s", f.Path, f.Version, f.SHA256, w.store.dir)
		}
		want[f.Path] = f
	}
	paths := w.store.Paths()
	for p := range want {
		if _, ok := w.store.Latest(p); !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		f, ok := want[p]
		if !ok {
			f = FileRef{Path: p, Deleted: true} // created after the checkpoint
		}
		v, has := w.store.Latest(p)
		if !has || v.Deleted != f.Deleted || v.SHA256 != f.SHA256 {
			if _, err := w.addVersion(Version{Path: p, SHA256: f.SHA256, Size: f.Size, Deleted: f.Deleted, Reason: "resume"}); err != nil {
				return fmt.Errorf("restore %s: %w", p, err)
			}
		}
		w.restoreTo(p, why, "", false)
	}
	return nil
}

// CopyBlobs copies into the version store in dst the blobs of st that it
// lacks, from the store in src (a fork starts from another run's
// checkpoint, whose contents are in that run's store).
func CopyBlobs(st State, src, dst string) error {
	for _, f := range st.Files {
		if f.Deleted {
			continue
		}
		if !validSum(f.SHA256) {
			return fmt.Errorf("%s: bad sha256 %q", f.Path, f.SHA256)
		}
		to := blobPath(dst, f.SHA256)
		if _, err := os.Stat(to); err == nil {
			continue
		}
		in, err := OpenBlob(src, f.SHA256)
		if err != nil {
			return fmt.Errorf("%s version %d: %w", f.Path, f.Version, err)
		}
		err = writeBlob(in, to)
		in.Close()
		if err != nil {
			return fmt.Errorf("%s version %d: %w", f.Path, f.Version, err)
		}
	}
	return nil
}

func writeBlob(in io.Reader, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return err
	}
	tmp := to + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, to)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
