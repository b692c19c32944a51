package terrarium_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/internal/leaktest"
	"github.com/terrarium-sim/terrarium/internal/testenv"
	"github.com/terrarium-sim/terrarium/workspace"
)

// The cases of the workspace issue, each run with real agent processes, the
// real watcher and real files, in both enforcement modes: "permissions"
// (agents as their own users; needs root, as in CI) and "detect" (agents
// as the host's user).

var leaseModes = []string{workspace.Permissions, workspace.Detect}

type leaseCase struct {
	agents   string            // agent blocks
	seed     map[string]string // files of the seed directory
	ttl      string
	delay    string
	deadline string
	// during, if set, runs while the run goes on (the run directory is dir).
	during func(t *testing.T, dir string)
}

type leaseRun struct {
	res     *terrarium.Result
	recs    []events.Record
	err     error
	reports map[string]map[string]any
}

func runLeaseCase(t *testing.T, mode string, c leaseCase) leaseRun {
	t.Helper()
	users := terrarium.AgentUsersOff
	if mode == workspace.Permissions {
		if os.Geteuid() != 0 {
			testenv.Missing(t, "permissions mode needs root (CI runs as root)")
		}
		users = terrarium.AgentUsersOn
	}
	if c.ttl == "" {
		c.ttl = "10s"
	}
	if c.delay == "" {
		c.delay = "200ms"
	}
	if c.deadline == "" {
		c.deadline = "20s"
	}
	dir := t.TempDir()
	for name, content := range c.seed {
		p := filepath.Join(dir, "seed", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "seed"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`
scenario "lease-case" {
  action_deadline = %q
}
world "turns" {
  rounds     = 6000
  until_done = true
}
workspace {
  enforcement = %q
  seed        = "seed"
  lease_ttl   = %q
  lock_delay  = %q
}
%s`, c.deadline, mode, c.ttl, c.delay, c.agents)
	path := filepath.Join(dir, "scenario.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	sc := loadScenario(t, path)
	leaktest.Goroutines(t)
	runDir := filepath.Join(openTempDir(t), "run")
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: testLogger(t), Dir: runDir, Env: raceEnv, AgentUsers: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	duringDone := make(chan struct{})
	go func() {
		defer close(duringDone)
		if c.during != nil {
			c.during(t, runDir)
		}
	}()
	res, runErr := h.Run(ctx)
	<-duringDone
	if res == nil {
		t.Fatalf("no result: %v", runErr)
	}
	recs := verifiedEvents(t, res.Dir)
	lr := leaseRun{res: res, recs: recs, err: runErr, reports: map[string]map[string]any{}}
	for _, a := range res.Agents {
		b, err := os.ReadFile(filepath.Join(res.Dir, "workspace", "agents", a.ID, "report.json"))
		if err != nil {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s report: %v", a.ID, err)
		}
		lr.reports[a.ID] = m
	}
	if runErr != nil {
		t.Fatalf("run: %v (status %s)", runErr, res.Status)
	}
	if res.Workspace == nil || res.Workspace.Enforcement != mode {
		t.Fatalf("result workspace = %+v, want enforcement %s", res.Workspace, mode)
	}
	return lr
}

func (lr leaseRun) report(t *testing.T, agent string) map[string]any {
	t.Helper()
	r := lr.reports[agent]
	if r == nil {
		t.Fatalf("agent %s wrote no report (its log: %s)", agent, filepath.Join(lr.res.Dir, "logs", agent+".log"))
	}
	for k, v := range r {
		if strings.HasPrefix(k, "error@") {
			t.Errorf("agent %s: %s: %v", agent, k, v)
		}
	}
	return r
}

// data decodes an event's data.
func data(r events.Record) map[string]any {
	m := map[string]any{}
	_ = json.Unmarshal(r.Data, &m)
	return m
}

// withPath keeps the events of kind about path.
func withPath(recs []events.Record, kind, path string) []events.Record {
	var out []events.Record
	for _, r := range recs {
		if r.Kind == kind && data(r)["path"] == path {
			out = append(out, r)
		}
	}
	return out
}

// finalContent is the file's content in the shared tree after the run,
// which must be its latest version.
func finalContent(t *testing.T, lr leaseRun, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(lr.res.Dir, "workspace", "shared", rel))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := workspace.ReadLog(filepath.Join(lr.res.Dir, "versions"))
	if err != nil {
		t.Fatal(err)
	}
	var last workspace.Version
	for _, v := range vs {
		if v.Path == rel {
			last = v
		}
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != last.SHA256 {
		t.Errorf("%s after the run is not its latest version (%d)", rel, last.N)
	}
	return string(b)
}

func forModes(t *testing.T, f func(t *testing.T, mode string)) {
	for _, mode := range leaseModes {
		t.Run(mode, func(t *testing.T) { f(t, mode) })
	}
}

// Case 1: A holds plan.md; B replaces it (tmp file renamed over it) three
// times in a row: each attempt is prevented or detected and A's content
// restored; A's next commit succeeds.
func TestLeaseCase1ReplaceWhileHeld(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		lr := runLeaseCase(t, mode, leaseCase{
			seed: map[string]string{"plan.md": "v0\n"},
			agents: `
agent "a" {
  runtime = "builtin"
  command = "lease_case1_holder"
}
agent "b" {
  runtime = "builtin"
  command = "lease_case1_replacer"
}`,
		})
		ra, rb := lr.report(t, "a"), lr.report(t, "b")
		for i := 1; i <= 3; i++ {
			att := rb[fmt.Sprintf("attempt%d", i)]
			switch {
			case att == "EACCES":
			case att == "ok" && rb[fmt.Sprintf("restored%d", i)] == true:
			default:
				t.Errorf("attempt %d: %v, restored %v: neither prevented nor restored", i, att, rb[fmt.Sprintf("restored%d", i)])
			}
		}
		if mode == workspace.Permissions && rb["attempt1"] != "EACCES" {
			t.Errorf("permissions mode: attempt 1 = %v, want EACCES", rb["attempt1"])
		}
		if ra["commit1"] != "ok" || ra["commit2"] != "ok" || ra["release"] != "ok" {
			t.Errorf("holder: %v", ra)
		}
		if got := finalContent(t, lr, "plan.md"); got != "A2\n" {
			t.Errorf("plan.md = %q, want A's A2", got)
		}
		if mode == workspace.Detect {
			if n := len(withPath(lr.recs, workspace.EventViolation, "plan.md")); n < 3 {
				t.Errorf("%d violations on plan.md, want one per attempt (3)", n)
			}
			if n := len(withPath(lr.recs, workspace.EventFileRestored, "plan.md")); n < 3 {
				t.Errorf("%d restores of plan.md, want 3", n)
			}
		}
	})
}

