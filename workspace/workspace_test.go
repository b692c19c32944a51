package workspace_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/workspace"
	"github.com/terrarium-sim/terrarium/workspace/wstest"
)

func detectEnv(t *testing.T) *wstest.Env {
	t.Helper()
	return wstest.Start(t, wstest.Config{Enforcement: workspace.Detect, Debounce: 10 * time.Millisecond, Reconcile: time.Hour, TTL: time.Minute, LockDelay: time.Millisecond})
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSymlinksAreRefusedAndRemoved(t *testing.T) {
	env := detectEnv(t)
	resume := env.WS.PauseWatcher() // so the link is still there when acquired
	if err := os.Symlink("/etc", filepath.Join(env.Shared, "etc")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"etc/passwd", "etc"} {
		_, err := env.WS.Acquire(context.Background(), "a", p, workspace.AcquireOptions{Prefix: p == "etc"})
		if !errors.Is(err, workspace.ErrBadPath) || !strings.Contains(err.Error(), "symlink") {
			t.Errorf("acquire %s: %v, want ErrBadPath naming the symlink", p, err)
		}
	}
	resume()
	if !env.WaitFor(10*time.Second, func() bool {
		_, err := os.Lstat(filepath.Join(env.Shared, "etc"))
		return os.IsNotExist(err)
	}) {
		t.Fatal("the planted symlink was not removed")
	}
	vs := env.Events(workspace.EventViolation)
	if len(vs) != 1 || vs[0].Data["type"] != "symlink" || vs[0].Data["target"] != "/etc" {
		t.Errorf("violations %v", vs)
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Errorf("/etc/passwd: %v", err)
	}
}

func TestFIFOIsAViolation(t *testing.T) {
	env := detectEnv(t)
	p := filepath.Join(env.Shared, "pipe")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if !env.WaitFor(10*time.Second, func() bool { _, err := os.Lstat(p); return os.IsNotExist(err) }) {
		t.Fatal("the FIFO was not removed (did the host block opening it?)")
	}
	if vs := env.Events(workspace.EventViolation); len(vs) != 1 || vs[0].Data["type"] != "fifo" {
		t.Errorf("violations %v", vs)
	}
}

func TestUnleasedWriteIsRestoredAndKept(t *testing.T) {
	env := detectEnv(t)
	ctx := context.Background()
	l, err := env.WS.Create("a", "plan.md", false)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(env.Shared, "plan.md")
	write(t, p, "good\n")
	if _, err := env.WS.Release("a", l.Token); err != nil {
		t.Fatal(err)
	}
	write(t, p, "evil\n")
	if !env.WaitFor(10*time.Second, func() bool { b, _ := os.ReadFile(p); return string(b) == "good\n" }) {
		t.Fatal("not restored")
	}
	vs := env.Events(workspace.EventViolation)
	if len(vs) != 1 {
		t.Fatalf("violations %v", vs)
	}
	// The intruder's content is kept too.
	f, err := workspace.OpenBlob(filepath.Join(env.Dir, "versions"), vs[0].Data["sha256"].(string))
	if err != nil {
		t.Fatalf("the overwritten content is not in the store: %v", err)
	}
	f.Close()
	// A commit carrying the wrong hash records nothing.
	l, err = env.WS.Acquire(ctx, "a", "plan.md", workspace.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	write(t, p, "better\n")
	if _, err := env.WS.Commit("a", l.Token, "", strings.Repeat("0", 64)); !errors.Is(err, workspace.ErrHashMismatch) {
		t.Errorf("commit with a wrong hash: %v", err)
	}
	if n := len(env.WS.Store().Log("plan.md")); n != 1 {
		t.Errorf("%d versions after a refused commit, want 1", n)
	}
	// Stale tokens are refused.
	if _, err := env.WS.Release("a", l.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := env.WS.Commit("a", l.Token, "", ""); !errors.Is(err, workspace.ErrStaleToken) {
		t.Errorf("commit after release: %v", err)
	}
	if n := len(env.WS.Store().Log("plan.md")); n != 2 {
		t.Errorf("%d versions after the release, want 2", n)
	}
}

func TestWaitersAreServedInOrder(t *testing.T) {
	env := detectEnv(t)
	ctx := context.Background()
	l, err := env.WS.Create("a", "x", false)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 3)
	for _, who := range []string{"b", "c", "d"} {
		go func() {
			l, err := env.WS.Acquire(ctx, who, "x", workspace.AcquireOptions{Wait: time.Minute})
			if err != nil {
				got <- "error " + err.Error()
				return
			}
			got <- who
			env.WS.Release(who, l.Token)
		}()
		// each is queued before the next asks
		if !env.WaitFor(10*time.Second, func() bool {
			n := 0
			for _, e := range env.Events(workspace.EventLeaseRequested) {
				if e.Agent == who {
					n++
				}
			}
			return n == 1
		}) {
			t.Fatal("no request")
		}
		time.Sleep(5 * time.Millisecond) // the request is queued after its event
	}
	env.WS.Release("a", l.Token)
	var order []string
	for i := 0; i < 3; i++ {
		order = append(order, <-got)
	}
	if strings.Join(order, ",") != "b,c,d" {
		t.Errorf("served %v, want b,c,d", order)
	}
}

func TestStoreIgnoresAPartialLastLine(t *testing.T) {
	dir := t.TempDir()
	s, err := workspace.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	sum, n, _ := s.Put(strings.NewReader("a"))
	if _, err := s.Add(workspace.Version{Path: "a", SHA256: sum, Size: n, Reason: "commit"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	f, _ := os.OpenFile(filepath.Join(dir, "log.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"path":"a","vers`) // a crash mid-write
	f.Close()
	vs, err := workspace.ReadLog(dir)
	if err != nil || len(vs) != 1 {
		t.Fatalf("ReadLog: %v, %v", vs, err)
	}
}
