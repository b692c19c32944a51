package terrarium_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/llmtest"
	"github.com/terrarium-sim/terrarium/agents/mcpserver"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/internal/leaktest"
	"github.com/terrarium-sim/terrarium/internal/testenv"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/workspace"
)

// claudeCLI returns the claude CLI the tests run: $TERRARIUM_CLAUDE, or
// the pinned one .ci/deps/claude.sh installs in agents/claude/cli. It
// skips the test when there is none.
func claudeCLI(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("TERRARIUM_CLAUDE"); p != "" {
		return p
	}
	p, err := filepath.Abs("agents/claude/cli/node_modules/.bin/claude")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		testenv.Missing(t, "the claude CLI is not installed (%v): run bash .ci/deps/claude.sh, or set TERRARIUM_CLAUDE", err)
	}
	return p
}

// llmEnv points the claude CLI at a scripted model server, with short
// retries and timeouts, so that a failing model cannot stall a test.
func llmEnv(srv *llmtest.Server) map[string]string {
	env := map[string]string{
		"ANTHROPIC_BASE_URL":      srv.URL,
		"ANTHROPIC_API_KEY":       "sk-test-dummy",
		"API_TIMEOUT_MS":          "3000",
		"CLAUDE_CODE_MAX_RETRIES": "1",
		"MCP_TIMEOUT":             "20000",
		"MCP_TOOL_TIMEOUT":        "20000",
	}
	for k, v := range raceEnv {
		env[k] = v
	}
	return env
}

// runLLM runs sc with the scripted server's environment.
func runLLM(t *testing.T, sc *scenarios.Scenario, srv *llmtest.Server, opts ...func(*terrarium.Config)) (*terrarium.Result, []events.Record, error) {
	t.Helper()
	leaktest.Goroutines(t)
	cfg := terrarium.Config{Scenario: sc, Logger: testLogger(t), Dir: filepath.Join(openTempDir(t), "run"), Env: llmEnv(srv)}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := terrarium.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, runErr := h.Run(ctx)
	if res == nil {
		t.Fatalf("Run returned no result (error %v)", runErr)
	}
	recs := verifiedEvents(t, res.Dir)
	checkDocumented(t, recs)
	if t.Failed() || runErr != nil {
		dumpLogs(t, res.Dir)
	}
	return res, recs, runErr
}

func dumpLogs(t *testing.T, dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if len(b) > 6000 {
			b = b[len(b)-6000:]
		}
		t.Logf("%s:\n%s", filepath.Base(l), b)
	}
}

// observationOf extracts the observation JSON from a claude runtime prompt.
func observationOf(prompt string) json.RawMessage {
	_, rest, ok := strings.Cut(prompt, "Your observation:\n")
	if !ok {
		return nil
	}
	obs, _, _ := strings.Cut(rest, "\nSend one action")
	return json.RawMessage(obs)
}

// pdPlayer plays the repeated prisoner's dilemma through the act tool:
// each prompt, it acts with move in every match; after act's result it
// ends its turn.
func pdPlayer(move string) llmtest.Script {
	return func(c *llmtest.Call) llmtest.Reply {
		if _, ok := c.LastToolResult(); ok && c.LastToolUse() == mcpserver.ToolName(mcpserver.ToolAct) {
			return llmtest.Reply{Text: "done for this tick"}
		}
		var obs struct {
			Matches []struct {
				Match string `json:"match"`
			} `json:"matches"`
		}
		if err := json.Unmarshal(observationOf(c.LastUserText()), &obs); err != nil || len(obs.Matches) == 0 {
			return llmtest.Reply{Text: "no tick to play yet"} // not a tick's prompt
		}
		moves := map[string]string{}
		for _, m := range obs.Matches {
			moves[m.Match] = move
		}
		return llmtest.Reply{Tool: mcpserver.ToolName(mcpserver.ToolAct), Input: map[string]any{"action": map[string]any{"moves": moves}}}
	}
}

