package workspace

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Enforcement modes.
const (
	// Permissions: agents run as their own users; the shared tree is owned
	// by the host and a grant opens one file (or one directory) to the
	// holder's group.
	Permissions = "permissions"
	// Detect: agents share the host's user; a change without a valid lease
	// is detected and the last committed version restored.
	Detect = "detect"
	// Auto picks Permissions when agents run as their own users, else Detect.
	Auto = "auto"
)

// Defaults.
const (
	DefaultTTL       = 10 * time.Second
	DefaultLockDelay = 500 * time.Millisecond
	DefaultDebounce  = 30 * time.Millisecond
	DefaultReconcile = 2 * time.Second
)

// Event kinds the workspace emits (see docs/events.md).
const (
	EventLeaseRequested = "lease.requested"
	EventLeaseGranted   = "lease.granted"
	EventLeaseRenewed   = "lease.renewed"
	EventLeaseReleased  = "lease.released"
	EventLeaseExpired   = "lease.expired"
	EventLeaseRefused   = "lease.refused"
	EventFileChanged    = "file.changed"
	EventFileCommitted  = "file.committed"
	EventFileVersion    = "file.version"
	EventFileRestored   = "file.restored"
	EventViolation      = "violation"
	EventRescan         = "watch.rescan"
)

// Config configures a Workspace.
type Config struct {
	// Shared is the shared tree (<run>/workspace/shared); it must exist.
	Shared string
	// Versions is the version store's directory (<run>/versions), outside
	// anything agents can reach.
	Versions string
	// Enforcement is Permissions or Detect.
	Enforcement string
	// Seed, if set, is a directory whose files are copied into the shared
	// tree at the start (each becomes version 1). Symlinks and special files
	// in it are skipped.
	Seed string
	// TTL is how long a lease lives without a renewal; LockDelay how long a
	// scope stays blocked after its holder expired or died.
	TTL, LockDelay time.Duration
	// Debounce is how long a path must be quiet to count as settled;
	// Reconcile the period of the full rescan that backs up the watcher.
	Debounce, Reconcile time.Duration
	// GroupOf returns the group id of an agent (Permissions mode).
	GroupOf func(agent string) (gid int, ok bool)
	// AgentOfUID names the agent a file owner is, for violations ("" if none).
	AgentOfUID func(uid uint32) string
	// AgentOfPID names the agent a process belongs to (the process or one
	// of its ancestors is that agent's), "" if none. In detect mode it
	// attributes a replace (a temporary file renamed over a file) by the
	// process id the temporary file's name carries: see checkFile.
	AgentOfPID func(pid int) string
	// Emit receives every event (kind, agent or "", data). It is called
	// with the workspace's lock held, in order; it must not call back.
	Emit   func(kind, agent string, data map[string]any)
	Logger hclog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Stats counts what happened, for result.json.
type Stats struct {
	Enforcement string `json:"enforcement"`
	Grants      int    `json:"grants"`
	Refused     int    `json:"refused"`
	Expired     int    `json:"expired"`
	Commits     int    `json:"commits"`  // commit operations that recorded at least one version
	Versions    int    `json:"versions"` // versions recorded (seed included)
	Violations  int    `json:"violations"`
	Restored    int    `json:"restored"`
	Rescans     int    `json:"rescans"` // full rescans after a watcher overflow
}

// AcquireOptions shape an Acquire.
type AcquireOptions struct {
	// Prefix asks for a directory and everything under it.
	Prefix bool
	// Wait is how long to wait for a held lease; 0 fails fast with ErrLeaseHeld.
	Wait time.Duration
}

// fileState is what the workspace last saw at a path.
type fileState struct {
	sha   string
	ino   uint64
	size  int64
	mtime int64 // the file's, ns
	at    int64 // when the host saw it (its clock), ns
}

// racyWindow covers the file system's timestamp granularity: a file whose
// mtime is this close to when it was seen may have changed again within
// the same timestamp, so it is always read again ("racy git").
const racyWindow = int64(50 * time.Millisecond)

// unchanged reports whether e is certainly the file last seen: same inode,
// size and mtime, and an mtime old enough when it was seen.
func (k fileState) unchanged(e entry) bool {
	return k.sha != "" && k.ino == e.ino && k.size == e.size && k.mtime == e.mtime && k.mtime+racyWindow < k.at
}

// state records content sha with file e as seen now.
func (w *Workspace) state(sha string, e entry) fileState {
	return fileState{sha: sha, ino: e.ino, size: e.size, mtime: e.mtime, at: w.now().UnixNano()}
}

type waitResult struct {
	lease Lease
	err   error
}

// waiter is an Acquire waiting for its grant.
type waiter struct {
	agent, path string
	ch          chan waitResult // buffered: one result
}

// Workspace is the shared tree of one run with its lessor, enforcement,
// watcher and version store. Make it with New, drive it with Run.
type Workspace struct {
	cfg    Config
	log    hclog.Logger
	tree   *tree
	store  *Store
	now    func() time.Time
	tokens *tokenFile

	mu      sync.Mutex
	table   *Table
	waiters map[uint64]waiter
	known   map[string]fileState // regular files, by path
	dirs    map[string]bool      // directories that may exist
	ino     map[uint64]uint64    // file lease token -> the file's inode
	// undone holds, per lease token, the content (sha256) of changes in
	// its scope that were undone while it was held, since its last commit
	// that recorded a version: a commit that records nothing then is
	// refused (ErrUndone), never a success that lost the holder's work.
	undone  map[uint64][]string
	stats   Stats
	closed  bool
	wake    chan struct{}
	watch   *watcher
	scanned chan struct{} // closed once Run watches the tree (Watching)
	// batch, when not nil, collects versions for one AddAll.
	batch *[]Version
	// scrubbing is the token of a grant being made: its scope is checked
	// as if unleased first (changes made before the grant are not the new
	// holder's).
	scrubbing uint64
}

// New opens the shared tree, the version store and the fencing-token
// counter (a resumed run continues after the last token ever issued),
// seeds the tree, records every file found as a version (if it has none)
// and puts the tree under the enforcement mode's ownership. It starts
// nothing: call Run.
func New(cfg Config) (*Workspace, error) {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.LockDelay < 0 {
		cfg.LockDelay = 0
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.Reconcile <= 0 {
		cfg.Reconcile = DefaultReconcile
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Emit == nil {
		cfg.Emit = func(string, string, map[string]any) {}
	}
	if cfg.AgentOfUID == nil {
		cfg.AgentOfUID = func(uint32) string { return "" }
	}
	if cfg.AgentOfPID == nil {
		cfg.AgentOfPID = func(int) string { return "" }
	}
	switch cfg.Enforcement {
	case Permissions:
		if os.Geteuid() != 0 || cfg.GroupOf == nil {
			return nil, errors.New("workspace: enforcement \"permissions\" needs the host to run as root with agents as their own users")
		}
	case Detect:
	default:
		return nil, fmt.Errorf("workspace: enforcement %q: want %q or %q", cfg.Enforcement, Permissions, Detect)
	}
	shared, err := filepath.Abs(cfg.Shared)
	if err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	t, err := openTree(shared)
	if err != nil {
		return nil, err
	}
	store, err := OpenStore(cfg.Versions)
	if err != nil {
		t.close()
		return nil, err
	}
	tokens, err := openTokenFile(filepath.Join(cfg.Versions, "tokens"))
	if err != nil {
		t.close()
		store.Close()
		return nil, err
	}
	w := &Workspace{
		cfg: cfg, log: cfg.Logger.Named("workspace"), tree: t, store: store, now: cfg.Now, tokens: tokens,
		waiters: map[uint64]waiter{}, known: map[string]fileState{}, dirs: map[string]bool{},
		ino: map[uint64]uint64{}, undone: map[uint64][]string{}, wake: make(chan struct{}, 1), scanned: make(chan struct{}),
	}
	w.stats.Enforcement = cfg.Enforcement
	w.table = NewTable(cfg.TTL, cfg.LockDelay, tokens.last)
	w.table.OnToken = tokens.issue
	if err := os.Chmod(shared, 0o755); err != nil {
		w.closeFiles()
		return nil, fmt.Errorf("workspace: %w", err)
	}
	if err := unixChown(shared, 0, 0, w.cfg.Enforcement); err != nil {
		w.closeFiles()
		return nil, err
	}
	if cfg.Seed != "" {
		if err := w.seed(cfg.Seed); err != nil {
			w.closeFiles()
			return nil, err
		}
	}
	w.mu.Lock()
	w.batch = &[]Version{}
	err = w.adopt("")
	if _, ferr := w.flush(); err == nil {
		err = ferr
	}
	w.mu.Unlock()
	if err != nil {
		w.closeFiles()
		return nil, err
	}
	return w, nil
}

func (w *Workspace) closeFiles() {
	w.tree.close()
	w.store.Close()
}

// Enforcement is the mode in force.
func (w *Workspace) Enforcement() string { return w.cfg.Enforcement }

// Shared is the shared tree's absolute path.
func (w *Workspace) Shared() string { return w.tree.dir }

// Store is the version store.
func (w *Workspace) Store() *Store { return w.store }

// Stats returns the counters so far.
func (w *Workspace) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// emit sends an event; the caller holds w.mu.
func (w *Workspace) emit(kind, agent string, data map[string]any) { w.cfg.Emit(kind, agent, data) }

// seed copies the seed directory into the tree (regular files and
// directories only; links are never followed).
func (w *Workspace) seed(src string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("seed %s: %w", src, err)
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			if err := w.tree.mkdir(rel, 0, 0, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("seed: %w", err)
			}
		case d.Type().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return fmt.Errorf("seed: %w", err)
			}
			defer f.Close()
			if _, err := w.tree.write(rel, f, 0, 0, 0o644); err != nil {
				return fmt.Errorf("seed: %w", err)
			}
		default:
			w.log.Warn("seed: skipping what is not a file or directory", "path", p, "type", d.Type().String())
		}
		return nil
	})
}