// Case 3: truncate, then write, then commit: no violation, and exactly the
// committed content is the new version, never the empty intermediate.
func TestLeaseCase3TruncateThenWrite(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		lr := runLeaseCase(t, mode, leaseCase{
			seed: map[string]string{"data.json": `{"answer": 0}` + "\n"},
			agents: `
agent "a" {
  runtime = "builtin"
  command = "lease_case3"
}`,
		})
		r := lr.report(t, "a")
		if r["commit"] != "ok" {
			t.Fatalf("commit: %v", r)
		}
		if v := kinds(lr.recs, workspace.EventViolation); len(v) != 0 {
			t.Errorf("violations: %v", v)
		}
		want := `{"answer": 42, "by": "a"}` + "\n"
		sum := sha256.Sum256([]byte(want))
		vers := withPath(lr.recs, workspace.EventFileVersion, "data.json")
		if len(vers) != 2 || data(vers[1])["sha256"] != hex.EncodeToString(sum[:]) {
			t.Fatalf("versions of data.json: %v, want the seed and then exactly the committed content", vers)
		}
		if got := finalContent(t, lr, "data.json"); got != want {
			t.Errorf("data.json = %q", got)
		}
		empty := sha256.Sum256(nil)
		for _, r := range lr.recs {
			if r.Kind == workspace.EventFileVersion && data(r)["sha256"] == hex.EncodeToString(empty[:]) {
				t.Errorf("the empty intermediate became a version: %s", r.Data)
			}
		}
	})
}

