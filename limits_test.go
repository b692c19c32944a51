package terrarium_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/internal/leaktest"
	"github.com/terrarium-sim/terrarium/internal/testenv"
)

// limitsEvent returns the agent.limits event of agent id.
func limitsEvent(t *testing.T, recs []events.Record, id string) (map[string]agents.LimitReport, []string) {
	t.Helper()
	for _, r := range kinds(recs, terrarium.EventAgentLimits) {
		if string(r.Agent) != id {
			continue
		}
		var d map[string]json.RawMessage
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatalf("agent.limits data %s: %v", r.Data, err)
		}
		reps := map[string]agents.LimitReport{}
		var dirs []string
		for k, v := range d {
			if k == "cgroups" {
				if err := json.Unmarshal(v, &dirs); err != nil {
					t.Fatal(err)
				}
				continue
			}
			var lr agents.LimitReport
			if err := json.Unmarshal(v, &lr); err != nil {
				t.Fatalf("agent.limits %s: %v", k, err)
			}
			reps[k] = lr
		}
		return reps, dirs
	}
	t.Fatalf("no agent.limits event for %s", id)
	return nil, nil
}

// checkHonestReport asserts that a limit is reported the same at start and
// in result.json and, when nothing enforces it, says why; it reports
// whether a cgroup enforces it.
func checkHonestReport(t *testing.T, res *terrarium.Result, recs []events.Record, id, limit string, want float64) bool {
	t.Helper()
	start, _ := limitsEvent(t, recs, id)
	lr, ok := start[limit]
	if !ok {
		t.Fatalf("agent.limits of %s has no %s: %v", id, limit, start)
	}
	if lr.Want != want {
		t.Errorf("%s want %v, asked %v", limit, lr.Want, want)
	}
	final, ok := agentResult(t, res, id).Limits[limit]
	if !ok || final.Mechanism != lr.Mechanism || final.Want != lr.Want {
		t.Errorf("result.json %s limit %+v, the start event said %+v", limit, final, lr)
	}
	switch lr.Mechanism {
	case agents.MechanismCgroupV1, agents.MechanismCgroupV2:
		if lr.Got <= 0 || lr.Got > want {
			t.Errorf("%s read back %v for %v", limit, lr.Got, want)
		}
		return true
	case agents.MechanismNone, agents.MechanismRlimit:
		if lr.Detail == "" {
			t.Errorf("%s enforced by %s without saying why no cgroup: %+v", limit, lr.Mechanism, lr)
		}
		return false
	default:
		t.Errorf("%s: unknown mechanism %q", limit, lr.Mechanism)
		return false
	}
}

// checkCgroupsGone asserts that the agent's cgroups were removed.
func checkCgroupsGone(t *testing.T, recs []events.Record, id string) {
	t.Helper()
	_, dirs := limitsEvent(t, recs, id)
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left after the run", d)
		}
	}
}