// adopt walks directory rel at start: files become seed versions (unless
// the store has their content as latest version already), everything is
// made host-owned, and special files are removed.
func (w *Workspace) adopt(rel string) error {
	names, err := w.tree.list(rel)
	if err != nil {
		return err
	}
	sortPaths(names)
	w.dirs[rel] = true
	for _, n := range names {
		p := join(rel, n)
		e, err := w.tree.lstat(p)
		if err != nil {
			return err
		}
		switch {
		case e.isDir():
			if err := w.tree.chown(p, 0, 0, 0o755); err != nil && w.cfg.Enforcement == Permissions {
				return err
			}
			if err := w.adopt(p); err != nil {
				return err
			}
		case e.isReg():
			st, err := w.snapshot(p)
			if err != nil {
				return err
			}
			if v, ok := w.store.Latest(p); !ok || v.Deleted || v.SHA256 != st.sha {
				if _, err := w.addVersion(Version{Path: p, SHA256: st.sha, Size: st.size, Reason: "seed"}); err != nil {
					return err
				}
			}
			if err := w.tree.chown(p, 0, 0, 0o644); err != nil && w.cfg.Enforcement == Permissions {
				return err
			}
		default:
			w.log.Warn("removing a special file from the shared tree", "path", p, "type", e.kind())
			if err := w.tree.remove(p, false); err != nil {
				return err
			}
		}
	}
	return nil
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// snapshot reads p (never following links), stores its content and
// records its state as known.
func (w *Workspace) snapshot(p string) (fileState, error) {
	f, e, err := w.tree.open(p)
	if err != nil {
		return fileState{}, err
	}
	defer f.Close()
	if !e.isReg() {
		return fileState{}, fmt.Errorf("%s is a %s", p, e.kind())
	}
	sum, size, err := w.store.Put(f)
	if err != nil {
		return fileState{}, err
	}
	st := w.state(sum, e)
	st.size = size
	w.known[p] = st
	return st, nil
}

// addVersion records a version, or, while a batch is open (commitScope),
// queues it: flush then records the batch at once.
func (w *Workspace) addVersion(v Version) (Version, error) {
	if w.batch != nil {
		*w.batch = append(*w.batch, v)
		return v, nil
	}
	v, err := w.store.Add(v)
	if err != nil {
		return v, err
	}
	w.versionAdded(v)
	return v, nil
}

// flush records the open batch and closes it.
func (w *Workspace) flush() ([]Version, error) {
	b := w.batch
	w.batch = nil
	if b == nil || len(*b) == 0 {
		return nil, nil
	}
	vs, err := w.store.AddAll(*b)
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		w.versionAdded(v)
	}
	return vs, nil
}

