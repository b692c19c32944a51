package workspace

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// check looks at one settled path and acts on it: a change by the holder
// of a valid lease is recorded as pending (file.changed); anything else
// that differs from the last committed version is a violation, and the
// last committed version is restored. The caller holds w.mu.
func (w *Workspace) check(p, why string) {
	e, err := w.tree.lstat(p)
	if err != nil {
		// A parent is gone or replaced (a symlink planted as a directory is
		// reported at its own path).
		return
	}
	base := filepath.Base(p)
	lease, leased := w.table.Covering(p)
	if leased && lease.Token == w.scrubbing {
		leased = false
	}
	switch {
	case !e.exists:
		w.checkGone(p, lease, leased)
	case e.isDir():
		w.checkDir(p, e, leased, why)
	case !e.isReg():
		w.planted(p, e)
	case e.nlink > 1:
		w.violation(p, e, fmt.Sprintf("a hard link (%d names): shared files may have one name only", e.nlink), nil)
		if err := w.tree.remove(p, false); err != nil {
			w.log.Error("remove hard link", "path", p, "error", err)
		}
		delete(w.known, p)
		w.restoreTo(p, "a hard link was removed", "", false)
	default:
		w.checkFile(p, base, e, lease, leased, why)
	}
}

func (w *Workspace) checkGone(p string, lease Lease, leased bool) {
	wasDir := w.dirs[p]
	delete(w.dirs, p)
	if leased {
		if _, ok := w.known[p]; ok {
			delete(w.known, p)
			w.emit(EventFileChanged, lease.Agent, map[string]any{"path": p, "deleted": true, "pending": true, "token": lease.Token})
		}
		return
	}
	delete(w.known, p)
	if v, ok := w.store.Latest(p); ok && !v.Deleted {
		w.violation(p, entry{}, "deleted without a lease", nil)
		w.restoreTo(p, "deleted without a lease", "", true)
	}
	if wasDir {
		for _, q := range w.store.Paths() {
			if within(q, p) && q != p {
				if v, _ := w.store.Latest(q); !v.Deleted {
					if e, _ := w.tree.lstat(q); !e.exists {
						w.violation(q, entry{}, "its directory was deleted without a lease", nil)
						w.restoreTo(q, "deleted without a lease", "", true)
					}
				}
			}
		}
	}
}

func (w *Workspace) checkDir(p string, e entry, leased bool, why string) {
	isNew := !w.dirs[p]
	if !leased && isNew {
		// Made without a lease (possible only in detect mode): what is in
		// it is kept in the store, then it goes.
		var kept []string
		_ = w.walk(p, func(q string, qe entry) error {
			if qe.isReg() {
				if st, err := w.snapshot(q); err == nil {
					kept = append(kept, q+" "+st.sha)
				}
				delete(w.known, q)
			}
			return nil
		})
		w.violation(p, e, "a directory made without a lease", map[string]any{"kept": kept})
		if err := w.tree.removeAll(p); err != nil {
			w.log.Error("remove directory", "path", p, "error", err)
		}
		w.stats.Restored++
		w.emit(EventFileRestored, "", map[string]any{"path": p, "removed": true, "reason": "a directory made without a lease"})
		return
	}
	w.dirs[p] = true
	if isNew && w.watch != nil {
		if err := w.watch.add(p); err != nil {
			w.log.Warn("watch directory", "path", p, "error", err)
		}
	}
	if isNew || why == "rescan" {
		// Files made before the watch existed are not missed.
		names, err := w.tree.list(p)
		if err != nil {
			return
		}
		sort.Strings(names)
		for _, n := range names {
			w.check(join(p, n), why)
		}
	}
}

func (w *Workspace) checkFile(p, base string, e entry, lease Lease, leased bool, why string) {
	if k, ok := w.known[p]; ok && k.unchanged(e) {
		return // unchanged since last seen
	}
	young := time.Duration(w.now().UnixNano()-e.mtime) < 2*w.cfg.Reconcile
	if tempName(base) && (leased || young) {
		return // a temporary file: it counts once renamed into place
	}
	if leased {
		if ino0, ok := w.ino[lease.Token]; ok && ino0 != e.ino {
			// Replaced (a file renamed over it). In permissions mode only
			// the host can (the directory is not the agents'); in detect
			// mode it is the holder's doing when the temporary file's
			// name says so (replacer), anyone else's otherwise.
			by, src := w.replacer(p, why != "change")
			if by == lease.Agent {
				w.ino[lease.Token] = e.ino
				st, err := w.snapshot(p)
				if err != nil {
					return
				}
				w.emit(EventFileChanged, lease.Agent, map[string]any{"path": p, "sha256": st.sha, "size": st.size, "token": lease.Token, "pending": true, "replaced_by": src})
				return
			}
			w.undoReplace(p, e, lease, by, src)
			return
		}
		st, err := w.snapshot(p)
		if err != nil {
			return
		}
		w.emit(EventFileChanged, lease.Agent, map[string]any{"path": p, "sha256": st.sha, "size": st.size, "token": lease.Token, "pending": true})
		return
	}
	var by string
	if k, ok := w.known[p]; !ok || k.ino != e.ino {
		by, _ = w.replacer(p, false)
	}
	st, err := w.snapshot(p)
	if err != nil {
		return
	}
	if v, ok := w.store.Latest(p); ok && !v.Deleted && v.SHA256 == st.sha {
		if w.cfg.Enforcement == Permissions && (e.uid != 0 || e.gid != 0 || e.mode&0o7777 != 0o644) {
			w.reissue(p)
		}
		return
	}
	reason := "changed without a lease"
	if v, ok := w.store.Latest(p); !ok || v.Deleted {
		reason = "created without a lease"
	}
	w.violationBy(p, e, by, reason, map[string]any{"sha256": st.sha, "size": st.size})
	w.restoreTo(p, reason, "", true)
}

