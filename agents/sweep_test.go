package agents_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/agenttest"
	"github.com/terrarium-sim/terrarium/internal/testenv"
)

// shellSpec is an agent that runs script with /bin/sh.
func (f *fixture) shellSpec(id, script string) agents.Spec {
	spec := f.spec(id, "")
	spec.Path = "/bin/sh"
	spec.Args = []string{"-c", script}
	spec.Env = []string{"PATH=/usr/bin:/bin"}
	return spec
}

// grandchildPids waits for the "ready" line and returns the pids of all
// "grandchild N" lines before it.
func grandchildPids(t *testing.T, path string) []int {
	t.Helper()
	waitLine(t, path, "ready")
	var pids []int
	for _, l := range stream(readLog(t, path), "stdout") {
		if v, ok := strings.CutPrefix(l, "grandchild "); ok {
			pid, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("bad line %q", l)
			}
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		t.Fatal("no grandchild line")
	}
	return pids
}

// children lists the processes whose parent is the test process, zombies
// included, except those in skip.
func children(skip []agenttest.Proc) []agenttest.Proc {
	var ps []agenttest.Proc
	for _, p := range agenttest.Procs() {
		if p.PPid == os.Getpid() && !slices.ContainsFunc(skip, func(q agenttest.Proc) bool { return q.Pid == p.Pid }) {
			ps = append(ps, p)
		}
	}
	return ps
}

func shutdown(t *testing.T, sup *agents.Supervisor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sup.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// waitSleeping makes the script wait until process $1 runs sleep, i.e. it has
// done its setsid and exec.
const waitSleeping = `until [ "$(cat /proc/$gc/comm 2>/dev/null)" = sleep ]; do sleep 0.01; done; `

func TestShutdownSweepsDescendants(t *testing.T) {
	tests := []struct {
		name     string
		script   string // prints "grandchild PID" lines, then "ready"
		mode     string // test-binary mode instead of script
		exits    bool   // the agent exits by itself before Shutdown
		orphaned bool   // its grandchildren are orphans (reparented) before Shutdown
	}{
		{
			name:   "setsid grandchild, agent exited",
			script: `setsid sleep 501 >/dev/null 2>&1 & gc=$!; ` + waitSleeping + `echo "grandchild $gc"; echo ready`,
			exits:  true, orphaned: true,
		},
		{
			name:   "setsid grandchild, agent running",
			script: `setsid sleep 501 >/dev/null 2>&1 & gc=$!; ` + waitSleeping + `echo "grandchild $gc"; echo ready; exec sleep 1000`,
		},
		{
			name:   "shell wrapper",
			script: `sleep 502 >/dev/null 2>&1 & echo "grandchild $!"; echo ready; exec sleep 1000`,
		},
		{
			name: "setsid orphan with a child of its own",
			script: `setsid sh -c 'sleep 503 >/dev/null 2>&1 & echo "grandchild $!"; exec sleep 504 >/dev/null 2>&1' & gc=$!; ` +
				waitSleeping + `echo "grandchild $gc"; echo ready`,
			exits: true, orphaned: true,
		},
		{
			name: "own process group in the agent's session",
			mode: "own-group",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := children(nil)
			f := newFixture(t, agents.Config{Subreaper: true, StopGrace: 100 * time.Millisecond})
			spec := f.shellSpec("a", tt.script)
			if tt.mode != "" {
				spec = f.spec("a", tt.mode)
			}
			p := f.start(spec)
			gcs := grandchildPids(t, spec.LogPath)
			for _, gc := range gcs {
				f.leaks.Watch(gc)
			}
			if tt.exits {
				waitDone(t, p)
				if !p.Exit().Clean() {
					t.Fatalf("agent exit = %v, want clean", p.Exit())
				}
			}
			for _, gc := range gcs {
				if !agenttest.Alive(gc) {
					t.Fatalf("grandchild %d not running: the test exercises nothing", gc)
				}
			}
			if tt.orphaned {
				// The subreaper adopted the agent's child (without, its parent
				// would be init); any children of that orphan stay its own.
				gc := gcs[len(gcs)-1]
				waitFor(t, "orphan to be reparented to us", func() bool {
					pr, ok := agenttest.ReadProc(gc)
					return ok && pr.PPid == os.Getpid()
				})
			}

			shutdown(t, f.sup)
			waitFor(t, "grandchildren to die", func() bool {
				return !slices.ContainsFunc(gcs, agenttest.Alive)
			})
			// Nothing is left as our child, not even a zombie: the sweep reaped
			// what it killed.
			if left := children(before); len(left) > 0 {
				t.Errorf("children left after Shutdown: %v", left)
			}
		})
	}
}