func (w *Workspace) versionAdded(v Version) {
	w.stats.Versions++
	data := map[string]any{"path": v.Path, "version": v.N, "sha256": v.SHA256, "size": v.Size, "reason": v.Reason}
	if v.Deleted {
		data["deleted"] = true
	}
	if v.Token != 0 {
		data["token"] = v.Token
	}
	w.emit(EventFileVersion, v.Agent, data)
}

// resolve checks a lease path: cleaned, every element a real directory (no
// symlink), and the last one a regular file (dir false) or a directory.
func (w *Workspace) resolve(p string, dir, mustExist bool) (string, error) {
	c, err := CleanPath(p)
	if err != nil {
		return "", err
	}
	els := strings.Split(c, "/")
	for i := range els {
		sub := strings.Join(els[:i+1], "/")
		e, err := w.tree.lstat(sub)
		if err != nil {
			if errors.Is(err, errSymlink) {
				return "", fmt.Errorf("%w: %s: %v (leases are on real files and directories of the shared tree)", ErrBadPath, c, err)
			}
			return "", fmt.Errorf("%w: %s: %v", ErrBadPath, c, err)
		}
		last := i == len(els)-1
		switch {
		case e.isLink():
			return "", fmt.Errorf("%w: %s is a symlink (to %q): leases are on real files and directories of the shared tree, and links are never followed", ErrBadPath, sub, w.tree.readlink(sub))
		case !e.exists && mustExist:
			if last && !dir {
				return "", fmt.Errorf("%w: %s does not exist (use create for a new file)", ErrBadPath, c)
			}
			return "", fmt.Errorf("%w: %s does not exist", ErrBadPath, sub)
		case !e.exists:
			return c, nil // the rest is made by Create
		case !last && !e.isDir():
			return "", fmt.Errorf("%w: %s is not a directory", ErrBadPath, sub)
		case last && dir && !e.isDir():
			return "", fmt.Errorf("%w: %s is a %s, not a directory (acquire it without prefix)", ErrBadPath, c, e.kind())
		case last && !dir && !e.isReg():
			if e.isDir() {
				return "", fmt.Errorf("%w: %s is a directory (acquire it with prefix)", ErrBadPath, c)
			}
			return "", fmt.Errorf("%w: %s is a %s", ErrBadPath, c, e.kind())
		}
	}
	return c, nil
}