// replacer names the agent that replaced p by renaming a temporary file
// over it, as far as that file's name tells: the claude CLI's file tools
// write <name>.tmp.<pid>.<hex> and rename it over <name>, and the process
// id is one of the agent's processes (Config.AgentOfPID). src is the
// temporary file ("" when the watcher saw no rename over p). With wait, a
// rename the watcher's reader has not read yet is waited for (a commit,
// a rescan: they may come before the watcher's own check).
//
// This is how detect mode, where every agent is the host's user and file
// ownership tells nothing, tells the holder's replace from an intruder's.
// Its limit: an agent that deliberately names its temporary file after
// another agent's process passes as that agent (permissions mode has no
// such limit: only the host can replace a shared file there).
func (w *Workspace) replacer(p string, wait bool) (agent, src string) {
	if w.watch == nil {
		return "", ""
	}
	src, ok := w.watch.takeRenamed(p)
	if !ok && wait && w.watch.barrier(w.tree.fd, barrierWait) {
		src, ok = w.watch.takeRenamed(p)
	}
	if !ok {
		return "", ""
	}
	if pid := tempPID(filepath.Base(src)); pid > 0 {
		agent = w.cfg.AgentOfPID(pid)
	}
	return agent, src
}

// barrierWait bounds how long a check waits for the watcher's reader.
const barrierWait = 2 * time.Second

// undoReplace undoes a replace of p, a file leased to l's holder, that is
// not the holder's (replacer): a violation (naming by, the agent the
// temporary file's name or the file's owner tells, if any), what was put
// there is kept, and the holder's content is written back. A replace that
// named nobody might have been the holder's own: it is remembered, so the
// holder's next commit cannot report success having lost it (ErrUndone).
func (w *Workspace) undoReplace(p string, e entry, l Lease, by, src string) {
	prev := w.known[p]
	extra := map[string]any{}
	if src != "" {
		extra["replaced_by"] = src
	}
	w.violationBy(p, e, by, fmt.Sprintf("replaced (renamed over) while leased to %s, not by its holder", l.Agent), extra)
	st, err := w.snapshot(p) // keep what was put there
	if prev.sha != "" && w.store.Has(prev.sha) {
		w.restoreSHA(p, prev.sha, "replaced while leased: the holder's content is back")
	} else {
		w.restoreTo(p, "replaced while leased", "", true)
	}
	if err == nil && by == "" && w.cfg.AgentOfUID(e.uid) == "" {
		w.undone[l.Token] = append(w.undone[l.Token], st.sha)
	}
	w.ino[l.Token] = w.known[p].ino
	if w.cfg.Enforcement == Permissions {
		_ = w.open(l)
	}
}

// violation records a violation at p. The agent is named where the file's
// owner tells (permissions mode); last_holder names whoever held the path
// last when the lease ended without a release.
func (w *Workspace) violation(p string, e entry, reason string, extra map[string]any) {
	w.violationBy(p, e, "", reason, extra)
}

// violationBy is violation naming by when the file's owner does not tell
// (detect mode: see replacer).
func (w *Workspace) violationBy(p string, e entry, by, reason string, extra map[string]any) {
	w.stats.Violations++
	data := map[string]any{"path": p, "reason": reason}
	for k, v := range extra {
		data[k] = v
	}
	agent := ""
	if e.exists {
		agent = w.cfg.AgentOfUID(e.uid)
	}
	if agent == "" {
		agent = by
	}
	w.emit(EventViolation, agent, data)
}

// restoreSHA writes stored content sha back to p.
func (w *Workspace) restoreSHA(p, sha, reason string) {
	f, err := w.store.Open(sha)
	if err != nil {
		w.log.Error("restore", "path", p, "error", err)
		return
	}
	defer f.Close()
	e, err := w.tree.write(p, f, 0, 0, 0o644)
	if err != nil {
		w.log.Error("restore", "path", p, "error", err)
		return
	}
	w.known[p] = w.state(sha, e)
	w.stats.Restored++
	w.emit(EventFileRestored, "", map[string]any{"path": p, "sha256": sha, "reason": reason})
}