func startLLM(t *testing.T, scripts map[string]llmtest.Script) *llmtest.Server {
	t.Helper()
	srv, err := llmtest.Start(scripts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// The real claude CLI plays a repeated game through the MCP tools: its
// actions reach the world, and the host's token and cost counts match
// what the scripted model returned.
func TestClaudeAgentsPlayThroughMCP(t *testing.T) {
	cli := claudeCLI(t)
	srv := startLLM(t, map[string]llmtest.Script{"coop": pdPlayer("C"), "defect": pdPlayer("D")})
	sc := writeScenario(t, fmt.Sprintf(`
scenario "llm_pd" {
  ticks           = 3
  action_deadline = "30s"
  ready_timeout   = "60s"
}
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 3
}
agent "coop" {
  runtime = "claude"
  command = %q
}
agent "defect" {
  runtime = "claude"
  command = %q
}
`, cli, cli))
	res, recs, err := runLLM(t, sc, srv)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != 3 {
		t.Fatalf("status %s after %d ticks, want finished after 3", res.Status, res.Ticks)
	}
	t.Logf("tick time with two claude CLIs and a scripted model (2 model calls and 1 MCP act a tick): median %d µs, max %d µs", res.TickTime.MedianUS, res.TickTime.MaxUS)
	for _, ar := range res.Agents {
		if ar.Actions != 3 || ar.Missing != 0 {
			t.Errorf("agent %s: %d actions, %d missing; want 3 and 0", ar.ID, ar.Actions, ar.Missing)
		}
		if ar.LLM == nil {
			t.Fatalf("agent %s: no llm counts in result.json", ar.ID)
		}
		u := srv.Usage(ar.ID)
		if ar.LLM.InputTokens != u.InputTokens || ar.LLM.OutputTokens != u.OutputTokens {
			t.Errorf("agent %s: host counted %d in / %d out tokens, the model returned %d / %d", ar.ID, ar.LLM.InputTokens, ar.LLM.OutputTokens, u.InputTokens, u.OutputTokens)
		}
		if ar.LLM.Turns != srv.Calls(ar.ID) {
			t.Errorf("agent %s: %d turns counted, the model got %d calls", ar.ID, ar.LLM.Turns, srv.Calls(ar.ID))
		}
		// The CLI prices claude-sonnet-4-5 at $3 per million input tokens
		// and $15 per million output tokens.
		if want := float64(u.InputTokens)*3e-6 + float64(u.OutputTokens)*15e-6; math.Abs(ar.LLM.CostUSD-want) > 1e-9 {
			t.Errorf("agent %s: cost $%.6f, want $%.6f for the tokens the model returned", ar.ID, ar.LLM.CostUSD, want)
		}
	}
	results := 0
	for _, r := range recs {
		if r.Kind == events.LLMResult {
			results++
		}
	}
	if results != 6 {
		t.Errorf("%d llm.result events, want 6 (3 prompts x 2 agents)", results)
	}
}

// checkUsage checks that the host counted exactly what the model returned.
func checkUsage(t *testing.T, ar terrarium.AgentResult, srv *llmtest.Server) {
	t.Helper()
	if ar.LLM == nil {
		t.Fatalf("agent %s: no llm counts in result.json", ar.ID)
	}
	u := srv.Usage(ar.ID)
	if ar.LLM.InputTokens != u.InputTokens || ar.LLM.OutputTokens != u.OutputTokens {
		t.Errorf("agent %s: host counted %d in / %d out tokens, the model returned %d / %d", ar.ID, ar.LLM.InputTokens, ar.LLM.OutputTokens, u.InputTokens, u.OutputTokens)
	}
	if ar.LLM.Turns != srv.Calls(ar.ID) {
		t.Errorf("agent %s: %d turns counted, the model got %d calls", ar.ID, ar.LLM.Turns, srv.Calls(ar.ID))
	}
}

// Budgets: an agent whose model loops on tool calls is stopped at
// max_model_turns, one that spends tokens at max_tokens; both cleanly,
// with the reason and the exact counts in result.json, while the world
// goes on with the others.
func TestClaudeBudgetsStopAgentsCleanly(t *testing.T) {
	cli := claudeCLI(t)
	big := &llmtest.Usage{InputTokens: 1000, OutputTokens: 50}
	spender := func(c *llmtest.Call) llmtest.Reply {
		r := pdPlayer("C")(c)
		r.Usage = big
		return r
	}
	srv := startLLM(t, map[string]llmtest.Script{
		// Looks, and looks again, and never acts nor ends its turn.
		"looper":  llmtest.Cycle(llmtest.Reply{Tool: mcpserver.ToolName(mcpserver.ToolObserve), Input: map[string]any{}}),
		"spender": spender,
	})
	sc := writeScenario(t, fmt.Sprintf(`
scenario "llm_budget" {
  ticks           = 4
  action_deadline = "20s"
  ready_timeout   = "60s"
}
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 4
}
agent "looper" {
  runtime         = "claude"
  command         = %q
  max_model_turns = 3
}
agent "spender" {
  runtime    = "claude"
  command    = %q
  max_tokens = 3000
}
agent "bot" {
  runtime = "builtin"
  command = "tit_for_tat"
}
`, cli, cli))
	res, recs, err := runLLM(t, sc, srv)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != 4 {
		t.Fatalf("status %s after %d ticks, want finished after 4: the world goes on", res.Status, res.Ticks)
	}
	looper := agentResult(t, res, "looper")
	if looper.Status != "stopped" || !strings.Contains(looper.Reason, "max_model_turns 3 reached") {
		t.Errorf("looper: status %s, reason %q; want stopped at max_model_turns 3", looper.Status, looper.Reason)
	}
	checkUsage(t, looper, srv)
	if looper.LLM.Turns != 3 {
		t.Errorf("looper: %d model turns, want 3", looper.LLM.Turns)
	}
	sp := agentResult(t, res, "spender")
	if sp.Status != "stopped" || !strings.Contains(sp.Reason, "max_tokens 3000 reached") {
		t.Errorf("spender: status %s, reason %q; want stopped at max_tokens 3000", sp.Status, sp.Reason)
	}
	checkUsage(t, sp, srv)
	if bot := agentResult(t, res, "bot"); bot.Actions != 4 {
		t.Errorf("bot: %d actions, want 4 (the world goes on)", bot.Actions)
	}
	stopped := map[string]bool{}
	for _, r := range recs {
		if r.Kind == events.LLMStopped {
			stopped[string(r.Agent)] = true
		}
		if r.Kind == events.AgentExited && (r.Agent == "looper" || r.Agent == "spender") && strings.Contains(string(r.Data), "SIGKILL") {
			t.Errorf("%s was killed (%s), want a clean stop", r.Agent, r.Data)
		}
	}
	if !stopped["looper"] || !stopped["spender"] {
		t.Errorf("llm.stopped events for %v, want looper and spender", stopped)
	}
	if res.LLM == nil || res.LLM.Tokens() != looper.LLM.Tokens()+sp.LLM.Tokens() {
		t.Errorf("run total %+v, want the sum of the agents'", res.LLM)
	}
}

// A model server that fails or hangs: the missing-action policy fills the
// agent's ticks, it is reported unhealthy and restarted per its policy,
// and nothing hangs; the other agent plays on.
func TestClaudeModelErrorsAndHangs(t *testing.T) {
	cli := claudeCLI(t)
	srv := startLLM(t, map[string]llmtest.Script{
		"failing": llmtest.Cycle(llmtest.Reply{Status: 500}),
		"hanging": llmtest.Cycle(llmtest.Reply{Hang: true}),
		"fine":    pdPlayer("C"),
	})
	block := func(name string) string {
		return fmt.Sprintf(`
agent %q {
  runtime           = "claude"
  command           = %q
  restart           = "on-failure"
  max_restarts      = 1
  restart_delay     = "50ms"
  unhealthy_after   = 2
  restart_unhealthy = true
}`, name, cli)
	}
	sc := writeScenario(t, `
scenario "llm_errors" {
  ticks           = 6
  action_deadline = "2s"
  ready_timeout   = "60s"
  missing_action  = "default"
}
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 6
}
`+block("failing")+block("hanging")+fmt.Sprintf(`
agent "fine" {
  runtime = "claude"
  command = %q
}
`, cli))
	res, recs, err := runLLM(t, sc, srv)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != 6 {
		t.Fatalf("status %s after %d ticks, want finished after 6", res.Status, res.Ticks)
	}
	for _, id := range []string{"failing", "hanging"} {
		ar := agentResult(t, res, id)
		if ar.Actions != 0 || ar.Missing == 0 {
			t.Errorf("%s: %d actions, %d missing; want none applied and the policy filling its ticks", id, ar.Actions, ar.Missing)
		}
		if ar.Restarts != 1 {
			t.Errorf("%s: %d restarts, want 1 (restart_unhealthy, max_restarts 1)", id, ar.Restarts)
		}
		if len(eventsOf(recs, events.AgentUnhealthy, id)) == 0 {
			t.Errorf("%s: no agent.unhealthy event", id)
		}
		if srv.Calls(id) == 0 {
			t.Errorf("%s: never called the model", id)
		}
	}
	// The healthy agent plays on; under load its CLI may miss a 2 s deadline
	// now and then, which is no failure of its own.
	if fine := agentResult(t, res, "fine"); fine.Actions == 0 || fine.Actions+fine.Missing != 6 || fine.Restarts != 0 {
		t.Errorf("fine: %d actions, %d missing, %d restarts; want it to play the 6 ticks unrestarted", fine.Actions, fine.Missing, fine.Restarts)
	}
}

func eventsOf(recs []events.Record, kind, agent string) []events.Record {
	var out []events.Record
	for _, r := range recs {
		if r.Kind == kind && string(r.Agent) == agent {
			out = append(out, r)
		}
	}
	return out
}

// A claude agent killed mid-run is restarted and resumes its session: the
// new CLI gets --resume with the session id, and its first request to the
// model carries the conversation of the ticks before the crash.
func TestClaudeRestartResumesSession(t *testing.T) {
	cli := claudeCLI(t)
	// While phoenix is down, other keeps its tick open (it looks, and looks
	// again) until phoenix's new CLI has called the model: so the run cannot
	// end before phoenix is back, however slowly its CLI starts.
	var killed atomic.Bool
	var srv *llmtest.Server
	back := func() bool {
		for _, r := range srv.Requests("phoenix") {
			c := llmtest.Call{Request: r}
			if strings.Contains(c.LastUserText(), "was restarted") {
				return true
			}
		}
		return false
	}
	other := func(c *llmtest.Call) llmtest.Reply {
		if killed.Load() && !back() {
			time.Sleep(100 * time.Millisecond)
			return llmtest.Reply{Tool: mcpserver.ToolName(mcpserver.ToolObserve), Input: map[string]any{}}
		}
		return pdPlayer("D")(c)
	}
	srv = startLLM(t, map[string]llmtest.Script{"phoenix": pdPlayer("C"), "other": other})
	sc := writeScenario(t, fmt.Sprintf(`
scenario "llm_resume" {
  ticks           = 6
  action_deadline = "60s"
  ready_timeout   = "60s"
}
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 6
}
agent "phoenix" {
  runtime       = "claude"
  command       = %q
  restart       = "on-failure"
  restart_delay = "50ms"
}
agent "other" {
  runtime = "claude"
  command = %q
}
`, cli, cli))
	leaktest.Goroutines(t)
	dir := filepath.Join(openTempDir(t), "run")
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: testLogger(t), Dir: dir, Env: llmEnv(srv)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	type outcome struct {
		res *terrarium.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		res, err := h.Run(ctx)
		done <- outcome{res, err}
	}()
	// Once phoenix has answered two ticks, kill its CLI.
	var pid int
	deadline := time.Now().Add(90 * time.Second)
	for pid == 0 {
		if time.Now().After(deadline) {
			t.Fatal("phoenix never answered two ticks")
		}
		time.Sleep(50 * time.Millisecond)
		recs, err := events.ReadFile(filepath.Join(dir, "events.jsonl"))
		if err != nil {
			continue
		}
		var spawned, results int
		for _, r := range recs {
			if r.Agent != "phoenix" {
				continue
			}
			switch r.Kind {
			case events.AgentSpawned:
				var d struct{ Pid int }
				_ = json.Unmarshal(r.Data, &d)
				spawned = d.Pid
			case events.LLMResult:
				results++
			}
		}
		if results >= 2 {
			pid = spawned
		}
	}
	before := srv.Calls("phoenix")
	killed.Store(true)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	o := <-done
	if o.res == nil || o.err != nil {
		t.Fatalf("run: %v", o.err)
	}
	recs, err := events.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	assertNoAgentsLeft(t, recs)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("DEBUG_EVENTS") != "" {
			for _, r := range recs {
				t.Logf("event %d %s tick %d %s %s %.150s", r.Seq, r.Time.Format("05.000"), r.Tick, r.Kind, r.Agent, r.Data)
			}
			dumpLogs(t, dir)
		}
	})
	ph := agentResult(t, o.res, "phoenix")
	if ph.Restarts != 1 {
		t.Fatalf("phoenix: %d restarts, want 1", ph.Restarts)
	}
	sessions := eventsOf(recs, events.LLMSession, "phoenix")
	if len(sessions) == 0 {
		t.Fatal("no llm.session event for phoenix")
	}
	var s struct{ Session string }
	_ = json.Unmarshal(sessions[0].Data, &s)
	log, _ := os.ReadFile(filepath.Join(dir, "logs", "phoenix.log"))
	if !strings.Contains(string(log), "--resume "+s.Session) {
		t.Errorf("the restarted CLI was not started with --resume %s", s.Session)
	}
	reqs := srv.Requests("phoenix")
	if len(reqs) <= before {
		t.Fatalf("phoenix made no request after its restart")
	}
	first := reqs[before]
	var history strings.Builder
	for _, m := range first.Messages {
		history.WriteString(m.Content.Text())
	}
	if !strings.Contains(history.String(), "Tick 1 (") {
		t.Errorf("the first request after the restart does not carry tick 1's prompt: the session was not resumed")
	}
	if ph.Actions < 3 {
		t.Errorf("phoenix: %d actions, want it to play on after the restart", ph.Actions)
	}
}

