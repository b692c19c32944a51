package terrarium_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/world"
)

// Test agents for the lease cases (leases_test.go). Each plays the turns
// world: at the ticks of its script it does one step in the shared tree,
// then answers; it says done after its last step. Lockstep makes a step at
// tick t happen before every step at tick t+1, whichever agent takes it.
// Each writes what it saw to report.json in its private directory after
// every step, for the test to read after the run.

// report is what a test agent saw.
type report struct {
	mu sync.Mutex
	m  map[string]any
	a  *sdk.Agent
}

func (r *report) set(k string, v any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err, ok := v.(error); ok {
		v = errString(err)
	}
	r.m[k] = v
	b, _ := json.Marshal(r.m)
	_ = os.WriteFile(filepath.Join(r.a.Workspace(), "report.json"), b, 0o600)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// errKind names an error for reports: "ok", "EACCES", "stale_token", ...
func errKind(err error) string {
	var le *sdk.LeaseError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &le):
		return le.Code
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "EACCES"
	}
	return "error: " + err.Error()
}

type stepFunc func(ctx context.Context, a *sdk.Agent, r *report) error

// scripted runs steps at their ticks; done is true once every step ran and
// finished returns true (nil: at once).
func scripted(steps map[world.Tick]stepFunc, finished func() bool) builtin.Program {
	return func(ctx context.Context, a *sdk.Agent) error {
		r := &report{m: map[string]any{}, a: a}
		var last world.Tick
		for t := range steps {
			last = max(last, t)
		}
		return serve(ctx, a, func(obs sdk.Observation) error {
			if s := steps[obs.Tick]; s != nil {
				if err := s(ctx, a, r); err != nil {
					r.set(fmt.Sprintf("error@%d", obs.Tick), err)
				}
			}
			done := obs.Tick >= last && (finished == nil || finished())
			if !done && obs.Tick >= last {
				// waiting for something in the background: do not let the
				// ticks (and the world's rounds) fly by meanwhile
				time.Sleep(5 * time.Millisecond)
			}
			return a.Act(obs.Tick, map[string]any{"done": done})
		})
	}
}

func shared(a *sdk.Agent, rel string) string { return filepath.Join(a.Shared(), rel) }

// writeInPlace rewrites a file without replacing it (truncate + write).
func writeInPlace(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o664)
}

// commitContent commits what was written, by its hash.
func commitContent(ctx context.Context, a *sdk.Agent, tok uint64, content string) error {
	_, err := a.Commit(ctx, tok, "", sdk.HashBytes([]byte(content)))
	return err
}

