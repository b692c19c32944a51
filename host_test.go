package terrarium_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/agenttest"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/internal/leaktest"
	"github.com/terrarium-sim/terrarium/internal/testlog"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

// raceEnv stops race-built agents from sleeping a second at exit, which
// would make them outlive the stop grace period.
var raceEnv = map[string]string{"GORACE": "atexit_sleep_ms=0"}

func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == mcpClientArg { // an mcp runtime agent (mcpruntime_test.go)
		os.Exit(mcpClientMain(os.Args[2], os.Args[3]))
	}
	builtin.Main() // this test binary is also the builtin runtime's agent binary
	// Race-built children (agents, the watchdog) must not sleep a second
	// when they exit.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	os.Exit(m.Run())
}

// testLogger prints only when the test fails.
func testLogger(t *testing.T) hclog.Logger { return testlog.New(t) }

// openTempDir is a t.TempDir() that other users may enter (t.TempDir makes
// 0700 directories), so agents running as their own users (the host is root
// in CI) can reach their workspaces in a run directory inside it.
func openTempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeScenario writes src to a temp file and loads it.
func writeScenario(t testing.TB, src string) *scenarios.Scenario {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scenario.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return loadScenario(t, path)
}

func loadScenario(t testing.TB, path string) *scenarios.Scenario {
	t.Helper()
	sc, diags := scenarios.Load(path)
	if diags.HasErrors() {
		t.Fatalf("load %s: %s", path, diags.Error())
	}
	return sc
}

// runScenario runs sc to its end in a fresh run directory and checks that no
// agent process outlived the run.
func runScenario(t *testing.T, sc *scenarios.Scenario) (*terrarium.Result, []events.Record, error) {
	t.Helper()
	return runScenarioWithin(t, sc, 2*time.Minute)
}

// verifiedEvents reads dir's events.jsonl, fails the test unless its hash
// chain is intact, and checks that no agent process outlived the run.
func verifiedEvents(t *testing.T, dir string) []events.Record {
	t.Helper()
	recs, err := events.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Verify(recs); err != nil {
		t.Fatalf("event chain: %v", err)
	}
	assertNoAgentsLeft(t, recs)
	return recs
}

// runScenarioWithin is runScenario with the run's deadline.
func runScenarioWithin(t *testing.T, sc *scenarios.Scenario, limit time.Duration) (*terrarium.Result, []events.Record, error) {
	t.Helper()
	leaktest.Goroutines(t)
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: testLogger(t), Dir: filepath.Join(openTempDir(t), "run"), Env: raceEnv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	res, runErr := h.Run(ctx)
	if res == nil {
		t.Fatalf("Run returned no result (error %v)", runErr)
	}
	recs := verifiedEvents(t, res.Dir)
	return res, recs, runErr
}

// assertNoAgentsLeft checks that every spawned agent pid is gone.
func assertNoAgentsLeft(t *testing.T, recs []events.Record) {
	t.Helper()
	for _, r := range recs {
		if r.Kind != events.AgentSpawned {
			continue
		}
		var d struct{ Pid int }
		if err := json.Unmarshal(r.Data, &d); err != nil || d.Pid <= 0 {
			t.Fatalf("agent.spawned without pid: %s", r.Data)
		}
		if agenttest.Alive(d.Pid) {
			t.Errorf("agent %s (pid %d) still running after the run", r.Agent, d.Pid)
		}
	}
}