// Case 4: an agent that forks without end is held to its pids limit,
// reported, and the host and the other agent keep stepping.
func TestForkBombIsContained(t *testing.T) {
	sc := writeScenario(t, `
scenario "fork_bomb" {
  ticks           = 6
  action_deadline = "20s"
}
world "repeated_game" {
  rounds = 6
}
agent "bomb" {
  runtime = "builtin"
  command = "test_fork_bomb"
  pids    = 64
}
agent "honest" {
  runtime = "builtin"
  command = "tit_for_tat"
}
`)
	res, recs, err := runScenario(t, sc)
	enforced := checkHonestReport(t, res, recs, "bomb", agents.LimitPids, 64)
	log, _ := os.ReadFile(res.Dir + "/logs/bomb.log")
	if !enforced {
		if strings.Contains(string(log), "fork refused") || strings.Contains(string(log), "forked") {
			t.Errorf("without a pids cgroup the double must not fork:\n%s", log)
		}
		testenv.Missing(t, "no cgroup enforces pids here (run error %v; limits %+v): containment not tested", err, agentResult(t, res, "bomb").Limits)
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != 6 {
		t.Errorf("run %s after %d ticks, want finished after 6", res.Status, res.Ticks)
	}
	if h := agentResult(t, res, "honest"); h.Actions != 6 || h.Missing != 0 {
		t.Errorf("honest agent %+v: it must not miss a tick", h.AgentStats)
	}
	b := agentResult(t, res, "bomb")
	if !strings.Contains(string(log), "fork refused after") {
		t.Errorf("the bomb's forks were not refused:\n%s", log)
	}
	if b.Limits[agents.LimitPids].Hits == 0 {
		t.Errorf("pids limit %+v: its refusals were not counted", b.Limits[agents.LimitPids])
	}
	var hit bool
	for _, r := range kinds(recs, terrarium.EventAgentLimitHit) {
		hit = hit || r.Agent == "bomb" && strings.Contains(string(r.Data), `"limit":"pids"`)
		if r.Agent != "bomb" {
			t.Errorf("limit hit reported for %s: %s", r.Agent, r.Data)
		}
	}
	if !hit {
		t.Error("no agent.limit_hit event for the bomb's pids")
	}
	checkCgroupsGone(t, recs, "bomb")
}

// Case 5: an agent that allocates without end is killed at its memory
// limit, and reported with the reason; nothing else is affected.
func TestMemoryHogIsKilled(t *testing.T) {
	sc := writeScenario(t, `
scenario "memory_hog" {
  ticks           = 6
  action_deadline = "20s"
}
world "repeated_game" {
  rounds = 6
}
agent "hog" {
  runtime = "builtin"
  command = "test_memory_hog"
  memory  = "256MiB"
}
agent "honest" {
  runtime = "builtin"
  command = "tit_for_tat"
}
`)
	res, recs, err := runScenario(t, sc)
	enforced := checkHonestReport(t, res, recs, "hog", agents.LimitMemory, 256<<20)
	log, _ := os.ReadFile(res.Dir + "/logs/hog.log")
	if !enforced {
		if strings.Contains(string(log), "allocated") {
			t.Errorf("without a memory cgroup the double must not allocate:\n%s", log)
		}
		// RLIMIT_AS, the fallback, may keep a race-enabled agent from
		// starting at all (the run then fails): that is the honest outcome.
		testenv.Missing(t, "no cgroup enforces memory here (run error %v; limits %+v): containment not tested", err, agentResult(t, res, "hog").Limits)
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != 6 {
		t.Errorf("run %s after %d ticks, want finished after 6", res.Status, res.Ticks)
	}
	if h := agentResult(t, res, "honest"); h.Actions != 6 || h.Missing != 0 {
		t.Errorf("honest agent %+v: it must not miss a tick", h.AgentStats)
	}
	hog := agentResult(t, res, "hog")
	if hog.Status != "exited" || hog.Signal != "SIGKILL" || !strings.Contains(hog.Reason, "out of memory") {
		t.Errorf("hog %s, signal %q, reason %q; want exited, SIGKILL, out of memory\n%s", hog.Status, hog.Signal, hog.Reason, log)
	}
	if hog.Limits[agents.LimitMemory].Hits == 0 {
		t.Errorf("memory limit %+v: the OOM kill was not counted", hog.Limits[agents.LimitMemory])
	}
	if hits := kinds(recs, terrarium.EventAgentLimitHit); len(hits) == 0 || hits[0].Agent != "hog" || !strings.Contains(string(hits[0].Data), `"limit":"memory"`) {
		t.Errorf("agent.limit_hit events %v, want the hog's memory", hits)
	}
	var exited []string
	for _, r := range kinds(recs, events.AgentExited) {
		if r.Agent == "hog" {
			exited = append(exited, string(r.Data))
		}
	}
	if len(exited) != 1 || !strings.Contains(exited[0], `"reason":"out of memory`) {
		t.Errorf("agent.exited of the hog = %v, want one with the reason", exited)
	}
	if strings.Contains(string(log), "without being stopped") {
		t.Errorf("the hog was not stopped:\n%s", log)
	}
	checkCgroupsGone(t, recs, "hog")
}

// An agent without limits that shares the host's user gets a cgroup
// anyway (without limits) where the machine offers one: the only thing
// that holds all its descendants, for the watchdog after a host crash.
func TestAgentsSharingTheHostUserAreContained(t *testing.T) {
	sc := writeScenario(t, `
scenario "contained" {
  ticks = 2
}
world "repeated_game" {
  rounds = 2
}
agent "a" {
  runtime = "builtin"
  command = "test_print_cgroup"
}
agent "b" {
  runtime = "builtin"
  command = "cooperator"
}
`)
	leaktest.Goroutines(t)
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: testLogger(t), Dir: filepath.Join(openTempDir(t), "run"), Env: raceEnv, AgentUsers: terrarium.AgentUsersOff})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	res, err := h.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := kindsInFile(t, res.Dir, terrarium.EventAgentLimits); got != 0 {
		t.Errorf("%d agent.limits events for agents without limits", got)
	}
	log, err := os.ReadFile(filepath.Join(res.Dir, "logs", "a.log"))
	if err != nil {
		t.Fatal(err)
	}
	in := strings.Contains(string(log), "/terrarium/"+res.Run+"/a")
	if os.Geteuid() != 0 {
		if in {
			t.Errorf("a host that is not root put its agent into a cgroup?\n%s", log)
		}
		testenv.Missing(t, "not root: no cgroups to contain agents in")
	}
	if !in {
		t.Errorf("the agent did not run in a cgroup of its own:\n%s", log)
	}
	for _, d := range []string{"freezer", "pids"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", d, "terrarium", res.Run)); err == nil {
			t.Errorf("the run's %s cgroup is left", d)
		}
	}
}

func kindsInFile(t *testing.T, dir, kind string) int {
	t.Helper()
	recs, err := events.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return len(kinds(recs, kind))
}

// A CPU quota throttles a spinning agent; the throttling is counted.
func TestCPUQuotaThrottles(t *testing.T) {
	sc := writeScenario(t, `
scenario "spin" {
  ticks           = 3
  action_deadline = "60s"
}
world "repeated_game" {
  rounds = 3
}
agent "spin" {
  runtime = "builtin"
  command = "test_cpu_spin"
  cpu     = 0.2
}
agent "honest" {
  runtime = "builtin"
  command = "tit_for_tat"
}
`)
	res, recs, err := runScenario(t, sc)
	enforced := checkHonestReport(t, res, recs, "spin", agents.LimitCPU, 0.2)
	if !enforced {
		testenv.Missing(t, "no cgroup enforces cpu here (run error %v; limits %+v): throttling not tested", err, agentResult(t, res, "spin").Limits)
	}
	if err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(filepath.Join(res.Dir, "logs", "spin.log"))
	if !strings.Contains(string(log), "throttled after") {
		t.Errorf("the spinner was not throttled:\n%s", log)
	}
	if s := agentResult(t, res, "spin"); s.Limits[agents.LimitCPU].Hits == 0 || s.Actions != 3 {
		t.Errorf("spinner %+v, limits %+v: want 3 actions and its throttling counted", s.AgentStats, s.Limits)
	}
}