// rescan walks the whole tree and checks everything that differs from
// what the workspace last saw, then every known path that is gone. The
// caller holds w.mu.
func (w *Workspace) rescan() {
	seen := map[string]bool{}
	var visit func(dir string)
	visit = func(dir string) {
		names, err := w.tree.list(dir)
		if err != nil {
			return
		}
		sort.Strings(names)
		for _, n := range names {
			p := join(dir, n)
			seen[p] = true
			e, err := w.tree.lstat(p)
			if err != nil || !e.exists {
				continue
			}
			if e.isDir() {
				if !w.dirs[p] {
					w.check(p, "rescan") // checks what is in it too
					continue
				}
				visit(p)
				continue
			}
			w.check(p, "rescan")
		}
	}
	visit("")
	var gone []string
	for p := range w.known {
		if !seen[p] {
			gone = append(gone, p)
		}
	}
	for p := range w.dirs {
		if p != "" && !seen[p] {
			gone = append(gone, p)
		}
	}
	for _, p := range w.store.Paths() {
		if !seen[p] {
			if v, _ := w.store.Latest(p); !v.Deleted {
				gone = append(gone, p)
			}
		}
	}
	sort.Strings(gone)
	for _, p := range gone {
		w.check(p, "rescan")
	}
}

// Run watches the shared tree and drives lease expiry until ctx is done.
func (w *Workspace) Run(ctx context.Context) error {
	wt, err := newWatcher(w.tree.dir, w.cfg.Debounce, w.log.Named("watcher"),
		func(p string) {
			w.mu.Lock()
			if !w.closed {
				w.check(p, "change")
			}
			w.mu.Unlock()
		},
		func() {
			w.mu.Lock()
			if !w.closed {
				w.stats.Rescans++
				w.emit(EventRescan, "", map[string]any{"reason": "the watcher's event queue overflowed: events were lost, the whole tree is rescanned"})
				w.rescan()
				w.emit(EventRescan, "", map[string]any{"reason": "rescan after overflow done", "done": true})
			}
			w.mu.Unlock()
		})
	if err != nil {
		return fmt.Errorf("workspace watcher: %w", err)
	}
	w.mu.Lock()
	dirs := make([]string, 0, len(w.dirs))
	for d := range w.dirs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		if err := wt.add(d); err != nil {
			w.mu.Unlock()
			wt.fw.Close()
			return fmt.Errorf("workspace watcher: %w", err)
		}
	}
	w.watch = wt
	w.rescan() // what changed before the watches existed
	w.mu.Unlock()
	close(w.scanned)

	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		wt.run(wctx)
	}()
	defer func() {
		stop()
		<-done
	}()

	reconcile := time.NewTicker(w.cfg.Reconcile)
	defer reconcile.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		w.mu.Lock()
		next := w.table.Next()
		w.mu.Unlock()
		d := time.Hour
		if !next.IsZero() {
			d = time.Until(next)
			if d < 0 {
				d = 0
			}
		}
		timer.Reset(d)
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		case <-timer.C:
			w.mu.Lock()
			if !w.closed {
				w.deliver(w.table.Advance(w.now()))
			}
			w.mu.Unlock()
		case <-reconcile.C:
			w.mu.Lock()
			if !w.closed {
				w.rescan()
			}
			w.mu.Unlock()
		}
	}
}

// Watching is closed once Run watches the tree and has scanned it.
func (w *Workspace) Watching() <-chan struct{} { return w.scanned }

// Sync waits until the watcher has no unsettled change (or ctx is done),
// then rescans the whole tree: afterwards every change made so far is
// accounted for.
func (w *Workspace) Sync(ctx context.Context) {
	for {
		w.mu.Lock()
		wt := w.watch
		w.mu.Unlock()
		if wt == nil || wt.pending() == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.cfg.Debounce / 2):
		}
	}
	w.mu.Lock()
	if !w.closed {
		w.rescan()
	}
	w.mu.Unlock()
}

// Close ends the workspace: waiters get ErrClosed, later calls ErrClosed.
// Call it after Run returned. A second Close does nothing.
func (w *Workspace) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	for id, wt := range w.waiters {
		wt.ch <- waitResult{err: ErrClosed}
		delete(w.waiters, id)
	}
	w.mu.Unlock()
	w.tree.close()
	return w.store.Close()
}

func sortLeases(ls []Lease) { sort.Slice(ls, func(i, j int) bool { return ls[i].Token < ls[j].Token }) }

func unixChown(path string, uid, gid int, mode string) error {
	if mode != Permissions {
		return nil
	}
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	return nil
}
