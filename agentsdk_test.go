package terrarium_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/llmtest"
	"github.com/terrarium-sim/terrarium/agents/mcpserver"
)

// The Agent SDK example of docs/llm-agents.md (agents/examples/agent-sdk),
// as shipped, on this machine's Node.js: `node --check` always; and when
// its dependencies are installed (npm ci in that directory), a runtime
// "mcp" agent running it plays a repeated game against the scripted model
// (the SDK's bundled CLI honours ANTHROPIC_BASE_URL) through the host's
// MCP tools.
func TestAgentSDKExample(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	script, err := filepath.Abs("agents/examples/agent-sdk/agent.mjs")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(node, "--check", script).CombinedOutput(); err != nil {
		t.Fatalf("node --check %s: %v\n%s", script, err, out)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "@anthropic-ai", "claude-agent-sdk")); err != nil {
		t.Skip("the Agent SDK is not installed: npm ci in agents/examples/agent-sdk")
	}
	// Observe, act on what it saw, observe again ... until run_over.
	player := func(c *llmtest.Call) llmtest.Reply {
		out, _ := c.LastToolResult()
		observe := llmtest.Reply{Tool: mcpserver.ToolName(mcpserver.ToolObserve), Input: map[string]any{"wait": true}}
		switch c.LastToolUse() {
		case "":
			return observe
		case mcpserver.ToolName(mcpserver.ToolAct):
			return observe
		case mcpserver.ToolName(mcpserver.ToolObserve):
			var o struct {
				RunOver     bool `json:"run_over"`
				Observation struct {
					Matches []struct {
						Match string `json:"match"`
					} `json:"matches"`
				} `json:"observation"`
			}
			_ = json.NewDecoder(strings.NewReader(out)).Decode(&o)
			if o.RunOver {
				return llmtest.Reply{Text: "the run is over"}
			}
			if len(o.Observation.Matches) == 0 {
				return observe // not an observation to act on (yet)
			}
			moves := map[string]string{}
			for _, m := range o.Observation.Matches {
				moves[m.Match] = "C"
			}
			return llmtest.Reply{Tool: mcpserver.ToolName(mcpserver.ToolAct), Input: map[string]any{"action": map[string]any{"moves": moves}}}
		}
		return llmtest.Reply{Text: "done"}
	}
	srv := startLLM(t, map[string]llmtest.Script{"sdk": player})
	sc := writeScenario(t, fmt.Sprintf(`
scenario "agent_sdk" {
  ticks           = 3
  action_deadline = "15s"
  ready_timeout   = "90s"
}
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 3
}
agent "sdk" {
  runtime = "mcp"
  command = %q
  args    = [%q]
}
agent "bot" {
  runtime = "builtin"
  command = "tit_for_tat"
}
`, node, script))
	res, _, err := runLLM(t, sc, srv)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != 3 {
		t.Fatalf("status %s after %d ticks, want finished after 3", res.Status, res.Ticks)
	}
	defer func() {
		if t.Failed() {
			dumpLogs(t, res.Dir)
			for _, r := range srv.Requests("sdk") {
				c := llmtest.Call{Request: r}
				if out, ok := c.LastToolResult(); ok {
					t.Logf("sdk: %s -> %.300s", c.LastToolUse(), out)
				}
			}
		}
	}()
	// A smoke test of the example, not of the SDK: its acts reach the
	// world through the host's MCP server (the scripted model's pacing
	// against the SDK's own requests may leave a tick to the
	// missing-action policy).
	if a := agentResult(t, res, "sdk"); a.Actions < 1 || a.Status == "failed" {
		t.Errorf("sdk: %d actions, status %s; want its acts through the SDK's MCP client and a clean exit", a.Actions, a.Status)
	}
	if srv.Calls("sdk") == 0 {
		t.Error("the SDK never called the model")
	}
}
