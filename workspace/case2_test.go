package workspace_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/internal/testenv"
	"github.com/terrarium-sim/terrarium/workspace"
	"github.com/terrarium-sim/terrarium/workspace/wstest"
)

// The test binary doubles as the agents of these tests: with
// WSTEST_CREATE=dir:prefix:count it creates count small files in dir and
// exits.
func TestMain(m *testing.M) {
	if spec := os.Getenv("WSTEST_CREATE"); spec != "" {
		parts := strings.Split(spec, "|")
		for i := 0; i+2 < len(parts); i += 3 {
			n, _ := strconv.Atoi(parts[i+2])
			for j := 0; j < n; j++ {
				p := filepath.Join(parts[i], fmt.Sprintf("%s%05d.txt", parts[i+1], j))
				if err := os.WriteFile(p, []byte(p+"\n"), 0o644); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
			}
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// agentUID is the user (and group) of test agent i in permissions mode,
// far above the blocks runs take.
func agentUID(i int) int { return 190000 + i }

// spawn runs the test binary as an agent creating files (as its own
// user in permissions mode) and waits for it.
func spawn(t *testing.T, env *wstest.Env, mode string, i int, spec string) error {
	exe := filepath.Join(env.Dir, "agent.test")
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "WSTEST_CREATE="+spec)
	if mode == workspace.Permissions {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(agentUID(i)), Gid: uint32(agentUID(i)), Groups: []uint32{}}}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("agent %d: %v: %s", i, err, out)
	}
	return nil
}

func startEnv(t *testing.T, mode string, agents int) *wstest.Env {
	if mode == workspace.Permissions && os.Geteuid() != 0 {
		testenv.Missing(t, "permissions mode needs root (CI runs as root)")
	}
	cfg := wstest.Config{Enforcement: mode, Debounce: 20 * time.Millisecond, Reconcile: time.Hour, TTL: time.Hour}
	if mode == workspace.Permissions {
		cfg.GroupOf = func(agent string) (int, bool) {
			var i int
			if _, err := fmt.Sscanf(agent, "a%d", &i); err != nil {
				return 0, false
			}
			return agentUID(i), true
		}
	}
	env := wstest.StartIn(t, wstest.MemDir(t), cfg)
	// A copy of this binary other users may run (go test's build
	// directory is private).
	b, err := os.ReadFile(os.Args[0])
	if err == nil {
		err = os.WriteFile(filepath.Join(env.Dir, "agent.test"), b, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < agents; i++ {
		d := filepath.Join(env.Dir, "agents", fmt.Sprintf("a%d", i))
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if mode == workspace.Permissions {
			if err := os.Chown(d, agentUID(i), agentUID(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return env
}

// changed collects the shared paths the record has a pending change for.
func changed(env *wstest.Env) map[string]bool {
	out := map[string]bool{}
	for _, ev := range env.Events(workspace.EventFileChanged) {
		out[fmt.Sprint(ev.Data["path"])] = true
	}
	return out
}

// Case 2: 20 agents each create 1,000 files in their own directories and
// 200 in leased shared directories: the change record accounts for every
// shared file and no private file. Then, with the watcher's reader paused,
// more shared files than the kernel queue holds: the overflow is reported,
// a rescan runs, and no file is missing from the record.
func TestCase2ManyFilesAndOverflow(t *testing.T) {
	for _, mode := range []string{workspace.Permissions, workspace.Detect} {
		t.Run(mode, func(t *testing.T) {
			agents, private, sharedPer := 20, 1000, 200
			if s := os.Getenv("CASE2_AGENTS"); s != "" {
				agents, _ = strconv.Atoi(s)
			}
			env := startEnv(t, mode, agents)
			ctx := context.Background()
			leases := make([]workspace.Lease, agents)
			for i := range leases {
				l, err := env.WS.Create(fmt.Sprintf("a%d", i), fmt.Sprintf("d%02d", i), true)
				if err != nil {
					t.Fatal(err)
				}
				leases[i] = l
			}
			var wg sync.WaitGroup
			errs := make(chan error, agents)
			for i := 0; i < agents; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					spec := fmt.Sprintf("%s|p|%d|%s|s|%d",
						filepath.Join(env.Dir, "agents", fmt.Sprintf("a%d", i)), private,
						filepath.Join(env.Shared, fmt.Sprintf("d%02d", i)), sharedPer)
					if err := spawn(t, env, mode, i, spec); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			t.Logf("%s: agents done", time.Now().Format("15:04:05.000"))
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			want := map[string]bool{}
			for i := 0; i < agents; i++ {
				for j := 0; j < sharedPer; j++ {
					want[fmt.Sprintf("d%02d/s%05d.txt", i, j)] = true
				}
			}
			if !env.WaitFor(time.Minute, func() bool { return len(changed(env)) >= len(want) }) {
				t.Fatalf("the record has %d of %d shared files", len(changed(env)), len(want))
			}
			for p := range changed(env) {
				if !want[p] {
					t.Errorf("recorded %q, which no agent made in the shared tree", p)
				}
			}
			t.Logf("%s: recorded", time.Now().Format("15:04:05.000"))
			for i, l := range leases {
				vs, err := env.WS.Release(fmt.Sprintf("a%d", i), l.Token)
				if err != nil || len(vs) != sharedPer {
					t.Fatalf("release a%d: %d versions, %v", i, len(vs), err)
				}
			}

			// The overflow.
			q, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
			if err != nil {
				testenv.Missing(t, "no inotify queue limit to read: %v", err)
			}
			max, _ := strconv.Atoi(strings.TrimSpace(string(q)))
			// Each file is two events (create, write): 1.5 times the
			// queue, plus what fsnotify holds in its read buffer (at most
			// 64 KiB of events, about 2,000) while its reader is blocked.
			n := max*3/4 + 1000
			l, err := env.WS.Create("a0", "flood", true)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: released", time.Now().Format("15:04:05.000"))
			resume := env.WS.PauseWatcher()
			if err := spawn(t, env, mode, 0, fmt.Sprintf("%s|f|%d", filepath.Join(env.Shared, "flood"), n)); err != nil {
				resume()
				t.Fatal(err)
			}
			resume()
			t.Logf("%s: flooded", time.Now().Format("15:04:05.000"))
			if !env.WaitFor(time.Minute, func() bool { return len(env.Events(workspace.EventRescan)) > 0 }) {
				t.Fatal("no overflow reported")
			}
			t.Logf("%s: overflow seen", time.Now().Format("15:04:05.000"))
			env.WS.Sync(ctx)
			t.Logf("%s: synced", time.Now().Format("15:04:05.000"))
			got := changed(env)
			missing := 0
			for j := 0; j < n; j++ {
				if !got[fmt.Sprintf("flood/f%05d.txt", j)] {
					missing++
				}
			}
			if missing > 0 {
				t.Errorf("%d of %d flood files missing from the record after the rescan", missing, n)
			}
			vs, err := env.WS.Release("a0", l.Token)
			t.Logf("%s: flood released", time.Now().Format("15:04:05.000"))
			if err != nil || len(vs) != n {
				t.Fatalf("release flood: %d versions, %v", len(vs), err)
			}
			if st := env.WS.Stats(); st.Rescans == 0 || st.Violations != 0 {
				t.Errorf("stats %+v: want a rescan and no violation", st)
			}
			t.Logf("%s: end", time.Now().Format("15:04:05.000"))
		})
	}
}