// refuse records a refused operation and returns err.
func (w *Workspace) refuse(op, agent, path string, token uint64, err error) error {
	w.stats.Refused++
	data := map[string]any{"op": op, "reason": err.Error()}
	if path != "" {
		data["path"] = path
	}
	if token != 0 {
		data["token"] = token
	}
	w.emit(EventLeaseRefused, agent, data)
	return err
}

func leaseData(l Lease) map[string]any {
	return map[string]any{"path": l.Path, "prefix": l.Prefix, "token": l.Token, "expires": l.Expires.UTC().Format(time.RFC3339Nano)}
}

// Acquire asks for a lease on path (a file, or with o.Prefix a
// directory). It returns the lease, or an error wrapping ErrLeaseHeld
// (held; with o.Wait, still held when the wait ended), ErrBadPath,
// ErrClosed or ctx's error. Waiters are served first come, first served.
func (w *Workspace) Acquire(ctx context.Context, agent, path string, o AcquireOptions) (Lease, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return Lease{}, ErrClosed
	}
	w.emit(EventLeaseRequested, agent, map[string]any{"path": path, "prefix": o.Prefix, "wait_ms": o.Wait.Milliseconds()})
	p, err := w.resolve(path, o.Prefix, true)
	if err != nil {
		err = w.refuse("acquire", agent, path, 0, err)
		w.mu.Unlock()
		return Lease{}, err
	}
	now := w.now()
	l, id, queued, err := w.table.Acquire(now, agent, p, o.Prefix, o.Wait)
	if err != nil {
		err = w.refuse("acquire", agent, p, 0, err)
		w.mu.Unlock()
		return Lease{}, err
	}
	if !queued {
		err = w.granted(l)
		w.mu.Unlock()
		w.poke()
		return l, err
	}
	ch := make(chan waitResult, 1)
	w.waiters[id] = waiter{agent: agent, path: p, ch: ch}
	w.mu.Unlock()
	w.poke()
	select {
	case r := <-ch:
		return r.lease, r.err
	case <-ctx.Done():
		w.mu.Lock()
		delete(w.waiters, id)
		w.table.Cancel(id)
		w.mu.Unlock()
		select {
		case r := <-ch: // granted as we gave up: give it back
			if r.err == nil {
				_, _ = w.Release(agent, r.lease.Token)
			}
		default:
		}
		return Lease{}, ctx.Err()
	}
}

// poke wakes the timer loop (the next deadline may have moved).
func (w *Workspace) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// granted applies a new grant: the holder's group may write its scope,
// the file's identity is remembered, and lease.granted is emitted. The
// caller holds w.mu.
func (w *Workspace) granted(l Lease) error {
	return w.grantedScrub(l, true)
}

// grantedScrub is granted, with scrub false for a scope the host made
// just now (Create).
func (w *Workspace) grantedScrub(l Lease, scrub bool) error {
	w.stats.Grants++
	if scrub {
		// A scope whose last holder expired or died may have been written
		// to since its restore (detect mode), or written by anyone while it
		// was free: set it right before anyone builds on it.
		w.scrubbing = l.Token
		w.scrub(l.Path, l.Prefix, "before a new grant")
		w.scrubbing = 0
	}
	if err := w.open(l); err != nil {
		w.log.Error("grant: cannot open the scope to its holder", "path", l.Path, "agent", l.Agent, "error", err)
	}
	if !l.Prefix {
		if e, err := w.tree.lstat(l.Path); err == nil && e.exists {
			w.ino[l.Token] = e.ino
		}
	}
	w.emit(EventLeaseGranted, l.Agent, leaseData(l))
	return nil
}

// open gives the holder's group write access to its scope (Permissions).
func (w *Workspace) open(l Lease) error {
	if w.cfg.Enforcement != Permissions {
		return nil
	}
	gid, ok := w.cfg.GroupOf(l.Agent)
	if !ok {
		return fmt.Errorf("no group for agent %s", l.Agent)
	}
	if !l.Prefix {
		return w.tree.chown(l.Path, 0, gid, 0o664)
	}
	return w.walk(l.Path, func(p string, e entry) error {
		if e.isDir() {
			return w.tree.chown(p, 0, gid, 0o775)
		}
		if e.isReg() {
			return w.tree.chown(p, 0, gid, 0o664)
		}
		return nil
	})
}

