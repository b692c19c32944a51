package agents_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/agenttest"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/internal/testenv"
)

// watchdogHostEnv makes the re-executed test binary a host (see
// watchdogHost): "group" or "uids".
const watchdogHostEnv = "AGENTS_TEST_WATCHDOG_HOST"

// watchdogUID is the user the agent of the "uids" host runs as.
const watchdogUID = 1_600_000_000

// watchdogChain is an agent script leaving three processes outside its
// group or session: a child in its group, and a setsid'd child with a child
// of its own. It prints "grandchild PID" for each, then "ready", and becomes
// `sleep 1000`.
const watchdogChain = `sleep 601 >/dev/null 2>&1 & echo "grandchild $!"; ` +
	`setsid sh -c 'sleep 602 >/dev/null 2>&1 & echo "grandchild $!"; exec sleep 603 >/dev/null 2>&1' & gc=$!; ` +
	waitSleeping + `echo "grandchild $gc"; echo ready; exec sleep 1000`

func init() {
	builtin.Main() // the watchdog, when started as one
	if mode := os.Getenv(watchdogHostEnv); mode != "" {
		os.Exit(watchdogHost(mode, os.Args[1:]))
	}
}

// watchdogHost is a host for the tests: it starts a watchdog and one agent
// running watchdogChain in dir (args[0]), has the watchdog watch the agent's
// group ("group") or its UID ("uids"), prints "watchdog PID" and "agent PID",
// then answers each "sync" line of stdin with Sync and "synced". It runs
// until stdin ends or it is killed.
func watchdogHost(mode string, args []string) int {
	log := hclog.New(&hclog.LoggerOptions{Name: "host", Output: os.Stderr, Level: hclog.Debug, Color: hclog.ColorOff})
	fail := func(err error) int {
		log.Error("host failed", "error", err)
		return 2
	}
	dir := args[0]
	exe, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	w, err := agents.StartWatchdog(exe, log.Named("watchdog"))
	if err != nil {
		return fail(err)
	}
	sup := agents.NewSupervisor(agents.Config{Logger: log})
	spec := agents.Spec{
		ID:      "a",
		Path:    "/bin/sh",
		Args:    []string{"-c", watchdogChain},
		Env:     []string{"PATH=/usr/bin:/bin"},
		Dir:     filepath.Join(dir, "agents", "a"),
		LogPath: filepath.Join(dir, "logs", "a.log"),
	}
	if mode == "uids" {
		spec.Credential = &syscall.Credential{Uid: watchdogUID, Gid: watchdogUID, Groups: []uint32{}}
	}
	var cg *agents.Cgroups
	if mode == "cgroup" {
		cg = agents.OpenCgroups(fmt.Sprintf("wdtest-%d", os.Getpid()), log)
		g, rep := cg.Group("a", agents.Limits{Pids: 100})
		if g == nil || rep[agents.LimitPids].Mechanism == agents.MechanismNone {
			return fail(fmt.Errorf("no pids cgroup: %v", rep))
		}
		spec.Cgroup, spec.Shim = g, exe
	}
	p, err := sup.Start(spec)
	if err != nil {
		return fail(err)
	}
	switch mode {
	case "group":
		err = w.WatchGroup(p.Pid())
	case "uids":
		err = w.WatchUIDs(watchdogUID, 1)
	case "cgroup": // the cgroups alone: no group, no UIDs
		for _, d := range cg.Parents() {
			if err = w.WatchCgroup(d); err != nil {
				break
			}
		}
	default:
		err = fmt.Errorf("unknown host mode %q", mode)
	}
	if err != nil {
		return fail(err)
	}
	fmt.Printf("watchdog %d\nagent %d\n", w.Pid(), p.Pid())
	if cg != nil {
		fmt.Printf("cgroups %s\n", strings.Join(cg.Parents(), ","))
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "sync" {
			if err := w.Sync(); err != nil {
				return fail(err)
			}
			fmt.Println("synced")
		}
	}
	return 0 // the test is gone: end like a crash, without Close
}

// hostProc is a running watchdogHost.
type hostProc struct {
	t        *testing.T
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	lines    chan string // its stdout lines; closed at end of file
	logPath  string
	watchdog int
	agent    int
}

