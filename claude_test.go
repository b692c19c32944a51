package terrarium_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/llmtest"
	"github.com/terrarium-sim/terrarium/agents/mcpserver"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/scenarios"
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
		t.Skipf("the claude CLI is not installed (%v): run bash .ci/deps/claude.sh, or set TERRARIUM_CLAUDE", err)
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
func runLLM(t *testing.T, sc *scenarios.Scenario, srv *llmtest.Server) (*terrarium.Result, []events.Record, error) {
	t.Helper()
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: testLogger(t), Dir: filepath.Join(openTempDir(t), "run"), Env: llmEnv(srv)})
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
	recs, err := events.ReadFile(filepath.Join(res.Dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Verify(recs); err != nil {
		t.Fatalf("event chain: %v", err)
	}
	assertNoAgentsLeft(t, recs)
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
// each prompt, it acts with move in every match; after the tool's result
// it ends its turn.
func pdPlayer(move string) llmtest.Script {
	return func(c *llmtest.Call) llmtest.Reply {
		if _, ok := c.LastToolResult(); ok {
			return llmtest.Reply{Text: "done for this tick"}
		}
		var obs struct {
			Matches []struct {
				Match string `json:"match"`
			} `json:"matches"`
		}
		_ = json.Unmarshal(observationOf(c.LastUserText()), &obs)
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
	_ = exec.ErrNotFound
}