// walk calls f for root (a directory or file) and everything under it,
// parents first, never following links.
func (w *Workspace) walk(root string, f func(p string, e entry) error) error {
	e, err := w.tree.lstat(root)
	if err != nil || !e.exists {
		return err
	}
	if err := f(root, e); err != nil {
		return err
	}
	if !e.isDir() {
		return nil
	}
	names, err := w.tree.list(root)
	if err != nil {
		return err
	}
	sortPaths(names)
	for _, n := range names {
		if err := w.walk(join(root, n), f); err != nil {
			return err
		}
	}
	return nil
}

// Create makes a new empty file (dir false) or directory at path, leased
// to agent (a directory as a prefix lease). Missing parent directories are
// made (owned by the host). It fails with ErrExists when path exists and
// ErrLeaseHeld when an overlapping lease is held.
func (w *Workspace) Create(agent, path string, dir bool) (Lease, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return Lease{}, ErrClosed
	}
	w.emit(EventLeaseRequested, agent, map[string]any{"path": path, "prefix": dir, "create": true})
	p, err := w.resolve(path, dir, false)
	if err != nil {
		return Lease{}, w.refuse("create", agent, path, 0, err)
	}
	if e, err := w.tree.lstat(p); err == nil && e.exists {
		return Lease{}, w.refuse("create", agent, p, 0, fmt.Errorf("%w: %s (acquire it instead)", ErrExists, p))
	}
	l, _, _, err := w.table.Acquire(w.now(), agent, p, dir, 0)
	if err != nil {
		return Lease{}, w.refuse("create", agent, p, 0, err)
	}
	if err := w.makeParents(p); err != nil {
		w.table.Release(w.now(), agent, l.Token)
		return Lease{}, w.refuse("create", agent, p, 0, err)
	}
	if dir {
		err = w.tree.mkdir(p, 0, 0, 0o755)
		w.newDir(p)
	} else {
		_, err = w.tree.write(p, strings.NewReader(""), 0, 0, 0o644)
	}
	if err != nil {
		_, out, _ := w.table.Release(w.now(), agent, l.Token)
		w.deliver(out)
		return Lease{}, w.refuse("create", agent, p, 0, err)
	}
	if !dir {
		w.known[p] = fileState{sha: emptySHA}
	}
	w.grantedScrub(l, false)
	w.poke()
	return l, nil
}

// newDir records a directory the host made and watches it.
func (w *Workspace) newDir(p string) {
	w.dirs[p] = true
	if w.watch != nil {
		if err := w.watch.add(p); err != nil {
			w.log.Warn("watch directory", "path", p, "error", err)
		}
	}
}

var emptySHA = func() string { s := sha256.Sum256(nil); return hex.EncodeToString(s[:]) }()

func (w *Workspace) makeParents(p string) error {
	els := strings.Split(p, "/")
	for i := 1; i < len(els); i++ {
		d := strings.Join(els[:i], "/")
		e, err := w.tree.lstat(d)
		if err != nil {
			return err
		}
		if e.exists {
			continue
		}
		if err := w.tree.mkdir(d, 0, 0, 0o755); err != nil {
			return err
		}
		w.newDir(d)
	}
	return nil
}

// Renew moves a lease's expiry to now + TTL.
func (w *Workspace) Renew(agent string, token uint64) (Lease, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return Lease{}, ErrClosed
	}
	l, err := w.table.Renew(w.now(), agent, token)
	if err != nil {
		return Lease{}, w.refuse("renew", agent, "", token, err)
	}
	w.emit(EventLeaseRenewed, agent, leaseData(l))
	w.poke()
	return l, nil
}

// Commit declares the content of path (under the lease token; "" for the
// lease's own path) final: it becomes a new version, unless it is the
// latest version's content already (then that version is returned). sha,
// when given, must be the content's SHA-256 (hex), else ErrHashMismatch.
// For a directory prefix and path "" or the prefix itself, every changed
// file under it becomes a version (sha must be empty).
func (w *Workspace) Commit(agent string, token uint64, path, sha string) ([]Version, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	l, err := w.table.Lookup(agent, token)
	if err != nil {
		return nil, w.refuse("commit", agent, path, token, err)
	}
	p := l.Path
	if path != "" {
		if p, err = CleanPath(path); err != nil {
			return nil, w.refuse("commit", agent, path, token, err)
		}
		if !l.covers(p) {
			return nil, w.refuse("commit", agent, p, token, fmt.Errorf("%w: %s is not under the lease on %s", ErrBadPath, p, l.Path))
		}
	}
	var vs []Version
	if l.Prefix && p == l.Path {
		if sha != "" {
			return nil, w.refuse("commit", agent, p, token, fmt.Errorf("%w: a directory commit carries no sha256", ErrBadPath))
		}
		vs, err = w.commitScope(l, "commit")
	} else {
		var v Version
		var ok bool
		v, ok, err = w.commitFile(l, p, sha, "commit")
		if ok {
			vs = []Version{v}
		}
	}
	if err == nil && len(vs) == 0 {
		err = w.lostChange(l)
	}
	if err != nil {
		return vs, w.refuse("commit", agent, p, token, err)
	}
	if len(vs) > 0 {
		w.stats.Commits++
		delete(w.undone, token)
	}
	w.emitCommitted(l, p, vs, "commit")
	return vs, nil
}