// waitContent polls path until it holds want (the host restored it).
func waitContent(path, want string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && string(b) == want {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

var (
	tokMu  sync.Mutex
	tokens = map[string]uint64{} // per process: an agent's own tokens between its steps
)

func keep(name string, tok uint64) { tokMu.Lock(); tokens[name] = tok; tokMu.Unlock() }
func token(name string) uint64     { tokMu.Lock(); defer tokMu.Unlock(); return tokens[name] }

// async runs f in the background (a waiting acquire must not hold up the
// tick); finished reports when it returned.
type async struct {
	once sync.Once
	done chan struct{}
}

func newAsync() *async { return &async{done: make(chan struct{})} }
func (x *async) start(f func()) {
	x.once.Do(func() {
		go func() { defer close(x.done); f() }()
	})
}
func (x *async) finished() bool {
	select {
	case <-x.done:
		return true
	default:
		return false
	}
}

func init() {
	// Case 1: a holds plan.md; b replaces it three times in a row.
	builtin.Register("lease_case1_holder", scripted(map[world.Tick]stepFunc{
		1: func(ctx context.Context, a *sdk.Agent, r *report) error {
			l, err := a.Acquire(ctx, "plan.md", sdk.AcquireOptions{})
			if err != nil {
				return err
			}
			keep("plan", l.Token)
			if err := writeInPlace(shared(a, "plan.md"), "A1\n"); err != nil {
				return err
			}
			r.set("commit1", errKind(commitContent(ctx, a, l.Token, "A1\n")))
			return nil
		},
		5: func(ctx context.Context, a *sdk.Agent, r *report) error {
			tok := token("plan")
			if err := writeInPlace(shared(a, "plan.md"), "A2\n"); err != nil {
				r.set("write2", errKind(err))
				return err
			}
			r.set("commit2", errKind(commitContent(ctx, a, tok, "A2\n")))
			_, err := a.Release(ctx, tok)
			r.set("release", errKind(err))
			return nil
		},
	}, nil))
	replace := func(n int) stepFunc {
		return func(ctx context.Context, a *sdk.Agent, r *report) error {
			p := shared(a, "plan.md")
			err := os.WriteFile(p+".tmp", []byte("B\n"), 0o644)
			if err == nil {
				err = os.Rename(p+".tmp", p)
			}
			r.set(fmt.Sprintf("attempt%d", n), errKind(err))
			if err == nil {
				// not prevented: the host must detect it and put A's content back
				r.set(fmt.Sprintf("restored%d", n), waitContent(p, "A1\n", 10*time.Second))
			}
			return nil
		}
	}
	builtin.Register("lease_case1_replacer", scripted(map[world.Tick]stepFunc{2: replace(1), 3: replace(2), 4: replace(3)}, nil))

	// Case 3: truncate, then write, then commit.
	builtin.Register("lease_case3", scripted(map[world.Tick]stepFunc{
		1: func(ctx context.Context, a *sdk.Agent, r *report) error {
			l, err := a.Acquire(ctx, "data.json", sdk.AcquireOptions{})
			if err != nil {
				return err
			}
			f, err := os.OpenFile(shared(a, "data.json"), os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				r.set("open", errKind(err))
				return err
			}
			time.Sleep(150 * time.Millisecond) // the empty file settles: the watcher sees it
			content := `{"answer": 42, "by": "` + a.ID() + `"}` + "\n"
			_, err = f.WriteString(content)
			f.Close()
			if err != nil {
				return err
			}
			r.set("commit", errKind(commitContent(ctx, a, l.Token, content)))
			_, err = a.Release(ctx, l.Token)
			r.set("release", errKind(err))
			return nil
		},
	}, nil))

	// Case 4: mkdir -p a/b/c && echo hi > a/b/c/x in a held prefix, commit.
	builtin.Register("lease_case4", scripted(map[world.Tick]stepFunc{
		1: func(ctx context.Context, a *sdk.Agent, r *report) error {
			l, err := a.Acquire(ctx, "notes", sdk.AcquireOptions{Prefix: true})
			if err != nil {
				return err
			}
			cmd := exec.Command("/bin/sh", "-c", "mkdir -p a/b/c && echo hi > a/b/c/x")
			cmd.Dir = shared(a, "notes")
			out, err := cmd.CombinedOutput()
			r.set("shell", strings.TrimSpace(string(out))+errString(err))
			if err != nil {
				return err
			}
			vs, err := a.Commit(ctx, l.Token, "", "")
			r.set("commit", errKind(err))
			var paths []string
			for _, v := range vs {
				paths = append(paths, v.Path)
			}
			r.set("committed", paths)
			_, err = a.Release(ctx, l.Token)
			r.set("release", errKind(err))
			return nil
		},
	}, nil))

	// Case 5: six agents edit their own section of one file at once.
	builtin.Register("lease_case5", scripted(map[world.Tick]stepFunc{
		1: func(ctx context.Context, a *sdk.Agent, r *report) error {
			edit := "edited by " + a.ID()
			err := editSection(ctx, a, "sections.md", a.ID(), edit)
			r.set("edit", errKind(err))
			return nil
		},
	}, nil))

	// Case 6: the holder is paused (SIGSTOP by the test) and stops renewing.
	renewing := newAsync()
	builtin.Register("lease_case6_holder", scripted(map[world.Tick]stepFunc{
		1: func(ctx context.Context, a *sdk.Agent, r *report) error {
			l, err := a.Acquire(ctx, "plan.md", sdk.AcquireOptions{})
			if err != nil {
				return err
			}
			keep("plan", l.Token)
			if err := writeInPlace(shared(a, "plan.md"), "A1\n"); err != nil {
				return err
			}
			r.set("commit1", errKind(commitContent(ctx, a, l.Token, "A1\n")))
			renewing.start(func() { // renews as a live holder does, until paused
				for ctx.Err() == nil {
					time.Sleep(100 * time.Millisecond)
					if _, err := a.Renew(ctx, l.Token); err != nil {
						return
					}
				}
			})
			return nil
		},
		2: func(ctx context.Context, a *sdk.Agent, r *report) error {
			// Wait until a pause longer than the TTL is seen (the test
			// stops this process with SIGSTOP, later SIGCONT).
			deadline := time.Now().Add(90 * time.Second)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				time.Sleep(20 * time.Millisecond)
				if time.Since(t0) > 1500*time.Millisecond {
					r.set("paused", true)
					break
				}
			}
			tok := token("plan")
			r.set("late_commit", errKind(commitContent(ctx, a, tok, "A-late\n")))
			r.set("late_write", errKind(writeInPlace(shared(a, "plan.md"), "A-late\n")))
			return nil
		},
	}, nil))
	waiter6 := newAsync()
	builtin.Register("lease_case6_waiter", scripted(map[world.Tick]stepFunc{
		2: func(ctx context.Context, a *sdk.Agent, r *report) error {
			waiter6.start(func() {
				l, err := a.Acquire(ctx, "plan.md", sdk.AcquireOptions{Wait: 60 * time.Second})
				r.set("acquire", errKind(err))
				if err != nil {
					return
				}
				b, _ := os.ReadFile(shared(a, "plan.md"))
				r.set("found", string(b))
				if err := writeInPlace(shared(a, "plan.md"), "B1\n"); err != nil {
					r.set("write", errKind(err))
					return
				}
				r.set("commit", errKind(commitContent(ctx, a, l.Token, "B1\n")))
				_, err = a.Release(ctx, l.Token)
				r.set("release", errKind(err))
			})
			return nil
		},
	}, waiter6.finished))

	// Case 7: the holder is killed mid-edit.
	builtin.Register("lease_case7_holder", scripted(map[world.Tick]stepFunc{
		1: func(ctx context.Context, a *sdk.Agent, r *report) error {
			l, err := a.Acquire(ctx, "plan.md", sdk.AcquireOptions{})
			if err != nil {
				return err
			}
			if err := writeInPlace(shared(a, "plan.md"), "A1\n"); err != nil {
				return err
			}
			r.set("commit1", errKind(commitContent(ctx, a, l.Token, "A1\n")))
			return nil
		},
		3: func(ctx context.Context, a *sdk.Agent, r *report) error {
			f, err := os.OpenFile(shared(a, "plan.md"), os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				return err
			}
			_, _ = f.WriteString("A2, half writ") // mid-edit
			r.set("killing", true)
			return syscall.Kill(os.Getpid(), syscall.SIGKILL)
		},
	}, nil))
	waiter7 := newAsync()
	builtin.Register("lease_case7_waiter", scripted(map[world.Tick]stepFunc{
		2: func(ctx context.Context, a *sdk.Agent, r *report) error {
			waiter7.start(func() {
				l, err := a.Acquire(ctx, "plan.md", sdk.AcquireOptions{Wait: 60 * time.Second})
				r.set("acquire", errKind(err))
				if err != nil {
					return
				}
				b, _ := os.ReadFile(shared(a, "plan.md"))
				r.set("found", string(b))
				_, err = a.Release(ctx, l.Token)
				r.set("release", errKind(err))
			})
			return nil
		},
	}, waiter7.finished))

	// Case 8: escapes.
	builtin.Register("lease_case8_owner", scripted(map[world.Tick]stepFunc{
		1: func(ctx context.Context, a *sdk.Agent, r *report) error {
			return os.WriteFile(filepath.Join(a.Workspace(), "notes"), []byte("private\n"), 0o600)
		},
	}, nil))
	builtin.Register("lease_case8_prober", scripted(map[world.Tick]stepFunc{
		2: func(ctx context.Context, a *sdk.Agent, r *report) error {
			other := filepath.Join(a.Workspace(), "..", "owner")
			_, err := os.ReadFile(filepath.Join(other, "notes"))
			r.set("read_other", errKind(err))
			_, err = os.ReadDir(other)
			r.set("list_other", errKind(err))
			_, err = a.Acquire(ctx, "../agents/owner/notes", sdk.AcquireOptions{})
			r.set("acquire_dotdot", errKind(err))
			r.set("acquire_dotdot_reason", errString(err))
			_, err = a.Acquire(ctx, filepath.Join(a.Workspace(), "..", "owner", "notes"), sdk.AcquireOptions{})
			r.set("acquire_abs", errKind(err))
			l, err := a.Create(ctx, "cdir", true)
			if err != nil {
				return err
			}
			r.set("symlink", errKind(os.Symlink("/etc", shared(a, "cdir/etc"))))
			_, err = a.Acquire(ctx, "cdir/etc/passwd", sdk.AcquireOptions{})
			r.set("acquire_link_file", errKind(err))
			r.set("acquire_link_file_reason", errString(err))
			_, err = a.Acquire(ctx, "cdir/etc", sdk.AcquireOptions{Prefix: true})
			r.set("acquire_link_dir", errKind(err))
			_, err = a.Release(ctx, l.Token)
			r.set("release", errKind(err))
			return nil
		},
	}, nil))
}

// editSection replaces the line after "## <section>" in a shared file
// under its lease, waiting for it.
func editSection(ctx context.Context, a *sdk.Agent, rel, section, text string) error {
	l, err := a.Acquire(ctx, rel, sdk.AcquireOptions{Wait: 60 * time.Second})
	if err != nil {
		return err
	}
	p := shared(a, rel)
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	found := false
	for i := range lines {
		if lines[i] == "## "+section && i+1 < len(lines) {
			lines[i+1] = text
			found = true
		}
	}
	if !found {
		_, _ = a.Release(ctx, l.Token)
		return fmt.Errorf("no section %s", section)
	}
	content := strings.Join(lines, "\n")
	if err := writeInPlace(p, content); err != nil {
		return err
	}
	if err := commitContent(ctx, a, l.Token, content); err != nil {
		return err
	}
	_, err = a.Release(ctx, l.Token)
	return err
}

// Case 2 over the bus: each agent makes 1,000 files in its own directory
// and, under a directory lease it creates through the SDK (the bus), 200 in
// the shared tree, then releases it; it reports how many versions the
// release recorded.
func init() {
	builtin.Register("lease_case2_bus", scripted(map[world.Tick]stepFunc{
		1: func(ctx context.Context, a *sdk.Agent, r *report) error {
			priv := filepath.Join(a.Workspace(), "priv")
			if err := os.MkdirAll(priv, 0o700); err != nil {
				return err
			}
			for i := 0; i < 1000; i++ {
				if err := os.WriteFile(filepath.Join(priv, fmt.Sprintf("p%04d.txt", i)), []byte("private\n"), 0o600); err != nil {
					return err
				}
			}
			dir := "d-" + a.ID()
			l, err := a.Create(ctx, dir, true)
			if err != nil {
				return err
			}
			for i := 0; i < 200; i++ {
				p := filepath.Join(a.Shared(), dir, fmt.Sprintf("s%03d.txt", i))
				if err := os.WriteFile(p, []byte(dir+"/"+strconv.Itoa(i)+"\n"), 0o664); err != nil {
					return err
				}
			}
			// Twenty releases of 200 files each reach the host at about the
			// same time, with the watcher busy with 4,000 new files: on a
			// loaded machine (and race-built) one may wait longer than the
			// SDK's default request timeout.
			rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			vs, err := a.Release(rctx, l.Token)
			r.set("released", len(vs))
			return err
		},
	}, nil))
}