// Case 4: mkdir -p a/b/c && echo hi > a/b/c/x in a held prefix, then
// commit: a/b/c/x is recorded.
func TestLeaseCase4MkdirInPrefix(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		lr := runLeaseCase(t, mode, leaseCase{
			seed: map[string]string{"notes/README": "notes go here\n"},
			agents: `
agent "a" {
  runtime = "builtin"
  command = "lease_case4"
}`,
		})
		r := lr.report(t, "a")
		if r["commit"] != "ok" {
			t.Fatalf("commit: %v", r)
		}
		vers := withPath(lr.recs, workspace.EventFileVersion, "notes/a/b/c/x")
		sum := sha256.Sum256([]byte("hi\n"))
		if len(vers) != 1 || data(vers[0])["sha256"] != hex.EncodeToString(sum[:]) || vers[0].Agent != "a" {
			t.Fatalf("versions of notes/a/b/c/x: %v", vers)
		}
		if v := kinds(lr.recs, workspace.EventViolation); len(v) != 0 {
			t.Errorf("violations: %v", v)
		}
		if got := finalContent(t, lr, "notes/a/b/c/x"); got != "hi\n" {
			t.Errorf("x = %q", got)
		}
	})
}

// Case 5: six agents edit different sections of one file at about the
// same time: the final content holds all six edits, and an edit reported
// refused is not in it (never a "success" that was lost).
func TestLeaseCase5SixEditors(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		var doc strings.Builder
		for i := 1; i <= 6; i++ {
			fmt.Fprintf(&doc, "## e-%d\nuntouched\n", i)
		}
		lr := runLeaseCase(t, mode, leaseCase{
			seed: map[string]string{"sections.md": doc.String()},
			agents: `
agent "e" {
  runtime = "builtin"
  command = "lease_case5"
  count   = 6
}`,
		})
		final := finalContent(t, lr, "sections.md")
		for i := 1; i <= 6; i++ {
			id := fmt.Sprintf("e-%d", i)
			r := lr.report(t, id)
			in := strings.Contains(final, "## "+id+"\nedited by "+id+"\n")
			switch {
			case r["edit"] == "ok" && !in:
				t.Errorf("%s was told its edit succeeded, but it is lost:\n%s", id, final)
			case r["edit"] != "ok" && in:
				t.Errorf("%s was told %v, but its edit is in", id, r["edit"])
			case r["edit"] != "ok":
				t.Errorf("%s: edit refused (%v): every edit should get through by waiting", id, r["edit"])
			}
		}
		if n := len(withPath(lr.recs, workspace.EventFileVersion, "sections.md")); n != 7 {
			t.Errorf("%d versions of sections.md, want the seed and six edits", n)
		}
	})
}

// waitEvent polls the run's event log until f accepts an event.
func waitEvent(t *testing.T, dir string, d time.Duration, what string, f func(r events.Record) bool) (events.Record, bool) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		recs, _ := events.ReadFile(filepath.Join(dir, "events.jsonl"))
		for _, r := range recs {
			if f(r) {
				return r, true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("timed out waiting for %s", what)
	return events.Record{}, false
}

func agentPid(recs events.Record) int {
	if p, ok := data(recs)["pid"].(float64); ok {
		return int(p)
	}
	return 0
}

// Case 6: the holder stops renewing (SIGSTOP); the lease expires, the
// waiter gets it, and the old holder's later commit is refused (stale
// token) and its write is prevented or restored.
func TestLeaseCase6PausedHolder(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		lr := runLeaseCase(t, mode, leaseCase{
			seed:     map[string]string{"plan.md": "v0\n"},
			ttl:      "1s",
			deadline: "500ms",
			agents: `
agent "a" {
  runtime = "builtin"
  command = "lease_case6_holder"
}
agent "b" {
  runtime = "builtin"
  command = "lease_case6_waiter"
}`,
			during: func(t *testing.T, dir string) {
				sp, ok := waitEvent(t, dir, time.Minute, "a spawned", func(r events.Record) bool { return r.Kind == events.AgentSpawned && r.Agent == "a" })
				if !ok {
					return
				}
				pid := agentPid(sp)
				if _, ok := waitEvent(t, dir, time.Minute, "a's commit", func(r events.Record) bool {
					return r.Kind == workspace.EventFileCommitted && r.Agent == "a"
				}); !ok {
					return
				}
				if _, ok := waitEvent(t, dir, time.Minute, "b's request", func(r events.Record) bool {
					return r.Kind == workspace.EventLeaseRequested && r.Agent == "b"
				}); !ok {
					return
				}
				if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
					t.Errorf("SIGSTOP a: %v", err)
					return
				}
				defer syscall.Kill(pid, syscall.SIGCONT)
				rel, ok := waitEvent(t, dir, time.Minute, "b's release", func(r events.Record) bool {
					return r.Kind == workspace.EventLeaseReleased && r.Agent == "b"
				})
				if !ok {
					return
				}
				// a must see a pause of 1.5s or more (it checks its clock)
				time.Sleep(time.Until(rel.Time.Add(1600 * time.Millisecond)))
			},
		})
		ra, rb := lr.report(t, "a"), lr.report(t, "b")
		if ra["paused"] != true || ra["late_commit"] != workspace.CodeStaleToken {
			t.Errorf("holder: %v, want paused and its late commit refused as stale", ra)
		}
		if rb["acquire"] != "ok" || rb["found"] != "A1\n" || rb["commit"] != "ok" {
			t.Errorf("waiter: %v, want the lease and A's committed A1", rb)
		}
		exp := kinds(lr.recs, workspace.EventLeaseExpired)
		if len(exp) == 0 || exp[0].Agent != "a" {
			t.Errorf("lease.expired: %v", exp)
		}
		switch ra["late_write"] {
		case "EACCES":
		case "ok":
			if mode == workspace.Permissions {
				t.Errorf("permissions mode: the late write was not prevented")
			}
			found := false
			for _, r := range withPath(lr.recs, workspace.EventViolation, "plan.md") {
				if r.Seq > exp[0].Seq {
					found = true
				}
			}
			if !found {
				t.Errorf("the late write was not reported as a violation")
			}
		default:
			t.Errorf("late write: %v", ra["late_write"])
		}
		if got := finalContent(t, lr, "plan.md"); got != "B1\n" {
			t.Errorf("plan.md = %q, want B's B1", got)
		}
	})
}