// startHost runs watchdogHost in mode in a new directory and reads its pids.
func startHost(t *testing.T, leaks *agenttest.ProcessLeaks, mode string) *hostProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// t.TempDir and its parent are 0700: open the path to the agent's user.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ws := filepath.Join(dir, "agents", "a")
	if err := os.MkdirAll(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	if mode == "uids" {
		if err := os.Chown(ws, watchdogUID, watchdogUID); err != nil {
			t.Fatal(err)
		}
	}
	h := &hostProc{t: t, lines: make(chan string, 16), logPath: filepath.Join(dir, "logs", "a.log")}
	h.cmd = exec.Command(exe, dir)
	h.cmd.Env = []string{watchdogHostEnv + "=" + mode, raceEnv}
	h.cmd.Stderr = &tlogWriter{t: t}
	h.cmd.WaitDelay = agents.DefaultWaitDelay
	h.stdin, err = h.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(h.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = h.cmd.Process.Kill()
		_ = h.cmd.Wait() // also waits for the stdout reader to see end of file
		for range h.lines {
		}
	})
	h.watchdog = h.pid("watchdog")
	h.agent = h.pid("agent")
	leaks.Watch(h.agent)
	return h
}

// line returns the host's next stdout line, failing after a deadline.
func (h *hostProc) line() string {
	h.t.Helper()
	select {
	case l, ok := <-h.lines:
		if !ok {
			h.t.Fatal("host exited")
		}
		return l
	case <-time.After(10 * time.Second):
		h.t.Fatal("timed out waiting for the host")
		return ""
	}
}

// pid reads a "name PID" line.
func (h *hostProc) pid(name string) int {
	h.t.Helper()
	l := h.line()
	v, ok := strings.CutPrefix(l, name+" ")
	pid, err := strconv.Atoi(v)
	if !ok || err != nil {
		h.t.Fatalf("host said %q, want %q PID", l, name)
	}
	return pid
}

// sync makes the host call Watchdog.Sync.
func (h *hostProc) sync() {
	h.t.Helper()
	if _, err := io.WriteString(h.stdin, "sync\n"); err != nil {
		h.t.Fatal(err)
	}
	if l := h.line(); l != "synced" {
		h.t.Fatalf("host said %q, want synced", l)
	}
}

// crash kills the host with SIGKILL and reaps it.
func (h *hostProc) crash() {
	h.t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		h.t.Fatal(err)
	}
	if err := h.cmd.Wait(); err == nil {
		h.t.Fatal("host exited cleanly, want killed")
	}
}

// tlogWriter writes each Write through t.Log (a child's stderr).
type tlogWriter struct{ t *testing.T }

