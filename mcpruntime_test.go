package terrarium_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/events"
)

// mcpClientArg makes the test binary an MCP client agent (see TestMain):
// os.Args = [bin, mcpClientArg, CONFIG, MODE].
const mcpClientArg = "mcp-client"

// mcpClientMain is a generic MCP-capable agent of the test suite: it
// starts the MCP server its config file names (as the config says: command,
// args, env), then plays the repeated game through the tools, cooperating,
// until the run is over. With mode "hostile" it also tries to act as the
// agent "victim" directly on the bus with the credentials it found.
func mcpClientMain(config, mode string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "mcp client:", err)
		return 1
	}
	if got := os.Getenv("TERRARIUM_MCP_CONFIG"); got != config {
		return fail(fmt.Errorf("TERRARIUM_MCP_CONFIG is %q, the argument %q", got, config))
	}
	b, err := os.ReadFile(config)
	if err != nil {
		return fail(err)
	}
	var cfg struct {
		MCPServers map[string]struct {
			Command string            `json:"command"`
			Args    []string          `json:"args"`
			Env     map[string]string `json:"env"`
		} `json:"mcpServers"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fail(err)
	}
	s, ok := cfg.MCPServers["terrarium"]
	if !ok {
		return fail(fmt.Errorf("no terrarium server in %s", config))
	}
	cmd := exec.Command(s.Command, s.Args...)
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stderr = os.Stderr
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test-client"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		return fail(err)
	}
	defer cs.Close()
	if mode == "hostile" {
		nc, err := nats.Connect(s.Env[agents.EnvNATSURL], nats.UserInfo(s.Env[agents.EnvNATSUser], s.Env[agents.EnvNATSPass]), nats.CustomInboxPrefix(s.Env[agents.EnvInboxPrefix]))
		if err != nil {
			return fail(err)
		}
		run := s.Env[agents.EnvRun]
		for tick := uint64(1); tick <= 3; tick++ {
			m, _ := bus.Encode(bus.Envelope{Kind: bus.KindAct, Run: run, Agent: "victim", Tick: tick, Data: json.RawMessage(`{"moves":{}}`)})
			_ = nc.Publish(bus.AgentSubject(run, "victim", bus.KindAct), m)
		}
		_ = nc.Flush()
		nc.Close()
	}
	for {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "observe", Arguments: map[string]any{"wait": true}})
		if err != nil {
			return fail(err)
		}
		var out struct {
			Tick        uint64 `json:"tick"`
			RunOver     bool   `json:"run_over"`
			Acted       bool   `json:"acted"`
			Observation struct {
				Matches []struct {
					Match string `json:"match"`
				} `json:"matches"`
			} `json:"observation"`
		}
		if tc, ok := res.Content[0].(*mcp.TextContent); ok {
			_ = json.Unmarshal([]byte(tc.Text), &out)
		}
		if out.RunOver {
			return 0
		}
		if out.Tick == 0 || out.Acted {
			continue
		}
		if err := leaseStep(ctx, cs, mode, out.Tick); err != nil { // mcplease_test.go
			fmt.Fprintln(os.Stderr, "LEASE-CHECK FAIL:", err)
			return 1
		}
		moves := map[string]string{}
		for _, m := range out.Observation.Matches {
			moves[m.Match] = "C"
		}
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "act", Arguments: map[string]any{"action": map[string]any{"moves": moves}}}); err != nil {
			return fail(err)
		}
	}
}

// testBinary copies the test binary where agents running as other users
// can execute it.
func testBinary(t *testing.T) string {
	t.Helper()
	p, err := builtin.InstallExecutable("", filepath.Join(openTempDir(t), "agent.test"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The generic mcp runtime: a program of the test suite gets the host's
// MCP server through its config file (named by an argument and by
// TERRARIUM_MCP_CONFIG) and plays through it. A hostile one that uses the
// credentials in its config to act as another agent is refused by the bus
// (a violation event names it), and the other agent's play is intact.
func TestMCPRuntimeAgentsPlayAndCannotImpersonate(t *testing.T) {
	bin := testBinary(t)
	sc := writeScenario(t, fmt.Sprintf(`
scenario "mcp_runtime" {
  ticks           = 3
  action_deadline = "20s"
  ready_timeout   = "60s"
}
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 3
}
agent "victim" {
  runtime = "mcp"
  command = %q
  args    = [%q, "{mcp_config}", "polite"]
}
agent "hostile" {
  runtime = "mcp"
  command = %q
  args    = [%q, "{mcp_config}", "hostile"]
}
`, bin, mcpClientArg, bin, mcpClientArg))
	res, recs, err := runScenario(t, sc)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != 3 {
		t.Fatalf("status %s after %d ticks, want finished after 3", res.Status, res.Ticks)
	}
	for _, id := range []string{"victim", "hostile"} {
		if ar := agentResult(t, res, id); ar.Actions != 3 || ar.Rejected != 0 {
			t.Errorf("%s: %d actions, %d rejected; want 3 and 0", id, ar.Actions, ar.Rejected)
		}
	}
	var who []string
	for _, r := range recs {
		if r.Kind == events.Violation && strings.Contains(string(r.Data), "victim") {
			who = append(who, string(r.Agent))
		}
	}
	sort.Strings(who)
	if len(who) == 0 || who[0] != "hostile" {
		t.Errorf("violations naming the victim's subject were by %v, want hostile", who)
	}
}
