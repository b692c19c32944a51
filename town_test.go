package terrarium_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/llmtest"
	"github.com/terrarium-sim/terrarium/agents/mcpserver"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/workspace"
)

// villager plays the town through the world's tools: at tick 1 it first
// writes its contribution into the shared plan under a lease
// (lease_acquire, Read, Edit, lease_commit, lease_release), then says it;
// at tick 2 it walks to the hall, then it waits; after the tick's action it
// ends its turn.
func villager(id, contribution string) llmtest.Script {
	var mu sync.Mutex
	var lease struct {
		File  string `json:"file"`
		Token uint64 `json:"token"`
	}
	tool := func(name string, in map[string]any) llmtest.Reply {
		return llmtest.Reply{Tool: name, Input: in}
	}
	return func(c *llmtest.Call) llmtest.Reply {
		mu.Lock()
		defer mu.Unlock()
		out, _ := c.LastToolResult()
		switch c.LastToolUse() {
		case mcpserver.ToolName(mcpserver.ToolLeaseAcquire):
			// The CLI may append a reminder to the tool's JSON: decode the first value.
			if err := json.NewDecoder(strings.NewReader(out)).Decode(&lease); err != nil || lease.File == "" {
				return tool(mcpserver.ToolName("say"), map[string]any{"text": contribution + " (no lease: " + out + ")"})
			}
			return tool("Read", map[string]any{"file_path": lease.File})
		case "Read":
			return tool("Edit", map[string]any{"file_path": lease.File, "old_string": "## Who brings what\n", "new_string": "## Who brings what\n- " + id + ": " + contribution + "\n"})
		case "Edit":
			return tool(mcpserver.ToolName(mcpserver.ToolLeaseCommit), map[string]any{"token": lease.Token})
		case mcpserver.ToolName(mcpserver.ToolLeaseCommit):
			return tool(mcpserver.ToolName(mcpserver.ToolLeaseRelease), map[string]any{"token": lease.Token})
		case mcpserver.ToolName(mcpserver.ToolLeaseRelease):
			return tool(mcpserver.ToolName("say"), map[string]any{"text": contribution})
		case "":
		default: // the tick's action was sent
			return llmtest.Reply{Text: "ok"}
		}
		var obs struct {
			Tick int `json:"tick"`
		}
		if err := json.Unmarshal(observationOf(c.LastUserText()), &obs); err != nil || obs.Tick == 0 {
			return llmtest.Reply{Text: "waiting for a tick"}
		}
		switch obs.Tick {
		case 1:
			return tool(mcpserver.ToolName(mcpserver.ToolLeaseAcquire), map[string]any{"path": "plan.md", "wait_ms": 15000})
		case 2:
			return tool(mcpserver.ToolName("move"), map[string]any{"to": "hall"})
		}
		return tool(mcpserver.ToolName("wait"), map[string]any{})
	}
}

// The shipped town scenario, shortened, with scripted models: the three
// claude villagers' tool calls reach the world (they speak, hear each
// other, walk to the hall), next to the two scripted townsfolk, and their
// edits of the shared plan go through leases: the plan ends with all three
// contributions, in the order the leases were granted (issue 9, test 1).
// It runs as the shipped scenario does: with enforcement "auto", which is
// permissions mode when the host is root (agents as their own users; the
// CLI writes the plan in place) and detect mode otherwise, or with agent
// users off (agents as the host's user; the CLI's Edit replaces the plan by
// a rename, which must count as its holder's change, not a violation).
func TestTownScenarioWithClaudeVillagers(t *testing.T) {
	t.Run("auto", func(t *testing.T) { testTown(t, terrarium.AgentUsersAuto) })
	t.Run("agent-users-off", func(t *testing.T) { testTown(t, terrarium.AgentUsersOff) })
}

