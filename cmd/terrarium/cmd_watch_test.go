package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/observe"
)

// waitFor polls cond until it holds, failing after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Case 4 of issue 4: watch on a live run whose host is killed exits with a
// clear message; watch on that run directory afterwards replays it; runs
// lists it as abandoned.
func TestWatchLiveRunWhoseHostIsKilled(t *testing.T) {
	dir := t.TempDir()
	scenario := filepath.Join(dir, "long.hcl")
	if err := os.WriteFile(scenario, []byte(`
scenario "long" { ticks = 1000000 }
world "repeated_game" { rounds = 1000000 }
agent "tft" {
  runtime = "builtin"
  command = "tit_for_tat"
}
agent "alt" {
  runtime = "builtin"
  command = "alternator"
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := filepath.Join(dir, "runs")
	runDir := filepath.Join(runs, "r1")
	host, _, _ := cli(t, "run", "--quiet", "--out", runDir, scenario)
	hostErr := &syncBuffer{}
	host.Stderr = hostErr
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Process.Kill(); _ = host.Wait() })
	waitFor(t, "observer.json", func() bool {
		_, err := os.Stat(filepath.Join(runDir, observe.InfoFile))
		return err == nil
	})
	if fi, err := os.Stat(filepath.Join(runDir, observe.InfoFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("observer.json: %v, mode %v; want 0600 (it holds a password)", err, fi.Mode().Perm())
	}
	waitFor(t, "the observers line on stderr", func() bool { return strings.Contains(hostErr.String(), "observers: url=nats://") })

	// runs shows it running.
	out, _, code := runCLI(t, "runs", runs)
	if code != exitOK || !strings.Contains(out, " running ") {
		t.Errorf("runs of a live run (exit %d):\n%s", code, out)
	}

	watch, _, _ := cli(t, "watch", "--kind", "tick.closed", runDir)
	watchOut, watchErr := &syncBuffer{}, &syncBuffer{}
	watch.Stdout, watch.Stderr = watchOut, watchErr
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = watch.Process.Kill() })
	waitFor(t, "watch printing live ticks", func() bool { return strings.Count(watchOut.String(), "tick.closed") >= 5 })
	if err := host.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = host.Wait()
	done := make(chan error, 1)
	go func() { done <- watch.Wait() }()
	select {
	case err := <-done:
		if c := exitCode(t, err); c != exitFailed {
			t.Errorf("watch exit code %d after the host was killed, want 1; stderr:\n%s", c, watchErr.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("watch still running a minute after the host was killed; stderr:\n%s", watchErr.String())
	}
	msg := watchErr.String()
	if !strings.Contains(msg, "host is gone") || !strings.Contains(msg, "no longer running") || !strings.Contains(msg, "events.jsonl") {
		t.Errorf("watch's message when the host went away:\n%s", msg)
	}

	// Replayed afterwards, without a server: every event in the file.
	recs, err := events.ReadFile(filepath.Join(runDir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	out, notes, code := runCLI(t, "watch", "--json", runDir)
	if code != exitOK {
		t.Fatalf("watch of the dead run: exit %d\n%s", code, notes)
	}
	if n := strings.Count(out, "\n"); n != len(recs) {
		t.Errorf("replay printed %d events, the file has %d", n, len(recs))
	}
	if !strings.Contains(notes, "no longer running") || !strings.Contains(notes, "without run.finished") {
		t.Errorf("replay notes:\n%s", notes)
	}
	out, _, code = runCLI(t, "runs", runs)
	if code != exitOK || !strings.Contains(out, " abandoned ") || !strings.Contains(out, "long") {
		t.Errorf("runs after the host was killed (exit %d):\n%s", code, out)
	}
}

func TestWatchAndRunsUsage(t *testing.T) {
	for _, args := range [][]string{
		{"watch"},
		{"watch", "--ticks", "5", "x"},
		{"watch", "--kind", "[", "x"},
		{"watch", "--from-time", "yesterday", "x"},
		{"runs", "a", "b"},
	} {
		if _, errOut, code := runCLI(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, errOut)
		}
	}
	if _, errOut, code := runCLI(t, "watch", t.TempDir()); code != exitFailed || !strings.Contains(errOut, "not a run directory") {
		t.Errorf("watch of an empty directory: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "watch", "nats://127.0.0.1:1"); code != exitFailed || !strings.Contains(errOut, "--run") {
		t.Errorf("watch of a URL without --run: exit %d\n%s", code, errOut)
	}
}

// syncBuffer is a bytes.Buffer a child's output may be copied into while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCLI runs Main in process and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return out.String(), errb.String(), code
}