func (w *tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// killLeft SIGKILLs, at cleanup, whichever of pids a failed test left alive.
func killLeft(t *testing.T, pids []int) {
	t.Cleanup(func() {
		for _, pid := range pids {
			if agenttest.Alive(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
}

func TestWatchdogKillsAgentTreeWhenHostIsKilled(t *testing.T) {
	tests := []struct {
		mode string
		root bool
	}{
		{mode: "group"},
		{mode: "uids", root: true},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				testenv.Missing(t, "needs root to run the agent as its own user")
			}
			leaks := agenttest.NoProcessLeaks(t)
			agenttest.NoGoroutineLeaks(t)
			h := startHost(t, leaks, tt.mode)
			pids := append(grandchildPids(t, h.logPath), h.agent)
			killLeft(t, append(pids, h.watchdog))
			for _, pid := range pids {
				if !agenttest.Alive(pid) {
					t.Fatalf("process %d not running: the test exercises nothing", pid)
				}
			}
			if tt.mode == "group" {
				h.sync() // the watchdog has seen the whole chain
			}

			h.crash()
			waitFor(t, "the agent's processes to die", func() bool {
				return !slices.ContainsFunc(pids, agenttest.Alive)
			})
			waitFor(t, "the watchdog to exit", func() bool { return !agenttest.Alive(h.watchdog) })
		})
	}
}

func TestWatchdogCloseKillsNothing(t *testing.T) {
	t.Setenv("GORACE", "atexit_sleep_ms=0") // passed on to the watchdog
	f := newFixture(t, agents.Config{Subreaper: true, StopGrace: 100 * time.Millisecond})
	w, err := agents.StartWatchdog(f.exe, agenttest.Logger(t).Named("watchdog"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	spec := f.shellSpec("a", watchdogChain)
	p := f.start(spec)
	pids := append(grandchildPids(t, spec.LogPath), p.Pid())
	for _, pid := range pids {
		f.leaks.Watch(pid)
	}
	if err := w.WatchGroup(p.Pid()); err != nil {
		t.Fatal(err)
	}
	if err := w.WatchUIDs(watchdogUID+1, 1); err != nil { // a block no process uses
		t.Fatal(err)
	}
	// A Ctrl-C (or a kill of the host's group) does not reach it.
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		if err := syscall.Kill(w.Pid(), sig); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Sync(); err != nil {
		t.Fatalf("Sync after signals: %v", err)
	}

	wpid := w.Pid()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if agenttest.Alive(wpid) {
		t.Error("watchdog still running after Close")
	}
	for _, pid := range pids {
		if !agenttest.Alive(pid) {
			t.Errorf("process %d was killed by a watchdog closed normally", pid)
		}
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := w.WatchGroup(p.Pid()); err == nil {
		t.Error("WatchGroup after Close succeeded")
	}
	shutdown(t, f.sup) // kills the agent; the sweep takes its setsid'd descendants
	waitFor(t, "the agent's processes to die", func() bool { return !slices.ContainsFunc(pids, agenttest.Alive) })
}

func TestStartWatchdogRefusesOtherPrograms(t *testing.T) {
	agenttest.NoProcessLeaks(t)
	agenttest.NoGoroutineLeaks(t)
	for _, exe := range []string{"/bin/true", "/bin/echo", filepath.Join(t.TempDir(), "missing")} {
		if w, err := agents.StartWatchdog(exe, agenttest.Logger(t)); err == nil {
			w.Close()
			t.Errorf("StartWatchdog(%s) succeeded", exe)
		} else {
			t.Logf("StartWatchdog(%s): %v", exe, err)
		}
	}
}

func TestWatchdogRejectsBadArgumentsAndSurvivesTheSweep(t *testing.T) {
	t.Setenv("GORACE", "atexit_sleep_ms=0")
	f := newFixture(t, agents.Config{Subreaper: true})
	w, err := agents.StartWatchdog(f.exe, agenttest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := w.WatchGroup(1); err == nil {
		t.Error("WatchGroup(1) succeeded")
	}
	if err := w.WatchUIDs(1<<32-1, 2); err == nil {
		t.Error("WatchUIDs past the last uid succeeded")
	}
	// The host's order at the end of a run: agents first (the sweep takes
	// the host's children in other sessions, but not the watchdog), then
	// the watchdog.
	shutdown(t, f.sup)
	if err := w.Sync(); err != nil {
		t.Errorf("Sync after the supervisor's Shutdown: %v", err)
	}
}

// A host killed with SIGKILL: the watchdog kills everything in the run's
// cgroups, whatever session it went to, and removes them.
func TestWatchdogRemovesCgroupsWhenHostIsKilled(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root to create cgroups")
	}
	leaks := agenttest.NoProcessLeaks(t)
	agenttest.NoGoroutineLeaks(t)
	h := startHost(t, leaks, "cgroup")
	dirs, ok := strings.CutPrefix(h.line(), "cgroups ")
	if !ok || dirs == "" {
		t.Fatalf("no cgroups from the host: %q", dirs)
	}
	pids := append(grandchildPids(t, h.logPath), h.agent)
	killLeft(t, append(pids, h.watchdog))
	for _, pid := range pids {
		if !agenttest.Alive(pid) {
			t.Fatalf("process %d not running: the test exercises nothing", pid)
		}
	}
	h.crash()
	waitFor(t, "the agent's processes to die", func() bool {
		return !slices.ContainsFunc(pids, agenttest.Alive)
	})
	waitFor(t, "the watchdog to exit", func() bool { return !agenttest.Alive(h.watchdog) })
	for _, d := range strings.Split(dirs, ",") {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left after the host died", d)
			_ = agents.KillCgroupTree(d)
		}
	}
}