func TestSweepLeavesOtherChildrenAlone(t *testing.T) {
	f := newFixture(t, agents.Config{Subreaper: true})
	other := agenttest.Supervisor(t, agents.Config{})

	// Children of other code in the host: in its session, and in a new one.
	var cmds []*exec.Cmd
	for _, attr := range []*syscall.SysProcAttr{nil, {Setsid: true}} {
		cmd := exec.Command("/bin/sleep", "1000")
		cmd.SysProcAttr = attr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		f.leaks.Watch(cmd.Process.Pid)
	}
	t.Cleanup(func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	// A live agent of another supervisor, with a grandchild in its own group.
	ospec := f.spec("other", "own-group")
	op, err := other.Start(ospec)
	if err != nil {
		t.Fatal(err)
	}
	f.leaks.Watch(op.Pid())
	ogc := grandchildPids(t, ospec.LogPath)[0]
	f.leaks.Watch(ogc)
	// And one of ours that leaves an orphan, so the sweep has work to do.
	spec := f.shellSpec("a", `setsid sleep 505 >/dev/null 2>&1 & gc=$!; `+waitSleeping+`echo "grandchild $gc"; echo ready`)
	p := f.start(spec)
	gc := grandchildPids(t, spec.LogPath)[0]
	waitDone(t, p)

	shutdown(t, f.sup)
	waitFor(t, "our orphan to die", func() bool { return !agenttest.Alive(gc) })
	for _, cmd := range cmds {
		if !agenttest.Alive(cmd.Process.Pid) {
			t.Errorf("the sweep killed another child of the host (pid %d, new session %v)", cmd.Process.Pid, cmd.SysProcAttr != nil)
		}
	}
	if !agenttest.Alive(op.Pid()) || !agenttest.Alive(ogc) {
		t.Errorf("the sweep killed another supervisor's agent or its grandchild")
	}
	for _, cmd := range cmds {
		_ = cmd.Process.Kill()
		if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("Wait of another child: %v, want killed (not reaped by the sweep)", err)
		}
	}
	if err := op.Terminate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := op.Exit(); st.Signal != "SIGTERM" || st.Err != nil {
		t.Errorf("other agent exit = %+v, want SIGTERM (its Wait was not stolen)", st)
	}
}

func TestSessionDiesWithLeader(t *testing.T) {
	f := newFixture(t, agents.Config{})
	spec := f.spec("leader", "own-group")
	p := f.start(spec)
	gc := grandchildPids(t, spec.LogPath)[0]
	f.leaks.Watch(gc)
	if pr, _ := agenttest.ReadProc(gc); pr.PGid == p.Pid() {
		t.Fatalf("grandchild in the agent's group: the test exercises nothing")
	}
	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDone(t, p)
	waitFor(t, "grandchild in another group of the session to die", func() bool { return !agenttest.Alive(gc) })
}

func TestCredential(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root to change user")
	}
	const uid, gid, group = 64123, 64123, 64124
	f := newFixture(t, agents.Config{})
	// t.TempDir and its parent are 0700: open the path to the new user.
	for _, d := range []string{filepath.Dir(f.dir), f.dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The test binary lives in a private build directory: copy it.
	exe := filepath.Join(f.dir, "agent.test")
	b, err := os.ReadFile(f.exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	spec := f.spec("ids", "ids")
	spec.Path = exe
	if err := os.Chmod(filepath.Dir(spec.Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(spec.Dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(spec.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cred := &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{group}}
	spec.Credential = cred
	p := f.start(spec)
	cred.Uid = 0 // Start copied it
	waitDone(t, p)
	if !p.Exit().Clean() {
		t.Fatalf("exit = %v, want clean; log:\n%s", p.Exit(), readFile(t, spec.LogPath))
	}
	got := stream(readLog(t, spec.LogPath), "stdout")
	want := []string{
		"uid=64123 gid=64123 groups=[64124] pdeathsig=" + strconv.Itoa(int(syscall.SIGKILL)),
		"wd=" + spec.Dir,
	}
	if !slices.Equal(got, want) {
		t.Errorf("child says %q, want %q", got, want)
	}
}

func TestControlCharactersEscapedInLog(t *testing.T) {
	f := newFixture(t, agents.Config{})
	spec := f.spec("raw", "raw")
	p := f.start(spec)
	waitDone(t, p)
	b := readFile(t, spec.LogPath)
	if !utf8.Valid(b) {
		t.Errorf("log file is not valid UTF-8:\n%q", b)
	}
	for _, c := range bytes.ReplaceAll(b, []byte("\n"), nil) {
		if c < 0x20 && c != '\t' || c == 0x7f {
			t.Errorf("log file holds control byte %#x:\n%q", c, b)
			break
		}
	}
	want := `\x1b]0;pwned\x07\x1b[2Jclear\xff` + "\ttab é" + `\u009b`
	if got := stream(readLog(t, spec.LogPath), "stdout"); !slices.Equal(got, []string{want}) {
		t.Errorf("stdout lines = %q, want %q", got, want)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Orphans adopted by the subreaper host that have exited are reaped while
// the agents run, not only at Shutdown: an agent starting short-lived
// helpers cannot exhaust the pids with zombies.
func TestAdoptedZombiesReapedDuringRun(t *testing.T) {
	f := newFixture(t, agents.Config{Subreaper: true})
	p := f.start(f.spec("spawner", "orphans", "20"))
	// First the orphans come to us (the test process is the host here).
	waitFor(t, "an orphan adopted by the host", func() bool {
		for _, q := range agenttest.Procs() {
			if q.PPid == os.Getpid() && q.Pid != p.Pid() {
				return true
			}
		}
		return false
	})
	// The agent still runs (it never waits for its children, whose parent
	// is now the host): every zombie child of ours must go away by itself.
	// They exit within 50ms; every one must then be reaped, not left a zombie.
	waitFor(t, "adopted orphans to exit and be reaped", func() bool {
		for _, q := range agenttest.Procs() {
			if q.PPid == os.Getpid() && q.Pid != p.Pid() {
				return false
			}
		}
		return true
	})
	select {
	case <-p.Done():
		t.Fatal("the agent exited early")
	default:
	}
}