// Case 7: the holder is killed mid-edit: after the lock delay the waiter
// gets the lease, and the file is the holder's last committed version.
func TestLeaseCase7KilledHolder(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		lr := runLeaseCase(t, mode, leaseCase{
			seed:  map[string]string{"plan.md": "v0\n"},
			delay: "300ms",
			agents: `
agent "a" {
  runtime = "builtin"
  command = "lease_case7_holder"
}
agent "b" {
  runtime = "builtin"
  command = "lease_case7_waiter"
}`,
		})
		rb := lr.report(t, "b")
		if rb["acquire"] != "ok" || rb["found"] != "A1\n" {
			t.Errorf("waiter: %v, want the lease and A's last committed A1", rb)
		}
		var expired, granted events.Record
		for _, r := range lr.recs {
			if r.Kind == workspace.EventLeaseExpired && r.Agent == "a" {
				expired = r
			}
			if r.Kind == workspace.EventLeaseGranted && r.Agent == "b" {
				granted = r
			}
		}
		if expired.Seq == 0 || granted.Seq < expired.Seq {
			t.Fatalf("expired %v, granted %v: want a's lease revoked, then b's grant", expired, granted)
		}
		// The lessor starts the delay when it sees the death, a moment
		// before the event writer stamps lease.expired: the stamps may be
		// a little less than 300 ms apart, never much less (without the
		// delay they would be about 0).
		if gap := granted.Time.Sub(expired.Time); gap < 250*time.Millisecond {
			t.Errorf("b was granted %s after a died, before the lock delay (300ms) passed", gap)
		}
		var d struct {
			LockDelayMS int `json:"lock_delay_ms"`
		}
		if err := json.Unmarshal(expired.Data, &d); err != nil || d.LockDelayMS != 300 {
			t.Errorf("lease.expired %s: lock_delay_ms %d, want 300", expired.Data, d.LockDelayMS)
		}
		if got := finalContent(t, lr, "plan.md"); got != "A1\n" {
			t.Errorf("plan.md = %q, want A1", got)
		}
	})
}