// The scenario's budget covers all claude agents together: when their
// tokens reach it, every one of them is stopped, with the run's reason.
func TestClaudeRunBudgetStopsAllLLMAgents(t *testing.T) {
	cli := claudeCLI(t)
	srv := startLLM(t, map[string]llmtest.Script{"a": pdPlayer("C"), "b": pdPlayer("D")})
	sc := writeScenario(t, fmt.Sprintf(`
scenario "llm_run_budget" {
  ticks           = 5
  action_deadline = "30s"
  ready_timeout   = "60s"
  max_tokens      = 500
}
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 5
}
agent "a" {
  runtime = "claude"
  command = %q
}
agent "b" {
  runtime = "claude"
  command = %q
}
`, cli, cli))
	res, _, err := runLLM(t, sc, srv)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != 5 {
		t.Fatalf("status %s after %d ticks, want finished after 5", res.Status, res.Ticks)
	}
	for _, id := range []string{"a", "b"} {
		ar := agentResult(t, res, id)
		if ar.Status != "stopped" || !strings.HasPrefix(ar.Reason, "run max_tokens 500 reached") {
			t.Errorf("%s: status %s, reason %q; want stopped by the run's max_tokens", id, ar.Status, ar.Reason)
		}
		checkUsage(t, ar, srv)
	}
	if res.LLM == nil || res.LLM.Tokens() < 500 {
		t.Errorf("run total %+v, want at least the budget", res.LLM)
	}
}