// lostChange is ErrUndone when a change in l's scope was undone since its
// last commit that recorded a version (see undoReplace), else nil.
func (w *Workspace) lostChange(l Lease) error {
	shas := w.undone[l.Token]
	if len(shas) == 0 {
		return nil
	}
	return fmt.Errorf("%w: nothing new to record in %s, but %d change(s) made in it while you held it were undone (content kept: sha256:%s): "+
		"each replaced the file by renaming another file over it, which could not be told to be yours "+
		"(only a temporary file named <name>.tmp.<pid>.<...> with the pid of one of your processes is; the claude CLI's Write and Edit name theirs so). "+
		"Make the change again (writing the file in place works) and commit",
		ErrUndone, l.Path, len(shas), shas[len(shas)-1])
}

func (w *Workspace) emitCommitted(l Lease, p string, vs []Version, how string) {
	list := make([]map[string]any, 0, len(vs))
	for _, v := range vs {
		list = append(list, map[string]any{"path": v.Path, "version": v.N, "sha256": v.SHA256})
	}
	w.emit(EventFileCommitted, l.Agent, map[string]any{"path": p, "token": l.Token, "by": how, "versions": list})
}

// commitFile records p's current content as a version under l. ok is
// false when nothing new was recorded (the content is the latest version's).
func (w *Workspace) commitFile(l Lease, p, sha, reason string) (Version, bool, error) {
	e, err := w.tree.lstat(p)
	if err != nil {
		return Version{}, false, fmt.Errorf("%w: %v", ErrBadPath, err)
	}
	latest, has := w.store.Latest(p)
	if !e.exists {
		delete(w.known, p)
		if !has || latest.Deleted {
			if sha != "" {
				return Version{}, false, fmt.Errorf("%w: %s does not exist", ErrBadPath, p)
			}
			return Version{}, false, nil
		}
		v, err := w.addVersion(Version{Path: p, Deleted: true, Agent: l.Agent, Token: l.Token, Reason: reason})
		return v, err == nil, err
	}
	if !e.isReg() {
		w.planted(p, e)
		return Version{}, false, fmt.Errorf("%w: %s is a %s (removed)", ErrBadPath, p, e.kind())
	}
	if ino0, ok := w.ino[l.Token]; ok && !l.Prefix && ino0 != e.ino {
		// Replaced by a rename since the watcher last looked (see
		// checkFile): the holder's own change when the temporary file's
		// name says so, else undone; then what is there is committed only
		// if it is what the holder says it wrote (a commit that hashed the
		// intruder's content fails with ErrHashMismatch).
		if by, src := w.replacer(p, true); by == l.Agent {
			w.ino[l.Token] = e.ino
		} else {
			w.undoReplace(p, e, l, by, src)
			if e, err = w.tree.lstat(p); err != nil || !e.exists {
				return Version{}, false, fmt.Errorf("%w: %s: %v", ErrBadPath, p, err)
			}
		}
	}
	st, known := w.known[p]
	if !known || !st.unchanged(e) || !w.store.Has(st.sha) {
		if st, err = w.snapshot(p); err != nil {
			return Version{}, false, err
		}
	}
	if sha != "" && !strings.EqualFold(sha, st.sha) {
		return Version{}, false, fmt.Errorf("%w: %s has sha256 %s, not %s (it changed since you hashed it; its content is kept)", ErrHashMismatch, p, st.sha, sha)
	}
	if has && !latest.Deleted && latest.SHA256 == st.sha {
		return latest, false, nil
	}
	v, err := w.addVersion(Version{Path: p, SHA256: st.sha, Size: st.size, Agent: l.Agent, Token: l.Token, Reason: reason})
	return v, err == nil, err
}

// commitScope commits every changed file under a prefix lease.
func (w *Workspace) commitScope(l Lease, reason string) ([]Version, error) {
	w.batch = &[]Version{}
	vs, err := w.commitScopeBatch(l, reason)
	done, ferr := w.flush()
	if ferr != nil {
		return nil, ferr
	}
	_ = vs
	return done, err
}

func (w *Workspace) commitScopeBatch(l Lease, reason string) ([]Version, error) {
	var vs []Version
	seen := map[string]bool{}
	err := w.walk(l.Path, func(p string, e entry) error {
		switch {
		case e.isDir():
			w.dirs[p] = true
		case e.isReg() && tempName(filepath.Base(p)):
		case e.isReg():
			seen[p] = true
			v, ok, err := w.commitFile(l, p, "", reason)
			if err != nil {
				return err
			}
			if ok {
				vs = append(vs, v)
			}
		default:
			w.planted(p, e)
		}
		return nil
	})
	// Files removed under the prefix become deleted versions.
	for _, p := range w.store.Paths() {
		if within(p, l.Path) && !seen[p] {
			if v, ok, cerr := w.commitFile(l, p, "", reason); cerr == nil && ok {
				vs = append(vs, v)
			}
		}
	}
	return vs, err
}

