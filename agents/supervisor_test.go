package agents_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/agenttest"
)

// childEnv selects what the re-executed test binary does (see child).
const childEnv = "AGENTS_TEST_CHILD"

// raceEnv stops a -race child from sleeping a second at exit.
const raceEnv = "GORACE=atexit_sleep_ms=0"

func TestMain(m *testing.M) {
	if _, ok := os.LookupEnv(agents.EnvShim); ok {
		agents.ShimMain() // the limits shim: executes the child below
	}
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// child is the agent program of these tests: the test binary re-executed.
func child(mode string, args []string) int {
	switch mode {
	case "print": // print N CODE: N lines on each stream, then exit CODE
		n, _ := strconv.Atoi(args[0])
		code, _ := strconv.Atoi(args[1])
		for i := 1; i <= n; i++ {
			fmt.Fprintf(os.Stdout, "out %d\n", i)
			fmt.Fprintf(os.Stderr, "err %d\n", i)
		}
		fmt.Fprint(os.Stdout, "no newline")
		return code
	case "env":
		for _, kv := range os.Environ() {
			fmt.Println(kv)
		}
		return 0
	case "long": // a line far over the cap (and the pipe buffer), then more
		fmt.Println(strings.Repeat("x", 3*agents.MaxLineBytes+5))
		fmt.Println("after")
		return 0
	case "sleep":
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return 0
	case "sleep-quiet":
		time.Sleep(time.Hour)
		return 0
	case "sleep-ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return 0
	case "ignore-term": // ignore SIGTERM, with a grandchild (same group) that does too
		signal.Ignore(syscall.SIGTERM)
		pid, err := spawn("sleep-ignore-term", nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Printf("grandchild %d\n", pid)
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return 0
	case "orphans": // N orphans (a middle process starts one and exits), then sleep
		n, _ := strconv.Atoi(args[0])
		for i := 0; i < n; i++ {
			if _, err := spawn("middle", &syscall.SysProcAttr{Setsid: true}); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
		}
		fmt.Println("spawned")
		time.Sleep(time.Hour)
		return 0
	case "middle": // start a process that outlives us a little, and leave it
		if _, err := spawn("late-exit", nil); err != nil {
			return 2
		}
		return 0
	case "late-exit":
		time.Sleep(50 * time.Millisecond)
		return 0
	case "hold-stdout": // a grandchild in its own session keeps stdout open; exit at once
		// The grandchild writes nothing: once WaitDelay has closed the pipe,
		// a write would kill it with SIGPIPE (seen under load), and the test
		// needs it alive.
		pid, err := spawn("sleep-quiet", &syscall.SysProcAttr{Setsid: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Printf("grandchild %d\n", pid)
		return 0
	case "own-group": // a grandchild in a process group of its own (same session)
		pid, err := spawn("sleep-ignore-term", &syscall.SysProcAttr{Setpgid: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Printf("grandchild %d\n", pid)
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return 0
	case "ids": // who the process runs as, where, and its parent-death signal
		var sig int32
		if err := unix.Prctl(unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&sig)), 0, 0, 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		groups, _ := os.Getgroups()
		wd, _ := os.Getwd()
		fmt.Printf("uid=%d gid=%d groups=%v pdeathsig=%d\n", os.Getuid(), os.Getgid(), groups, sig)
		fmt.Printf("wd=%s\n", wd)
		return 0
	case "cgroup": // its cgroups and rlimits, as it starts
		b, _ := os.ReadFile("/proc/self/cgroup")
		os.Stdout.Write(b)
		var as, nproc unix.Rlimit
		_ = unix.Getrlimit(unix.RLIMIT_AS, &as)
		_ = unix.Getrlimit(unix.RLIMIT_NPROC, &nproc)
		fmt.Printf("rlimit-as=%d rlimit-nproc=%d shim-env=%q\n", as.Cur, nproc.Cur, os.Getenv(agents.EnvShim))
		return 0
	case "raw": // terminal escapes and bytes that are not UTF-8
		os.Stdout.Write([]byte("\x1b]0;pwned\x07\x1b[2Jclear\xff\ttab \u00e9\u009b\r\n"))
		return 0
	}
	fmt.Fprintf(os.Stderr, "unknown child mode %q\n", mode)
	return 2
}

// spawn starts the test binary in mode, sharing stdout, and does not wait.
func spawn(mode string, attr *syscall.SysProcAttr) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(exe)
	cmd.Env = []string{childEnv + "=" + mode, raceEnv}
	cmd.Stdout = os.Stdout
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	return cmd.Process.Pid, nil
}

type fixture struct {
	t     *testing.T
	sup   *agents.Supervisor
	leaks *agenttest.ProcessLeaks
	dir   string
	exe   string
}

func newFixture(t *testing.T, cfg agents.Config) *fixture {
	t.Helper()
	leaks := agenttest.NoProcessLeaks(t)
	agenttest.NoGoroutineLeaks(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, sup: agenttest.Supervisor(t, cfg), leaks: leaks, dir: t.TempDir(), exe: exe}
}

func (f *fixture) spec(id, mode string, args ...string) agents.Spec {
	ws := filepath.Join(f.dir, "agents", id)
	if err := os.MkdirAll(ws, 0o755); err != nil {
		f.t.Fatal(err)
	}
	return agents.Spec{
		ID:      id,
		Path:    f.exe,
		Args:    args,
		Env:     []string{childEnv + "=" + mode, raceEnv},
		Dir:     ws,
		LogPath: filepath.Join(f.dir, "logs", id+".log"),
	}
}

func (f *fixture) start(spec agents.Spec) *agents.Process {
	f.t.Helper()
	p, err := f.sup.Start(spec)
	if err != nil {
		f.t.Fatalf("Start: %v", err)
	}
	f.leaks.Watch(p.Pid())
	return p
}

// waitFor polls cond until it holds, failing the test after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitDone(t *testing.T, p *agents.Process) {
	t.Helper()
	waitFor(t, "agent "+p.ID()+" to exit", func() bool {
		select {
		case <-p.Done():
			return true
		default:
			return false
		}
	})
}

// logLine is one child output line of a log file.
type logLine struct {
	stream, text string
	truncated    int
}

var lineRE = regexp.MustCompile(`^\S+ \[INFO\]  ([^:]+): (.*): stream=(stdout|stderr)(?: truncated_bytes=(\d+))?$`)

func readLog(t *testing.T, path string) []logLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var lines []logLine
	for _, l := range strings.Split(string(b), "\n") {
		m := lineRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[4])
		lines = append(lines, logLine{stream: m[3], text: m[2], truncated: n})
	}
	return lines
}

func stream(lines []logLine, name string) []string {
	var s []string
	for _, l := range lines {
		if l.stream == name {
			s = append(s, l.text)
		}
	}
	return s
}

// waitLine waits for a stdout line with prefix and returns it.
func waitLine(t *testing.T, path, prefix string) string {
	t.Helper()
	var found string
	waitFor(t, fmt.Sprintf("line %q in %s", prefix, path), func() bool {
		for _, l := range stream(readLog(t, path), "stdout") {
			if strings.HasPrefix(l, prefix) {
				found = l
				return true
			}
		}
		return false
	})
	return found
}

func grandchildPid(t *testing.T, path string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimPrefix(waitLine(t, path, "grandchild "), "grandchild "))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestOutputLinesInOrderWithStreams(t *testing.T) {
	f := newFixture(t, agents.Config{})
	spec := f.spec("a1", "print", "50", "0")
	p := f.start(spec)
	waitDone(t, p)

	lines := readLog(t, spec.LogPath)
	var wantOut, wantErr []string
	for i := 1; i <= 50; i++ {
		wantOut = append(wantOut, fmt.Sprintf("out %d", i))
		wantErr = append(wantErr, fmt.Sprintf("err %d", i))
	}
	wantOut = append(wantOut, "no newline")
	if got := stream(lines, "stdout"); !slices.Equal(got, wantOut) {
		t.Errorf("stdout lines = %q, want %q", got, wantOut)
	}
	if got := stream(lines, "stderr"); !slices.Equal(got, wantErr) {
		t.Errorf("stderr lines = %q, want %q", got, wantErr)
	}
	b, _ := os.ReadFile(spec.LogPath)
	if !strings.Contains(string(b), "a1.supervisor: exited: status=\"exit 0\"") {
		t.Errorf("log has no exit record:\n%s", b)
	}

	// The log file is appended to, not truncated, by a second run.
	p = f.start(spec)
	waitDone(t, p)
	if got := len(stream(readLog(t, spec.LogPath), "stdout")); got != 2*len(wantOut) {
		t.Errorf("after second run: %d stdout lines, want %d", got, 2*len(wantOut))
	}
}

func TestExitStatus(t *testing.T) {
	f := newFixture(t, agents.Config{})
	for _, code := range []int{0, 1, 3} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			p := f.start(f.spec(fmt.Sprintf("exit-%d", code), "print", "1", strconv.Itoa(code)))
			if p.ID() != fmt.Sprintf("exit-%d", code) || p.Pid() <= 0 {
				t.Errorf("ID, Pid = %q, %d", p.ID(), p.Pid())
			}
			waitDone(t, p)
			st := p.Exit()
			if st.Code != code || st.Signal != "" || st.Err != nil || st.Clean() != (code == 0) {
				t.Errorf("Exit() = %+v (clean %v), want code %d", st, st.Clean(), code)
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	f := newFixture(t, agents.Config{})
	notExec := filepath.Join(f.dir, "notexec")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		modify func(*agents.Spec)
		want   string
	}{
		{"bare name not in PATH", func(s *agents.Spec) {
			s.Path = "no-such-agent-program"
			s.Env = append(s.Env, "PATH=/nonexistent:/also-not")
		}, `agent "x": command "no-such-agent-program" not found in PATH ("/nonexistent:/also-not")`},
		{"bare name, no PATH", func(s *agents.Spec) { s.Path = "sh" }, `agent "x": command "sh" not found: PATH is empty`},
		{"missing relative", func(s *agents.Spec) { s.Path = "./missing" }, `agent "x": command "./missing": ` + filepath.Join(f.dir, "agents", "x", "missing") + " does not exist"},
		{"not executable", func(s *agents.Spec) { s.Path = notExec }, "is not executable (mode -rw-r--r--)"},
		{"directory", func(s *agents.Spec) { s.Path = f.dir }, "is a directory, not a program"},
		{"missing dir", func(s *agents.Spec) { s.Dir = filepath.Join(f.dir, "nope") }, `agent "x": working directory ` + filepath.Join(f.dir, "nope") + " does not exist"},
		{"no dir", func(s *agents.Spec) { s.Dir = "" }, `agent "x": no working directory given`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := f.spec("x", "print", "1", "0")
			tt.modify(&spec)
			p, err := f.sup.Start(spec)
			if err == nil {
				waitDone(t, p)
				t.Fatalf("Start succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestEnvIsExactlySpecEnv(t *testing.T) {
	t.Setenv("AGENTS_TEST_HOST_SECRET", "leak")
	f := newFixture(t, agents.Config{})
	spec := f.spec("env", "env")
	spec.Env = append(spec.Env, "B=2", "A=1", "EMPTY=")
	p := f.start(spec)
	waitDone(t, p)
	got := stream(readLog(t, spec.LogPath), "stdout")
	slices.Sort(got)
	want := slices.Sorted(slices.Values(spec.Env))
	if !slices.Equal(got, want) {
		t.Errorf("child environment = %q, want exactly %q", got, want)
	}
}

func TestLongLineTruncated(t *testing.T) {
	f := newFixture(t, agents.Config{})
	spec := f.spec("long", "long")
	p := f.start(spec)
	waitDone(t, p)
	if !p.Exit().Clean() {
		t.Fatalf("exit = %v, want clean", p.Exit())
	}
	lines := readLog(t, spec.LogPath)
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2", len(lines))
	}
	if l := lines[0]; len(l.text) != agents.MaxLineBytes || strings.Trim(l.text, "x") != "" || l.truncated != 2*agents.MaxLineBytes+5 {
		t.Errorf("long line: %d bytes kept, truncated_bytes=%d; want %d kept, %d truncated", len(l.text), l.truncated, agents.MaxLineBytes, 2*agents.MaxLineBytes+5)
	}
	if lines[1].text != "after" || lines[1].truncated != 0 {
		t.Errorf("second line = %+v, want \"after\"", lines[1])
	}
}

func TestTerminateKillsGroupIgnoringSIGTERM(t *testing.T) {
	f := newFixture(t, agents.Config{StopGrace: 100 * time.Millisecond})
	spec := f.spec("stubborn", "ignore-term")
	p := f.start(spec)
	gc := grandchildPid(t, spec.LogPath)
	waitLine(t, spec.LogPath, "ready")
	if !agenttest.Alive(gc) {
		t.Fatalf("grandchild %d not running", gc)
	}

	if err := p.Terminate(context.Background()); err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Terminate returned before Done")
	}
	if st := p.Exit(); st.Signal != "SIGKILL" || st.Code != -1 || st.Clean() {
		t.Errorf("Exit() = %+v, want killed by SIGKILL", st)
	}
	waitFor(t, "grandchild to die", func() bool { return !agenttest.Alive(gc) })

	// Again, and after exit: no-ops.
	if err := p.Terminate(context.Background()); err != nil {
		t.Errorf("second Terminate: %v", err)
	}
}

func TestTerminateGraceful(t *testing.T) {
	f := newFixture(t, agents.Config{StopGrace: time.Minute})
	spec := f.spec("polite", "sleep")
	p := f.start(spec)
	waitLine(t, spec.LogPath, "ready")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := p.Terminate(ctx); err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	if st := p.Exit(); st.Signal != "SIGTERM" {
		t.Errorf("Exit() = %+v, want SIGTERM", st)
	}
}

func TestTerminateContextForcesKill(t *testing.T) {
	f := newFixture(t, agents.Config{StopGrace: time.Hour})
	spec := f.spec("stubborn", "sleep-ignore-term")
	p := f.start(spec)
	waitLine(t, spec.LogPath, "ready")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Terminate(ctx); err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	if st := p.Exit(); st.Signal != "SIGKILL" {
		t.Errorf("Exit() = %+v, want SIGKILL", st)
	}
}

func TestGrandchildHoldingStdoutDoesNotHangDone(t *testing.T) {
	f := newFixture(t, agents.Config{WaitDelay: 50 * time.Millisecond})
	spec := f.spec("holder", "hold-stdout")
	p := f.start(spec)
	waitDone(t, p)

	// The grandchild left the group (setsid): only WaitDelay got us out.
	gc := grandchildPid(t, spec.LogPath)
	t.Cleanup(func() {
		_ = syscall.Kill(gc, syscall.SIGKILL)
		waitFor(t, "escaped grandchild to die", func() bool { return !agenttest.Alive(gc) })
	})
	st := p.Exit()
	if st.Code != 0 || !errors.Is(st.Err, exec.ErrWaitDelay) {
		t.Errorf("Exit() = %+v, want code 0 and ErrWaitDelay", st)
	}
	if !agenttest.Alive(gc) {
		t.Errorf("grandchild %d gone: the test did not exercise WaitDelay", gc)
	}
}

func TestProcessGroupDiesWithLeader(t *testing.T) {
	f := newFixture(t, agents.Config{})
	spec := f.spec("leader", "ignore-term")
	p := f.start(spec)
	gc := grandchildPid(t, spec.LogPath)
	waitLine(t, spec.LogPath, "ready")
	// Kill only the leader, as a crash would.
	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDone(t, p)
	waitFor(t, "grandchild to die with its leader", func() bool { return !agenttest.Alive(gc) })
}

func TestShutdownLeavesNoProcess(t *testing.T) {
	f := newFixture(t, agents.Config{StopGrace: 100 * time.Millisecond})
	var procs []*agents.Process
	var pids []int
	for i, mode := range []string{"sleep", "ignore-term", "sleep-ignore-term", "sleep"} {
		spec := f.spec(fmt.Sprintf("a%d", i), mode)
		p := f.start(spec)
		waitLine(t, spec.LogPath, "ready")
		procs = append(procs, p)
		pids = append(pids, p.Pid())
		if mode == "ignore-term" {
			pids = append(pids, grandchildPid(t, spec.LogPath))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.sup.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, p := range procs {
		select {
		case <-p.Done():
		default:
			t.Errorf("agent %s not done after Shutdown", p.ID())
		}
	}
	waitFor(t, "all pids gone", func() bool {
		for _, pid := range pids {
			if agenttest.Alive(pid) {
				return false
			}
		}
		return true
	})
	if err := f.sup.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if _, err := f.sup.Start(f.spec("late", "sleep")); !errors.Is(err, agents.ErrShutdown) {
		t.Errorf("Start after Shutdown: %v, want ErrShutdown", err)
	}
}