// Case 8: reading another agent's private directory, acquiring
// ../agents/other/notes and a symlink to /etc: all refused with reasons;
// nothing outside the shared tree is touched.
func TestLeaseCase8Escapes(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		passwd := func() string {
			fi, err := os.Stat("/etc/passwd")
			if err != nil {
				return ""
			}
			b, _ := os.ReadFile("/etc/passwd")
			s := sha256.Sum256(b)
			return fmt.Sprintf("%x %v %v", s, fi.Mode(), fi.ModTime())
		}
		before := passwd()
		lr := runLeaseCase(t, mode, leaseCase{
			agents: `
agent "owner" {
  runtime = "builtin"
  command = "lease_case8_owner"
}
agent "prober" {
  runtime = "builtin"
  command = "lease_case8_prober"
}`,
		})
		r := lr.report(t, "prober")
		private := lr.res.Workspace.Private
		if private == "users" || private == "landlock" {
			if r["read_other"] == "ok" || r["list_other"] == "ok" {
				t.Errorf("private directory readable (%s): read %v, list %v", private, r["read_other"], r["list_other"])
			}
		} else {
			t.Logf("private directories unprotected here (%s): not checked", private)
		}
		if r["acquire_dotdot"] != workspace.CodeBadPath || !strings.Contains(fmt.Sprint(r["acquire_dotdot_reason"]), "..") {
			t.Errorf("acquire ../agents/owner/notes: %v (%v)", r["acquire_dotdot"], r["acquire_dotdot_reason"])
		}
		if r["acquire_abs"] != workspace.CodeBadPath {
			t.Errorf("acquire of an absolute path: %v", r["acquire_abs"])
		}
		if r["symlink"] == "ok" {
			if r["acquire_link_file"] != workspace.CodeBadPath || !strings.Contains(fmt.Sprint(r["acquire_link_file_reason"]), "symlink") {
				t.Errorf("acquire through a symlink: %v (%v)", r["acquire_link_file"], r["acquire_link_file_reason"])
			}
			if r["acquire_link_dir"] != workspace.CodeBadPath {
				t.Errorf("acquire a symlink as a prefix: %v", r["acquire_link_dir"])
			}
			vs := withPath(lr.recs, workspace.EventViolation, "cdir/etc")
			if len(vs) == 0 || data(vs[0])["type"] != "symlink" || data(vs[0])["target"] != "/etc" {
				t.Errorf("planted symlink: violations %v", vs)
			}
			if _, err := os.Lstat(filepath.Join(lr.res.Dir, "workspace", "shared", "cdir", "etc")); !os.IsNotExist(err) {
				t.Errorf("the planted symlink is still there (%v)", err)
			}
		} else {
			t.Errorf("symlink in a held prefix: %v", r["symlink"])
		}
		if passwd() != before {
			t.Errorf("/etc/passwd changed")
		}
		n := 0
		for _, r := range kinds(lr.recs, workspace.EventLeaseRefused) {
			if r.Agent == "prober" && data(r)["reason"] != "" {
				n++
			}
		}
		if n < 4 {
			t.Errorf("%d lease.refused events with reasons for the prober, want 4", n)
		}
	})
}

// Case 2 with leases taken over the bus (the SDK), in a whole run: 20
// agents each make 1,000 private files and 200 shared ones under a
// directory lease of their own. The version log accounts for every shared
// file, with its content, and records no private file. (The watcher's
// queue overflow half of the case is in workspace/case2_test.go, which can
// pause the watcher's reader.)
func TestLeaseCase2ManyFilesOverTheBus(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		lr := runLeaseCase(t, mode, leaseCase{
			deadline: "120s",
			agents: `
agent "w" {
  runtime = "builtin"
  command = "lease_case2_bus"
  count   = 20
}`,
		})
		vs, err := workspace.ReadLog(filepath.Join(lr.res.Dir, "versions"))
		if err != nil {
			t.Fatal(err)
		}
		latest := map[string]workspace.Version{}
		for _, v := range vs {
			if strings.Contains(v.Path, "priv") || strings.Contains(v.Path, "p0") {
				t.Fatalf("a private file was recorded as shared: %+v", v)
			}
			latest[v.Path] = v
		}
		for _, a := range lr.res.Agents {
			if n := lr.report(t, a.ID)["released"]; n != float64(200) {
				t.Errorf("%s: its release recorded %v versions, want 200", a.ID, n)
			}
			for i := 0; i < 200; i++ {
				p := fmt.Sprintf("d-%s/s%03d.txt", a.ID, i)
				sum := sha256.Sum256([]byte(fmt.Sprintf("d-%s/%d\n", a.ID, i)))
				if v, ok := latest[p]; !ok || v.SHA256 != hex.EncodeToString(sum[:]) || v.Agent != a.ID {
					t.Fatalf("%s: version %+v (recorded %v), want its content by %s", p, v, ok, a.ID)
				}
			}
		}
		if len(lr.res.Agents) != 20 || len(latest) != 20*200 {
			t.Errorf("%d agents, %d shared paths recorded; want 20 and 4000", len(lr.res.Agents), len(latest))
		}
		if v := kinds(lr.recs, workspace.EventViolation); len(v) != 0 {
			t.Errorf("violations: %v", v)
		}
	})
}