func kinds(recs []events.Record, kind string) []events.Record {
	var out []events.Record
	for _, r := range recs {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

func agentResult(t *testing.T, res *terrarium.Result, id string) terrarium.AgentResult {
	t.Helper()
	for _, a := range res.Agents {
		if a.ID == id {
			return a
		}
	}
	t.Fatalf("no agent %s in result", id)
	return terrarium.AgentResult{}
}

// scores reads the per-group totals from result.json as written on disk.
func scores(t *testing.T, res *terrarium.Result) map[string]float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(res.Dir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	var disk struct {
		Status string
		World  struct {
			Standings []struct {
				Group string  `json:"group"`
				Score float64 `json:"score"`
				Rank  int     `json:"rank"`
			} `json:"standings"`
		} `json:"world"`
	}
	if err := json.Unmarshal(b, &disk); err != nil {
		t.Fatalf("result.json: %v", err)
	}
	out := map[string]float64{}
	for _, r := range disk.World.Standings {
		out[r.Group] = r.Score
	}
	return out
}

func TestMissingCommandStartsNothing(t *testing.T) {
	// The program exists when the scenario is loaded (validate checks it) and
	// is gone when the run starts.
	ghost := filepath.Join(t.TempDir(), "ghost-agent")
	if err := os.WriteFile(ghost, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sc := writeScenario(t, `
scenario "missing" { ticks = 3 }
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 3
}
agent "ok" {
  runtime = "builtin"
  command = "cooperator"
}
agent "ghost" {
  runtime = "nats"
  command = "`+ghost+`"
}
`)
	if err := os.Remove(ghost); err != nil {
		t.Fatal(err)
	}
	res, recs, err := runScenario(t, sc)
	if err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("Run error = %v, want one naming agent ghost", err)
	}
	if res.Status != terrarium.StatusFailed {
		t.Errorf("status %q, want failed", res.Status)
	}
	if n := len(kinds(recs, events.AgentSpawned)); n != 0 {
		t.Errorf("%d agents spawned, want none (the run must not start half-way)", n)
	}
	if len(kinds(recs, events.RunFinished)) != 1 {
		t.Errorf("no run.finished event")
	}
}

func TestSilentAgentTimesOutAndPolicyApplies(t *testing.T) {
	sc := writeScenario(t, `
scenario "silent" {
  ticks           = 6
  action_deadline = "300ms"
  missing_action  = "default"
}
world "repeated_game" {
  game         = "prisoners_dilemma"
  rounds       = 6
  default_move = "D"
}
agent "silent" {
  runtime = "builtin"
  command = "test_silent_at_3"
}
agent "defector" {
  runtime = "builtin"
  command = "defector"
}
`)
	res, recs, err := runScenario(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ticks != 6 || res.Status != terrarium.StatusFinished {
		t.Fatalf("ticks %d status %s, want 6 finished", res.Ticks, res.Status)
	}
	missing := kinds(recs, world.EventActionMissing)
	if len(missing) != 1 || missing[0].Agent != "silent" || missing[0].Tick != 3 {
		t.Fatalf("action.missing events %+v, want one for silent at tick 3", missing)
	}
	// tick 3 applied the default move D for silent, recorded as policy-filled.
	var closed3 struct {
		Actions []struct {
			Agent  string          `json:"agent"`
			Filled string          `json:"filled"`
			Data   json.RawMessage `json:"data"`
		} `json:"actions"`
	}
	for _, r := range kinds(recs, world.EventTickClosed) {
		if r.Tick == 3 {
			if err := json.Unmarshal(r.Data, &closed3); err != nil {
				t.Fatal(err)
			}
		}
	}
	found := false
	for _, a := range closed3.Actions {
		if a.Agent == "silent" {
			found = true
			if a.Filled != "default" || !strings.Contains(string(a.Data), `"D"`) {
				t.Errorf("tick 3 action of silent = %+v, want default-filled D", a)
			}
		}
	}
	if !found {
		t.Fatal("tick.closed 3 does not record silent's action")
	}
	// silent: C,C,D(default),C,C,C vs always D: 0+0+1+0+0+0 = 1; defector 5*5+1 = 26.
	got := scores(t, res)
	if got["silent"] != 1 || got["defector"] != 26 {
		t.Errorf("scores %v, want silent 1, defector 26", got)
	}
	if st := agentResult(t, res, "silent"); st.Missing != 1 || st.Actions != 5 {
		t.Errorf("silent stats %+v, want 5 actions 1 missing", st.AgentStats)
	}
	// terrarium ps reads the same from the event log alone.
	state, err := terrarium.ReadRunState(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if state.Status != "finished" || state.Ticks != 6 || len(state.Agents) != 2 {
		t.Fatalf("run state %+v", state)
	}
	if a := state.Agents[1]; a.ID != "silent" || a.Turns != 5 || a.Missing != 1 || a.State != "stopped" || a.Pid == 0 {
		t.Errorf("ps state of silent %+v, want stopped with 5 turns, 1 missing", a)
	}
}

func TestAgentExitAtTick7(t *testing.T) {
	sc := writeScenario(t, `
scenario "quit" {
  ticks           = 10
  action_deadline = "60s" # tick 7 ends when the exit is seen, not at the deadline
}
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 10
}
agent "quitter" {
  runtime = "builtin"
  command = "test_exit_at_7"
}
agent "cooperator" {
  runtime = "builtin"
  command = "cooperator"
}
`)
	res, recs, err := runScenario(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ticks != 10 || res.Status != terrarium.StatusFinished {
		t.Fatalf("ticks %d status %s, want 10 finished", res.Ticks, res.Status)
	}
	q := agentResult(t, res, "quitter")
	if q.Status != "exited" || q.ExitCode != 3 {
		t.Errorf("quitter result %+v, want exited with code 3", q)
	}
	if q.Actions != 6 {
		t.Errorf("quitter applied actions %d, want 6 (ticks 1-6)", q.Actions)
	}
	var exited []events.Record
	for _, r := range kinds(recs, events.AgentExited) {
		if r.Agent == "quitter" {
			exited = append(exited, r)
		}
	}
	if len(exited) != 1 || !strings.Contains(string(exited[0].Data), `"during_run":true`) {
		t.Fatalf("agent.exited for quitter: %+v", exited)
	}
	// Every later tick.closed has no action of quitter.
	for _, r := range kinds(recs, world.EventTickClosed) {
		if r.Tick >= 7 && strings.Contains(string(r.Data), `"agent":"quitter"`) {
			t.Errorf("tick %d applied an action of quitter after it exited: %s", r.Tick, r.Data)
		}
	}
}

func TestStaleAndDuplicateActionsRejected(t *testing.T) {
	sc := writeScenario(t, `
scenario "dup" {
  ticks           = 10
  action_deadline = "2s"
}
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 10
}
agent "stale" {
  runtime = "builtin"
  command = "test_stale"
}
agent "double" {
  runtime = "builtin"
  command = "test_double"
}
`)
	res, _, err := runScenario(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	// Both cooperate in every applied action; double's second action (all D)
	// and stale's repeat of tick t-1 must never be applied: 10 rounds of (C,C).
	got := scores(t, res)
	if got["stale"] != 30 || got["double"] != 30 {
		t.Errorf("scores %v, want 30 and 30 (no rejected action applied)", got)
	}
	s := agentResult(t, res, "stale")
	if s.Late != 9 || s.Actions != 10 {
		t.Errorf("stale stats %+v, want 9 late (ticks 2-10), 10 applied", s.AgentStats)
	}
	d := agentResult(t, res, "double")
	// The second action arrives either while the tick is open (duplicate) or
	// just after it closed (late): both are rejections, never applied. The one
	// for the last tick may arrive after the loop has ended, uncounted.
	if n := d.Rejected + d.Late; n < 9 || n > 10 || d.Actions != 10 {
		t.Errorf("double stats %+v, want 9 or 10 rejected or late, 10 applied", d.AgentStats)
	}
}

// An agent that crashes on start every time is restarted with growing
// delays, then marked failed; the run goes on with the others.
func TestCrashingAgentIsRestartedThenFailed(t *testing.T) {
	crash := filepath.Join(openTempDir(t), "crash.sh")
	if err := os.WriteFile(crash, []byte("#!/bin/sh\necho crashing >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sc := writeScenario(t, `
scenario "crashy" { ticks = 5 }
world "repeated_game" { rounds = 5 }
agent "crashy" {
  command        = "`+crash+`"
  restart        = "on-failure"
  max_restarts   = 3
  restart_delay  = "20ms"
  restart_window = "1m"
}
agent "steady" {
  runtime = "builtin"
  command = "cooperator"
}
`)
	res, recs, err := runScenario(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	var delays []int64
	for _, r := range kinds(recs, events.AgentRestarting) {
		var d struct {
			Attempt int   `json:"attempt"`
			DelayMS int64 `json:"delay_ms"`
		}
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.Attempt != len(delays)+1 {
			t.Errorf("restart attempt %d, want %d", d.Attempt, len(delays)+1)
		}
		delays = append(delays, d.DelayMS)
	}
	// 20ms, 40ms, 80ms, each within ±20 %: strictly growing.
	if len(delays) != 3 || !(delays[0] < delays[1] && delays[1] < delays[2]) {
		t.Errorf("restart delays %v ms, want 3 growing ones", delays)
	}
	if n := len(kinds(recs, events.AgentFailed)); n != 1 {
		t.Errorf("%d agent.failed events, want 1", n)
	}
	c := agentResult(t, res, "crashy")
	if c.Status != "failed" || c.Restarts != 3 {
		t.Errorf("crashy %+v, want failed after 3 restarts", c)
	}
	if s := agentResult(t, res, "steady"); s.Actions != 5 || res.Status != "finished" {
		t.Errorf("steady %+v, run %s: the others must play on", s.AgentStats, res.Status)
	}
}

// An agent that crashes on start under the default restart = "never" fails
// the run before its first tick: the error names the agent, how it ended
// and its log, which holds what it wrote; nothing is left running.
func TestCrashOnStartWithoutRestartFailsTheRun(t *testing.T) {
	crash := filepath.Join(openTempDir(t), "crash.sh")
	if err := os.WriteFile(crash, []byte("#!/bin/sh\necho 'boom: no config' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sc := writeScenario(t, `
scenario "crash_on_start" { ticks = 5 }
world "repeated_game" { rounds = 5 }
agent "crashy" {
  command = "`+crash+`"
}
agent "steady" {
  runtime = "builtin"
  command = "cooperator"
}
`)
	res, recs, err := runScenario(t, sc)
	logPath := filepath.Join(res.Dir, "logs", "crashy.log")
	if err == nil || !strings.Contains(err.Error(), "agent crashy exited before it was ready (exit 3)") ||
		!strings.Contains(err.Error(), logPath) || !strings.Contains(err.Error(), `restart = "never"`) {
		t.Fatalf("Run error = %v; want it to name crashy, exit 3, %s and the restart policy", err, logPath)
	}
	if res.Status != terrarium.StatusFailed || res.Ticks != 0 || len(kinds(recs, world.EventTickClosed)) != 0 {
		t.Errorf("run %s after %d ticks, want failed before the first", res.Status, res.Ticks)
	}
	if b, err := os.ReadFile(logPath); err != nil || !strings.Contains(string(b), "boom: no config") {
		t.Errorf("%s does not hold the agent's output (%v):\n%s", logPath, err, b)
	}
	if c := agentResult(t, res, "crashy"); c.ExitCode != 3 || c.Restarts != 0 {
		t.Errorf("crashy %+v, want exit code 3, not restarted", c)
	}
}

// An agent that dies mid-run is restarted, plays again, and ends normally.
func TestAgentRestartedMidRunPlaysOn(t *testing.T) {
	sc := writeScenario(t, `
scenario "restart" {
  ticks           = 400
  action_deadline = "2s"
}
world "repeated_game" { rounds = 400 }
agent "phoenix" {
  runtime       = "builtin"
  command       = "test_crash_once_at_3"
  restart       = "on-failure"
  restart_delay = "10ms"
}
agent "steady" {
  runtime = "builtin"
  command = "test_paced" # the run must outlast phoenix's restart
}
`)
	res, recs, err := runScenario(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	p := agentResult(t, res, "phoenix")
	if p.Restarts != 1 || p.Status != "stopped" {
		t.Errorf("phoenix %+v, want one restart and a normal stop", p)
	}
	if len(kinds(recs, events.AgentReady)) != 3 {
		t.Errorf("%d agent.ready events, want 3 (two agents, one restart)", len(kinds(recs, events.AgentReady)))
	}
	// It acted at ticks 1-2 and again after its restart, up to the end.
	last := kinds(recs, world.EventTickClosed)
	final := last[len(last)-1]
	if !strings.Contains(string(final.Data), `"agent":"phoenix"`) || strings.Contains(string(final.Data), `"filled"`) {
		t.Errorf("the last tick has no own action of the restarted agent: %s", final.Data)
	}
	if p.Actions < 3 || p.Actions > 399 {
		t.Errorf("phoenix applied %d actions, want some before and after the restart", p.Actions)
	}
}

// A secret in the host's environment reaches an agent only when its
// scenario block names it.
func TestHostSecretsDoNotLeak(t *testing.T) {
	t.Setenv("ANTHROPIC_API_KEY", "sk-test-secret")
	t.Setenv("HARMLESS_SETTING", "visible")
	sc := writeScenario(t, `
scenario "env" { ticks = 2 }
world "repeated_game" { rounds = 2 }
agent "plain" {
  runtime = "builtin"
  command = "test_print_env"
}
agent "allowed" {
  runtime = "builtin"
  command = "test_print_env"
  env     = ["ANTHROPIC_API_KEY"]
}
`)
	res, _, err := runScenario(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	read := func(id string) string {
		b, err := os.ReadFile(filepath.Join(res.Dir, "logs", id+".log"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	plain, allowed := read("plain"), read("allowed")
	if !strings.Contains(plain, "env TERRARIUM_AGENT_ID=plain") {
		t.Fatalf("the test agent printed no environment:\n%s", plain)
	}
	if strings.Contains(plain, "sk-test-secret") || strings.Contains(plain, "HARMLESS_SETTING") {
		t.Errorf("host variables reached an agent that did not ask for them:\n%s", plain)
	}
	if !strings.Contains(allowed, "env ANTHROPIC_API_KEY=sk-test-secret") || strings.Contains(allowed, "HARMLESS_SETTING") {
		t.Errorf("the allow-list was not applied exactly:\n%s", allowed)
	}
}

// max_turns stops an agent cleanly once its budget is spent; an agent that
// misses its deadline too often in a row is reported unhealthy and, with
// restart_unhealthy, killed and restarted.
func TestBudgetsAndHealth(t *testing.T) {
	sc := writeScenario(t, `
scenario "budget" {
  ticks           = 400
  action_deadline = "150ms"
}
world "repeated_game" {
  rounds       = 400
  default_move = "D"
}
agent "thrifty" {
  runtime   = "builtin"
  command   = "cooperator"
  max_turns = 3
}
agent "sleepy" {
  runtime           = "builtin"
  command           = "test_silent_at_3"
  unhealthy_after   = 1
  restart_unhealthy = true
  restart           = "on-failure"
  restart_delay     = "10ms"
}
agent "steady" {
  runtime = "builtin"
  command = "cooperator"
}
`)
	res, recs, err := runScenario(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	th := agentResult(t, res, "thrifty")
	if th.Actions != 3 || th.Status != "stopped" || !strings.Contains(th.Reason, "max_turns 3") || th.Restarts != 0 {
		t.Errorf("thrifty %+v, want stopped after exactly 3 actions", th)
	}
	if n := len(kinds(recs, events.AgentSpent)); n != 1 {
		t.Errorf("%d agent.spent events, want 1", n)
	}
	un := kinds(recs, events.AgentUnhealthy)
	if len(un) == 0 || un[0].Agent != "sleepy" || un[0].Tick != 3 {
		t.Fatalf("agent.unhealthy events %+v, want sleepy at tick 3", un)
	}
	if s := agentResult(t, res, "sleepy"); s.Restarts < 1 {
		t.Errorf("sleepy %+v: restart_unhealthy did not restart it", s)
	}
	if res.Status != "finished" || res.Ticks != 400 {
		t.Errorf("run %s after %d ticks, want finished after 400", res.Status, res.Ticks)
	}
}

// A file descriptor the host inherited (not close-on-exec, as a shell's
// `9<secret` gives it) does not reach agents.
func TestInheritedDescriptorsDoNotReachAgents(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "host-only-secret")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Open(secret, syscall.O_RDONLY, 0) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	sc := writeScenario(t, `
scenario "fds" { ticks = 2 }
world "repeated_game" { rounds = 2 }
agent "lister" {
  runtime = "builtin"
  command = "test_list_fds"
}
agent "other" {
  runtime = "builtin"
  command = "cooperator"
}
`)
	res, _, err := runScenario(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(res.Dir, "logs", "lister.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "fd 0 ") {
		t.Fatalf("the agent listed no descriptors:\n%s", b)
	}
	if strings.Contains(string(b), secret) {
		t.Errorf("an agent inherited the host's descriptor of %s:\n%s", secret, b)
	}
}

func TestCloseStopsRunAndLeavesNoAgents(t *testing.T) {
	sc := writeScenario(t, `
scenario "long" {
  ticks           = 100000
  action_deadline = "2s"
}
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 100000
}
agent "a" {
  runtime = "builtin"
  command = "tit_for_tat"
}
agent "b" {
  runtime = "builtin"
  command = "defector"
}
`)
	started := make(chan struct{})
	var once bool
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: testLogger(t), Dir: filepath.Join(t.TempDir(), "run"), Env: raceEnv,
		Progress: func(p terrarium.Progress) {
			if p.Tick == 5 && !once {
				once = true
				close(started)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var res *terrarium.Result
	var runErr error
	go func() {
		defer close(done)
		res, runErr = h.Run(context.Background())
	}()
	select {
	case <-started:
	case <-time.After(time.Minute):
		t.Fatal("run did not reach tick 5")
	}
	_ = h.Close()
	_ = h.Close() // a second Close does no harm
	<-done
	if !errors.Is(runErr, context.Canceled) || res.Status != terrarium.StatusInterrupted {
		t.Fatalf("Run = %v, status %s; want context.Canceled, interrupted", runErr, res.Status)
	}
	recs, err := events.ReadFile(filepath.Join(res.Dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Verify(recs); err != nil {
		t.Fatal(err)
	}
	if fin := kinds(recs, events.RunFinished); len(fin) != 1 || !strings.Contains(string(fin[0].Data), "interrupted") {
		t.Errorf("run.finished = %+v", fin)
	}
	assertNoAgentsLeft(t, recs)
	if res.Ticks < 5 {
		t.Errorf("ticks %d, want >= 5 recorded", res.Ticks)
	}
}

var _ = syscall.SIGINT

// An agent uid base that cannot give agents users of their own is refused
// up front (it used to fall back to running agents as root).
func TestAgentUIDBaseChecked(t *testing.T) {
	sc := loadScenario(t, "scenarios/axelrod.hcl")
	for _, base := range []uint32{5, 999, 4294967290, 1<<31 - 100} {
		_, err := terrarium.New(terrarium.Config{Scenario: sc, Dir: filepath.Join(openTempDir(t), "run"), AgentUIDBase: base})
		if err == nil || !strings.Contains(err.Error(), "agent uid base") {
			t.Errorf("base %d: %v, want a refusal", base, err)
		}
	}
	if _, err := terrarium.New(terrarium.Config{Scenario: sc, Dir: filepath.Join(openTempDir(t), "run"), AgentUIDBase: 200000}); err != nil {
		t.Errorf("base 200000: %v", err)
	}
}
