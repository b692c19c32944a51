package terrarium_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/llmtest"
	"github.com/terrarium-sim/terrarium/agents/mcpserver"
)

// villager plays the town through the world's tools: at tick 1 it says
// its contribution to the festival, at tick 2 it walks to the hall, then
// it waits; after each tool's result it ends its turn.
func villager(contribution string) llmtest.Script {
	return func(c *llmtest.Call) llmtest.Reply {
		if _, ok := c.LastToolResult(); ok {
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
			return llmtest.Reply{Tool: mcpserver.ToolName("say"), Input: map[string]any{"text": contribution}}
		case 2:
			return llmtest.Reply{Tool: mcpserver.ToolName("move"), Input: map[string]any{"to": "hall"}}
		}
		return llmtest.Reply{Tool: mcpserver.ToolName("wait"), Input: map[string]any{}}
	}
}

// The shipped town scenario, shortened, with scripted models: the three
// claude villagers' tool calls reach the world (they speak, hear each
// other, walk to the hall), next to the two scripted townsfolk.
func TestTownScenarioWithClaudeVillagers(t *testing.T) {
	claudeCLI(t) // the scenario names the pinned CLI itself
	contrib := map[string]string{"ada": "I will play the fiddle.", "bob": "I will bake bread.", "cy": "I will light the hall."}
	scripts := map[string]llmtest.Script{}
	for id, c := range contrib {
		scripts[id] = villager(c)
	}
	srv := startLLM(t, scripts)
	sc := loadScenario(t, "scenarios/town.hcl")
	sc.Ticks = 4
	sc.ActionDeadline = 60e9
	res, _, err := runLLM(t, sc, srv)
	if err != nil {
		t.Fatalf("run: %v", err)
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
	if said["crier"] == "" {
		t.Error("the scripted crier said nothing")
	}
	if res.LLM == nil || res.LLM.CostUSD <= 0 {
		t.Errorf("run LLM totals %+v, want a cost", res.LLM)
	}
}