var sharedDirPattern = regexp.MustCompile(`shared with the other agents are under (\S+)\.`)

// A claude agent that writes a shared file it does not hold, through its
// own Write tool and through a shell command, after an honest villager
// edited it under a lease (issue 9, test 2; in detect mode the honest one
// does not edit, see below). With permissions enforcement
// (the host is root: agents run as their own users) the file system
// refuses both writes and the rogue learns why from the tool results; with
// detect enforcement (agents share the host's user) both writes land, are
// violations naming the file, and are undone. Either way the plan ends as
// the honest agent committed it.
func TestClaudeAgentCannotWriteTheSharedTree(t *testing.T) {
	cli := claudeCLI(t)
	modes := []string{"detect"}
	if os.Geteuid() == 0 {
		modes = append([]string{"permissions"}, modes...)
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) { testRogueWriter(t, cli, mode) })
	}
}

func testRogueWriter(t *testing.T, cli, mode string) {
	seed, err := filepath.Abs("scenarios/town-shared")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	target := ""
	rogue := func(c *llmtest.Call) llmtest.Reply {
		mu.Lock()
		defer mu.Unlock()
		m := sharedDirPattern.FindStringSubmatch(c.Request.SystemText())
		if m == nil {
			return llmtest.Reply{Text: "no shared directory named"}
		}
		target = filepath.Join(m[1], "plan.md")
		switch c.LastToolUse() {
		case "":
		case "Read":
			return llmtest.Reply{Tool: "Write", Input: map[string]any{"file_path": target, "content": "my plan, not yours\n"}}
		case "Write":
			return llmtest.Reply{Tool: "Bash", Input: map[string]any{"command": "echo 'my plan, not yours' > " + target, "description": "write the plan"}}
		case "Bash":
			return llmtest.Reply{Tool: mcpserver.ToolName("wait"), Input: map[string]any{}}
		default:
			return llmtest.Reply{Text: "done"}
		}
		var obs struct {
			Tick int `json:"tick"`
		}
		if err := json.Unmarshal(observationOf(c.LastUserText()), &obs); err != nil || obs.Tick == 0 {
			return llmtest.Reply{Text: "waiting"}
		}
		if obs.Tick == 2 { // after the honest villager's edit
			return llmtest.Reply{Tool: "Read", Input: map[string]any{"file_path": target}}
		}
		return llmtest.Reply{Tool: mcpserver.ToolName("wait"), Input: map[string]any{}}
	}
	// In detect mode the honest villager's Edit replaces the plan by a
	// rename (the directory is writable by everyone as the host's user):
	// as its temporary file names the holder's process, it is the holder's
	// change and survives, while the rogue's are undone.
	honest, want := villager("honest", "I will bake bread."), "- honest: I will bake bread.\n"
	srv := startLLM(t, map[string]llmtest.Script{"rogue": rogue, "honest": honest})
	sc := writeScenario(t, fmt.Sprintf(`
scenario "llm_rogue" {
  ticks           = 2
  action_deadline = "60s"
  ready_timeout   = "60s"
}
workspace {
  enforcement = %q
  seed        = %q
}
world "town" {}
agent "rogue" {
  runtime       = "claude"
  command       = %q
  allowed_tools = ["Read", "Write", "Bash"]
}
agent "honest" {
  runtime       = "claude"
  command       = %q
  allowed_tools = ["Read", "Edit"]
}
`, mode, seed, cli, cli))
	// detect: the agents share the host's user (root here, as in CI), so
	// nothing but the watcher stands in the rogue's way.
	res, recs, err := runLLM(t, sc, srv, func(c *terrarium.Config) {
		if mode == "detect" {
			c.AgentUsers = terrarium.AgentUsersOff
		}
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != 2 {
		t.Fatalf("status %s after %d ticks, want finished after 2", res.Status, res.Ticks)
	}
	b, err := os.ReadFile(filepath.Join(res.Dir, "workspace", "shared", "plan.md"))
	if err != nil || !strings.HasSuffix(string(b), want) || strings.Contains(string(b), "not yours") {
		t.Errorf("plan.md = %q (%v), want it to end with %q (the honest villager's work) and nothing of the rogue's", b, err, want)
	}
	var results []string
	for _, r := range srv.Requests("rogue") {
		c := llmtest.Call{Request: r}
		if out, ok := c.LastToolResult(); ok {
			results = append(results, c.LastToolUse()+": "+out)
		}
	}
	t.Logf("the rogue's tool results:\n%s", strings.Join(results, "\n"))
	for _, r := range srv.Requests("honest") {
		c := llmtest.Call{Request: r}
		if out, ok := c.LastToolResult(); ok {
			t.Logf("honest: %s -> %.300s", c.LastToolUse(), out)
		}
	}
	var violations, restored, named int
	for _, r := range recs {
		switch {
		case r.Kind == events.Violation && strings.Contains(string(r.Data), `"plan.md"`):
			violations++
			switch {
			case r.Agent == "rogue":
				named++
			case mode == "permissions" || r.Agent != "":
				t.Errorf("violation %s by %q, want the rogue named by the file's owner", r.Data, r.Agent)
			}
		case r.Kind == workspace.EventFileRestored && strings.Contains(string(r.Data), `"plan.md"`):
			restored++
		}
	}
	switch mode {
	case "permissions":
		for _, tool := range []string{"Write", "Bash"} {
			denied := false
			for _, r := range results {
				denied = denied || (strings.HasPrefix(r, tool+":") && strings.Contains(strings.ToLower(r), "permission denied"))
			}
			if !denied {
				t.Errorf("the rogue's %s was not refused with permission denied", tool)
			}
		}
	case "detect":
		// Its Write replaced the plan (named by its temporary file's pid);
		// its shell's write in place names nobody.
		if violations < 2 || restored < 2 || named < 1 {
			t.Errorf("%d violations (%d naming the rogue) and %d restores of plan.md, want both of the rogue's writes seen and undone, the Write's naming it", violations, named, restored)
		}
	}
	// The honest villager's edit was committed under its lease (version 2,
	// after the seed), not taken for a violation.
	committed := false
	for _, r := range recs {
		if r.Kind == workspace.EventFileCommitted && r.Agent == "honest" && strings.Contains(string(r.Data), `"version":2`) {
			committed = true
		}
	}
	if !committed {
		t.Error("the honest villager's edit was not committed as version 2 of plan.md")
	}
	for _, id := range []string{"honest", "rogue"} {
		if ar := agentResult(t, res, id); ar.Actions != 2 {
			t.Errorf("%s: %d actions, want 2", id, ar.Actions)
		}
	}
}

// firstPrompt is the text of the user message that started the call's turn.
func firstPrompt(c *llmtest.Call) string {
	for i := len(c.Request.Messages) - 1; i >= 0; i-- {
		m := c.Request.Messages[i]
		if m.Role == "user" && strings.Contains(m.Content.Text(), "Your observation:") {
			return m.Content.Text()
		}
	}
	return ""
}
