package agents_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/agenttest"
	"github.com/terrarium-sim/terrarium/internal/testenv"
)

func testRun(t *testing.T) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "test-" + hex.EncodeToString(b[:])
}

// openCgroups opens the run's cgroups and removes them at cleanup,
// checking that nothing is left.
func openCgroups(t *testing.T) *agents.Cgroups {
	t.Helper()
	cg := agents.OpenCgroups(testRun(t), agenttest.Logger(t))
	t.Cleanup(func() {
		parents := cg.Parents()
		if err := cg.Close(); err != nil {
			t.Errorf("close cgroups: %v", err)
		}
		for _, p := range parents {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("cgroup %s left after Close", p)
			}
		}
	})
	return cg
}

// The limits are written and read back; the process is in the group from
// its first instruction, and the shim leaves no trace in its environment.
func TestCgroupLimitsHoldFromTheStart(t *testing.T) {
	f := newFixture(t, agents.Config{})
	cg := openCgroups(t)
	want := agents.Limits{Memory: 64<<20 + 100, Pids: 32, CPU: 0.5}
	g, rep := cg.Group("a", want)
	if len(rep) != 3 {
		t.Fatalf("reports %v, want memory, pids and cpu", rep)
	}
	for name, r := range rep {
		if r.Mechanism == agents.MechanismNone && r.Detail == "" {
			t.Errorf("%s: none without a reason", name)
		}
	}
	if g == nil || rep[agents.LimitPids].Mechanism == agents.MechanismNone {
		// The honest outcome was checked above; containment needs a cgroup.
		testenv.Missing(t, "no usable cgroups here (not root?): %v", rep)
	}
	if r := rep[agents.LimitMemory]; r.Got > r.Want || r.Got < r.Want-4096 {
		t.Errorf("memory read back %v for %v: want it rounded down to a page", r.Got, r.Want)
	}
	if r := rep[agents.LimitPids]; r.Got != 32 {
		t.Errorf("pids read back %v", r.Got)
	}
	if r := rep[agents.LimitCPU]; r.Mechanism != agents.MechanismNone && r.Got != 0.5 {
		t.Errorf("cpu read back %v", r.Got)
	}
	spec := f.spec("a", "cgroup")
	spec.Cgroup, spec.Shim = g, f.exe
	spec.Rlimits = []agents.Rlimit{{Resource: unix.RLIMIT_NPROC, Cur: 1000, Max: 1000}}
	p := f.start(spec)
	waitDone(t, p)
	if st := p.Exit(); !st.Clean() {
		t.Fatalf("exit %v; log: %v", st, readLog(t, spec.LogPath))
	}
	lines := stream(readLog(t, spec.LogPath), "stdout")
	out := strings.Join(lines, "\n")
	in := 0 // hierarchies in which it is in the agent's group
	for _, l := range lines {
		if strings.HasSuffix(l, "/terrarium/"+filepath.Base(filepath.Dir(g.Dirs()[0]))+"/a") {
			in++
		}
	}
	if in != len(g.Dirs()) {
		t.Errorf("the program started in %d of its %d cgroups %v:\n%s", in, len(g.Dirs()), g.Dirs(), out)
	}
	if !strings.Contains(out, "rlimit-nproc=1000") {
		t.Errorf("RLIMIT_NPROC not set before exec:\n%s", out)
	}
	if !strings.Contains(out, `shim-env=""`) {
		t.Errorf("the shim's variable reached the program:\n%s", out)
	}
}

// A grandchild in a session of its own, which holds the output pipes, is
// killed with the agent's cgroup when the agent exits.
func TestCgroupKillsEscapedDescendants(t *testing.T) {
	f := newFixture(t, agents.Config{})
	cg := openCgroups(t)
	g, rep := cg.Group("esc", agents.Limits{Pids: 64})
	if g == nil || rep[agents.LimitPids].Mechanism == agents.MechanismNone {
		testenv.Missing(t, "no usable cgroups here (not root?): %v", rep)
	}
	spec := f.spec("esc", "hold-stdout")
	spec.Cgroup, spec.Shim = g, f.exe
	p := f.start(spec)
	waitDone(t, p)
	if err := p.Exit().Err; err != nil {
		t.Errorf("exit error %v: the grandchild held the pipes past WaitDelay, so the cgroup did not kill it", err)
	}
	if left := g.Procs(); len(left) != 0 {
		t.Errorf("processes left in the cgroup: %v", left)
	}
	for _, d := range g.Dirs() {
		if !strings.HasPrefix(d, "/") || filepath.Base(d) != "esc" {
			t.Errorf("group directory %s", d)
		}
	}
}

// Rlimits alone (no cgroup): the shim sets them before it executes the
// program, which starts with them in force; one the kernel refuses stops
// the agent before its program runs, saying which.
func TestShimRlimitsHoldOrTheAgentDoesNotStart(t *testing.T) {
	f := newFixture(t, agents.Config{})
	spec := f.spec("lim", "cgroup")
	spec.Shim = f.exe
	spec.Rlimits = []agents.Rlimit{{Resource: unix.RLIMIT_NPROC, Cur: 777, Max: 777}}
	p := f.start(spec)
	waitDone(t, p)
	if st := p.Exit(); !st.Clean() {
		t.Fatalf("exit %v; log: %v", st, readLog(t, spec.LogPath))
	}
	if out := strings.Join(stream(readLog(t, spec.LogPath), "stdout"), "\n"); !strings.Contains(out, "rlimit-nproc=777") {
		t.Errorf("RLIMIT_NPROC not in force when the program started:\n%s", out)
	}

	bad := f.spec("bad", "cgroup")
	bad.Shim = f.exe
	bad.Rlimits = []agents.Rlimit{{Resource: unix.RLIMIT_NPROC, Cur: 2000, Max: 1000}} // soft above hard: EINVAL
	p = f.start(bad)
	waitDone(t, p)
	if st := p.Exit(); st.Code != agents.ShimSetupFailed {
		t.Errorf("exit %v, want %d (the shim's setup failed)", st, agents.ShimSetupFailed)
	}
	log := readLog(t, bad.LogPath)
	if errs := strings.Join(stream(log, "stderr"), "\n"); !strings.Contains(errs, "setrlimit RLIMIT_NPROC to 2000 (hard 1000)") || !strings.Contains(errs, "not starting") {
		t.Errorf("the shim did not say which rlimit failed:\n%s", errs)
	}
	if out := stream(log, "stdout"); len(out) != 0 {
		t.Errorf("the program ran without its rlimit: %v", out)
	}
}
