package workspace

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// watcher turns fsnotify events on the shared tree into settled changes:
// a path is reported once no event touched it for the debounce interval.
// It watches directories, not files; a new directory is watched and then
// rescanned (files made before the watch existed are not missed); a queue
// overflow asks for a full rescan. Chmod events are ignored: the host's own
// ownership and mode changes are not changes of content.
type watcher struct {
	root     string // absolute shared tree
	fw       *fsnotify.Watcher
	log      hclog.Logger
	debounce time.Duration

	changed  func(rel string) // a settled change of rel (file or directory)
	overflow func()           // the kernel queue overflowed: rescan everything

	mu      sync.Mutex
	due     map[string]time.Time
	from    map[string]renamed       // path -> the file last renamed over it
	marks   map[string]chan struct{} // barrier markers the reader has yet to see
	pauseMu sync.Mutex               // held while paused: the reader stops reading
	paused  bool
	seq     atomic.Uint64 // barrier marker names
}

// renamed is a rename over a path, as the watcher saw it.
type renamed struct {
	src string // the tree path renamed over it
	at  time.Time
}

// renamedKeep is how long the watcher remembers what was renamed over a
// path, for the check that attributes the change (barrierName files and
// the host's own restores are not remembered).
const renamedKeep = time.Minute

// barrierPrefix starts the names of the marker files of barrier.
const barrierPrefix = ".terrarium-barrier-"

func newWatcher(root string, debounce time.Duration, log hclog.Logger, changed func(string), overflow func()) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return &watcher{root: root, fw: fw, log: log, debounce: debounce, changed: changed, overflow: overflow,
		due: map[string]time.Time{}, from: map[string]renamed{}, marks: map[string]chan struct{}{}}, nil
}

// add watches directory rel ("" for the root).
func (w *watcher) add(rel string) error {
	p := w.root
	if rel != "" {
		p = filepath.Join(w.root, filepath.FromSlash(rel))
	}
	return w.fw.Add(p)
}

// rel turns an event's path into a tree path ("" for the root itself).
func (w *watcher) rel(name string) (string, bool) {
	if name == w.root {
		return "", true
	}
	r, ok := strings.CutPrefix(name, w.root+"/")
	return filepath.ToSlash(r), ok
}

// pause stops reading events until the returned function is called (a
// test hook: the kernel queue then fills and overflows).
func (w *watcher) pause() func() {
	w.pauseMu.Lock()
	w.mu.Lock()
	w.paused = true
	w.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			w.paused = false
			w.mu.Unlock()
			w.pauseMu.Unlock()
		})
	}
}

// run reads events until ctx is done, then closes the fsnotify watcher.
func (w *watcher) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.settle(ctx)
	}()
	defer func() {
		w.fw.Close()
		wg.Wait()
	}()
	for {
		// The pause hook: blocking here stops the reader.
		w.pauseMu.Lock()
		w.pauseMu.Unlock() //nolint:staticcheck // an intentional barrier
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			r, ok := w.rel(ev.Name)
			if !ok || r == "" {
				continue
			}
			now := time.Now()
			w.mu.Lock()
			if strings.HasPrefix(r, barrierPrefix) {
				if ch := w.marks[r]; ch != nil {
					close(ch)
					delete(w.marks, r)
				}
				w.mu.Unlock()
				continue
			}
			w.due[r] = now.Add(w.debounce)
			if src, ok := renamedFrom(ev); ok && ev.Has(fsnotify.Create) {
				if sr, ok := w.rel(src); ok && !strings.HasPrefix(filepath.Base(sr), ".terrarium-") {
					w.remember(r, renamed{src: sr, at: now})
				}
			}
			w.mu.Unlock()
		case err, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.log.Warn("watcher queue overflowed: rescanning the shared tree")
				w.overflow()
				continue
			}
			w.log.Warn("watcher error", "error", err)
		}
	}
}

// renamedFrom is the old name of a rename event's new name. fsnotify
// pairs the two (by the inotify cookie) but keeps the old name to its
// String form only: `CREATE "new" ← "old"` (fsnotify 1.8 and later).
func renamedFrom(ev fsnotify.Event) (string, bool) {
	_, q, ok := strings.Cut(ev.String(), " ← ")
	if !ok {
		return "", false
	}
	src, err := strconv.Unquote(q)
	return src, err == nil
}

// remember records that r.src was renamed over p; the caller holds w.mu.
func (w *watcher) remember(p string, r renamed) {
	if len(w.from) >= 256 {
		for q, old := range w.from {
			if r.at.Sub(old.at) > renamedKeep {
				delete(w.from, q)
			}
		}
	}
	w.from[p] = r
}

// takeRenamed returns, and forgets, what was last renamed over p (within
// renamedKeep).
func (w *watcher) takeRenamed(p string) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.from[p]
	delete(w.from, p)
	if !ok || time.Since(r.at) > renamedKeep {
		return "", false
	}
	return r.src, true
}

// barrier returns once the reader has read every event the kernel queued
// before the call: it makes and removes a marker file at the tree's root
// (rootFD) and waits (at most d) for the reader to see it, as inotify
// delivers events in order. It reports whether the reader got there. (The
// reader may itself be waiting for the workspace's lock, which the caller
// holds, in an overflow's rescan: then the wait ends after d, and what the
// caller wanted to know stays unknown.)
func (w *watcher) barrier(rootFD int, d time.Duration) bool {
	name := fmt.Sprintf("%s%d.tmp", barrierPrefix, w.seq.Add(1))
	ch := make(chan struct{})
	w.mu.Lock()
	w.marks[name] = ch
	w.mu.Unlock()
	forget := func() {
		w.mu.Lock()
		delete(w.marks, name)
		w.mu.Unlock()
	}
	fd, err := unix.Openat(rootFD, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		forget()
		return false
	}
	unix.Close(fd)
	_ = unix.Unlinkat(rootFD, name, 0)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		forget()
		return false
	}
}

// settle reports paths whose last event is older than the debounce
// interval.
func (w *watcher) settle(ctx context.Context) {
	step := w.debounce / 2
	if step < time.Millisecond {
		step = time.Millisecond
	}
	t := time.NewTicker(step)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			var ready []string
			w.mu.Lock()
			for p, at := range w.due {
				if !now.Before(at) {
					ready = append(ready, p)
					delete(w.due, p)
				}
			}
			w.mu.Unlock()
			sortPaths(ready)
			for _, p := range ready {
				w.changed(p)
			}
		}
	}
}

// pending reports whether changes are waiting to settle.
func (w *watcher) pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.due)
}

// sortPaths orders paths so a directory comes before what is in it.
func sortPaths(ps []string) { sort.Strings(ps) }
