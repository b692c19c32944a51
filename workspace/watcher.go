package workspace

import (
	"context"
	"errors"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"
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
	pauseMu sync.Mutex // held while paused: the reader stops reading
	paused  bool
}

func newWatcher(root string, debounce time.Duration, log hclog.Logger, changed func(string), overflow func()) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return &watcher{root: root, fw: fw, log: log, debounce: debounce, changed: changed, overflow: overflow, due: map[string]time.Time{}}, nil
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
			w.mu.Lock()
			w.due[r] = time.Now().Add(w.debounce)
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