// Release commits the lease's scope (a release is an implicit commit),
// ends the lease, takes the holder's access back and serves the waiters.
func (w *Workspace) Release(agent string, token uint64) ([]Version, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	l, err := w.table.Lookup(agent, token)
	if err != nil {
		return nil, w.refuse("release", agent, "", token, err)
	}
	var vs []Version
	if l.Prefix {
		vs, err = w.commitScope(l, "release")
	} else {
		var v Version
		var ok bool
		v, ok, err = w.commitFile(l, l.Path, "", "release")
		if ok {
			vs = append(vs, v)
		}
	}
	if err == nil && len(vs) == 0 {
		if lerr := w.lostChange(l); lerr != nil {
			// Released all the same: the error says what was lost.
			err = w.refuse("release", agent, l.Path, token, fmt.Errorf("the lease is released, but: %w", lerr))
		}
	}
	if err != nil {
		w.log.Warn("release: commit failed; restoring the last version", "path", l.Path, "error", err)
	}
	if len(vs) > 0 {
		w.stats.Commits++
		w.emitCommitted(l, l.Path, vs, "release")
	}
	_, out, _ := w.table.Release(w.now(), agent, token)
	delete(w.ino, token)
	delete(w.undone, token)
	w.revoke(l, "")
	w.emit(EventLeaseReleased, agent, map[string]any{"path": l.Path, "prefix": l.Prefix, "token": token, "versions": len(vs)})
	w.deliver(out)
	w.poke()
	return vs, err
}

// revoke takes a scope back from its holder: every file in it is
// rewritten as a new file owned by the host (so a descriptor the holder
// still has open writes to nothing), with the last committed content when
// reason is not "" (the uncommitted content is kept in the store and named
// in file.restored), and directories are given back to the host.
func (w *Workspace) revoke(l Lease, reason string) {
	paths := []string{}
	_ = w.walk(l.Path, func(p string, e entry) error {
		paths = append(paths, p)
		return nil
	})
	if l.Prefix {
		// Versioned files that were deleted are restored too.
		for _, p := range w.store.Paths() {
			if within(p, l.Path) {
				paths = append(paths, p)
			}
		}
	}
	done := map[string]bool{}
	for _, p := range paths {
		if done[p] {
			continue
		}
		done[p] = true
		e, err := w.tree.lstat(p)
		if err != nil {
			continue
		}
		switch {
		case e.exists && e.isDir():
			if err := w.tree.chown(p, 0, 0, 0o755); err != nil && w.cfg.Enforcement == Permissions {
				w.log.Error("revoke: chown directory", "path", p, "error", err)
			}
		case e.exists && !e.isReg():
			w.planted(p, e)
		case reason != "":
			w.restoreTo(p, reason, l.Agent, false)
		case e.exists && tempName(filepath.Base(p)):
			// a temporary file left in a released prefix: keep it, host-owned
			if err := w.tree.chown(p, 0, 0, 0o644); err != nil && w.cfg.Enforcement == Permissions {
				w.log.Error("revoke: chown", "path", p, "error", err)
			}
		case e.exists:
			w.reissue(p)
		}
	}
}

// reissue rewrites p (committed just now) as a new host-owned file with
// the same content.
func (w *Workspace) reissue(p string) {
	if w.cfg.Enforcement != Permissions {
		return // same user: there is nothing to take back
	}
	v, ok := w.store.Latest(p)
	if !ok || v.Deleted {
		return
	}
	if err := w.writeVersion(p, v); err != nil {
		w.log.Error("revoke: rewrite", "path", p, "error", err)
	}
}

func (w *Workspace) writeVersion(p string, v Version) error {
	f, err := w.store.Open(v.SHA256)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := w.makeParents(p); err != nil {
		return err
	}
	e, err := w.tree.write(p, f, 0, 0, 0o644)
	if err != nil {
		return err
	}
	w.known[p] = w.state(v.SHA256, e)
	return nil
}