func testTown(t *testing.T, users string) {
	cli := claudeCLI(t)
	contrib := map[string]string{"ada": "I will play the fiddle.", "bob": "I will bake bread.", "cy": "I will light the hall."}
	scripts := map[string]llmtest.Script{}
	for id, c := range contrib {
		scripts[id] = villager(id, c)
	}
	srv := startLLM(t, scripts)
	sc := loadScenario(t, "scenarios/town.hcl")
	sc.Ticks = 4
	sc.ActionDeadline = 60e9
	for i := range sc.Agents {
		if sc.Agents[i].Runtime == scenarios.RuntimeClaude {
			sc.Agents[i].Command, sc.Agents[i].Path = cli, cli // $TERRARIUM_CLAUDE, or the pinned one the scenario names
		}
	}
	res, recs, err := runLLM(t, sc, srv, func(c *terrarium.Config) { c.AgentUsers = users })
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	want := workspace.Detect
	if users != terrarium.AgentUsersOff && os.Geteuid() == 0 {
		want = workspace.Permissions
	}
	if res.Workspace == nil || res.Workspace.Enforcement != want {
		t.Fatalf("workspace %+v, want enforcement %s", res.Workspace, want)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != 4 {
		t.Fatalf("status %s after %d ticks, want finished after 4", res.Status, res.Ticks)
	}
	b, _ := json.Marshal(res.World)
	var town struct {
		Positions map[string]string `json:"positions"`
		Log       []struct {
			From, Text string
		} `json:"log"`
	}
	if err := json.Unmarshal(b, &town); err != nil {
		t.Fatal(err)
	}
	said := map[string]string{}
	for _, h := range town.Log {
		said[h.From] = h.Text
	}
	for id, c := range contrib {
		if said[id] != c {
			t.Errorf("%s said %q, want %q", id, said[id], c)
		}
		if town.Positions[id] != "hall" {
			t.Errorf("%s is in the %s, want the hall", id, town.Positions[id])
		}
		ar := agentResult(t, res, id)
		if ar.Actions != 4 || ar.Missing != 0 {
			t.Errorf("%s: %d actions, %d missing; want 4 and 0", id, ar.Actions, ar.Missing)
		}
		checkUsage(t, ar, srv)
		// Its tick-2 prompt told it what the other two said at tick 1.
		var heard string
		for _, req := range srv.Requests(id) {
			if last := req.Messages[len(req.Messages)-1].Content.Text(); strings.Contains(last, "Tick 2 (") {
				heard = last
			}
		}
		for other, oc := range contrib {
			if other != id && !strings.Contains(heard, oc) {
				t.Errorf("%s did not hear %s's %q at tick 2", id, other, oc)
			}
		}
	}
	checkSharedPlan(t, res, recs, srv, contrib)
	if said["crier"] == "" {
		t.Error("the scripted crier said nothing")
	}
	if res.LLM == nil || res.LLM.CostUSD <= 0 {
		t.Errorf("run LLM totals %+v, want a cost", res.LLM)
	}
}

// checkSharedPlan checks that each villager's line is in plan.md, that each
// edit was granted, committed and released under its own lease, one holder
// after the other, and that nobody wrote the plan without one.
func checkSharedPlan(t *testing.T, res *terrarium.Result, recs []events.Record, srv *llmtest.Server, contrib map[string]string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(res.Dir, "workspace", "shared", "plan.md"))
	if err != nil {
		t.Fatal(err)
	}
	plan := string(b)
	t.Logf("plan.md:\n%s", plan)
	var order []string // holders of plan.md, as granted
	committed := map[string]bool{}
	holding := ""
	for _, r := range recs {
		if !strings.Contains(string(r.Data), `"plan.md"`) {
			continue
		}
		switch r.Kind {
		case workspace.EventLeaseGranted:
			if holding != "" {
				t.Errorf("plan.md granted to %s while %s held it", r.Agent, holding)
			}
			holding = string(r.Agent)
			order = append(order, holding)
		case workspace.EventLeaseReleased:
			if string(r.Agent) != holding {
				t.Errorf("plan.md released by %s, held by %q", r.Agent, holding)
			}
			holding = ""
		case workspace.EventFileCommitted:
			committed[string(r.Agent)] = true
		case events.Violation, workspace.EventFileRestored:
			t.Errorf("%s: %s", r.Kind, r.Data)
		}
	}
	if len(order) != 3 {
		t.Errorf("plan.md granted to %v, want each villager once", order)
	}
	// Each villager inserted its line under the heading: the last holder's
	// line comes first.
	at := -1
	for i := len(order) - 1; i >= 0; i-- {
		id := order[i]
		line := "- " + id + ": " + contrib[id] + "\n"
		j := strings.Index(plan, line)
		if j < 0 || j < at {
			t.Errorf("plan.md lacks %q after the later holders' lines", line)
		}
		at = j
		if !committed[id] {
			t.Errorf("%s's edit of plan.md was not committed under its lease", id)
		}
	}
	if t.Failed() {
		for id := range contrib {
			for _, r := range srv.Requests(id) {
				c := llmtest.Call{Request: r}
				if out, ok := c.LastToolResult(); ok {
					t.Logf("%s: %s -> %.300s", id, c.LastToolUse(), out)
				}
			}
		}
	}
}