// restoreTo puts p back to its last committed version (or removes it when
// it has none), keeping what was there in the store. It returns whether
// anything changed. The caller holds w.mu.
func (w *Workspace) restoreTo(p, reason, agent string, always bool) bool {
	e, err := w.tree.lstat(p)
	if err != nil {
		w.log.Error("restore", "path", p, "error", err)
		return false
	}
	var cur string
	if e.exists && e.isReg() {
		if st, err := w.snapshot(p); err == nil {
			cur = st.sha
		}
	}
	v, has := w.store.Latest(p)
	data := map[string]any{"path": p, "reason": reason}
	if cur != "" {
		data["replaced_sha256"] = cur // kept in the store
	}
	switch {
	case has && !v.Deleted:
		if cur == v.SHA256 && !always {
			if w.cfg.Enforcement == Permissions && (e.uid != 0 || e.gid != 0) {
				w.reissue(p)
			}
			return false
		}
		if err := w.writeVersion(p, v); err != nil {
			w.log.Error("restore", "path", p, "error", err)
			return false
		}
		data["version"], data["sha256"] = v.N, v.SHA256
	default:
		if !e.exists {
			return false
		}
		if err := w.tree.removeAll(p); err != nil {
			w.log.Error("restore: remove", "path", p, "error", err)
			return false
		}
		delete(w.known, p)
		data["removed"] = true
	}
	w.stats.Restored++
	w.emit(EventFileRestored, agent, data)
	return true
}

// planted removes a symlink, FIFO, socket or device from the tree.
func (w *Workspace) planted(p string, e entry) {
	data := map[string]any{"path": p, "reason": "a " + e.kind() + " in the shared tree (only regular files and directories are allowed)", "type": e.kind()}
	if e.isLink() {
		data["target"] = w.tree.readlink(p)
	}
	if a := w.cfg.AgentOfUID(e.uid); a != "" {
		data["owner"] = a
	}
	w.stats.Violations++
	w.emit(EventViolation, w.cfg.AgentOfUID(e.uid), data)
	if err := w.tree.remove(p, false); err != nil {
		w.log.Error("remove planted file", "path", p, "error", err)
		return
	}
	w.restoreTo(p, "a planted "+e.kind()+" was removed", "", false)
}

// AgentGone revokes every lease of an agent whose process has exited: its
// scopes are restored to their last committed versions and blocked for the
// lock delay; its waiting requests are dropped.
func (w *Workspace) AgentGone(agent string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	revoked, dropped, out := w.table.Dead(w.now(), agent)
	for _, id := range dropped {
		if wt, ok := w.waiters[id]; ok {
			wt.ch <- waitResult{err: fmt.Errorf("%w: the agent exited", ErrClosed)}
			delete(w.waiters, id)
		}
	}
	for _, l := range revoked {
		delete(w.ino, l.Token)
		delete(w.undone, l.Token)
		w.stats.Expired++
		w.emit(EventLeaseExpired, agent, map[string]any{"path": l.Path, "prefix": l.Prefix, "token": l.Token, "reason": "holder exited", "lock_delay_ms": w.cfg.LockDelay.Milliseconds()})
		w.revoke(l, "its holder exited before committing")
	}
	w.deliver(out)
	w.poke()
}

// deliver hands grants and timeouts to their waiters. The caller holds w.mu.
func (w *Workspace) deliver(out Outcome) {
	for _, l := range out.Expired {
		delete(w.ino, l.Token)
		delete(w.undone, l.Token)
		w.stats.Expired++
		w.emit(EventLeaseExpired, l.Agent, map[string]any{"path": l.Path, "prefix": l.Prefix, "token": l.Token, "reason": "not renewed within its ttl", "lock_delay_ms": w.cfg.LockDelay.Milliseconds()})
		w.revoke(l, "its lease expired before a commit")
	}
	for _, id := range out.TimedOut {
		if wt, ok := w.waiters[id]; ok {
			wt.ch <- waitResult{err: w.refuse("acquire", wt.agent, wt.path, 0, fmt.Errorf("%w: %s was still held when the wait ended", ErrLeaseHeld, wt.path))}
			delete(w.waiters, id)
		}
	}
	// Grant in token order (the table issued them in arrival order).
	ls := make([]Lease, 0, len(out.Granted))
	ids := map[uint64]uint64{}
	for id, l := range out.Granted {
		ls = append(ls, l)
		ids[l.Token] = id
	}
	sortLeases(ls)
	for _, l := range ls {
		w.granted(l)
		if wt, ok := w.waiters[ids[l.Token]]; ok {
			wt.ch <- waitResult{lease: l}
			delete(w.waiters, ids[l.Token])
		}
	}
}

// scrub puts every file in a scope back to its last committed version,
// reporting what was wrong as violations (writes made after the lease
// ended).
func (w *Workspace) scrub(root string, prefix bool, why string) {
	if !prefix {
		w.check(root, why)
		return
	}
	_ = w.walk(root, func(p string, e entry) error {
		if p != root {
			w.check(p, why)
		}
		return nil
	})
}

// PauseWatcher stops the watcher's reader until resume is called: a test
// hook to make the kernel's event queue overflow.
func (w *Workspace) PauseWatcher() (resume func()) {
	w.mu.Lock()
	wt := w.watch
	w.mu.Unlock()
	if wt == nil {
		return func() {}
	}
	return wt.pause()
}
