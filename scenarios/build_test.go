package scenarios_test

import (
	"strings"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

// A scenario built in Go passes Check, and the HCL it renders loads back as
// the same scenario.
func TestBuiltScenarioRoundTrips(t *testing.T) {
	kind, _ := world.LookupKind("test_kind")
	s := scenarios.New("arena").Realtime(60)
	s.Ticks = 100
	s.MaxCatchUp = 5
	s.World = scenarios.World{Impl: kind}
	npc := scenarios.NewAgent("npc", scenarios.RuntimeBuiltin, "test_prog")
	npc.Count, npc.Restart, npc.MaxTurns = 3, scenarios.RestartOnFailure, 40
	npc.Env = []string{"PATH"}
	npc.Memory, npc.Pids, npc.CPU = 256<<20, 64, 0.5
	s.Add(npc, scenarios.NewAgent("crowd", scenarios.RuntimeInProc, "wanderer"))
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	back, diags := scenarios.Parse(s.Source, "arena.hcl")
	if diags.HasErrors() {
		t.Fatalf("rendered scenario does not load: %s\n%s", diags.Error(), s.Source)
	}
	if back.Stepping != scenarios.SteppingRealtime || back.TickRate != 60 || back.MaxCatchUp != 5 || back.Ticks != 100 ||
		back.World.Kind != "test_kind" || len(back.Agents) != 2 {
		t.Fatalf("loaded back %+v\nfrom\n%s", back, s.Source)
	}
	a := back.Agents[0]
	if a.Memory != 256<<20 || a.Pids != 64 || a.CPU != 0.5 {
		t.Errorf("limits loaded back: memory %d, pids %d, cpu %g\n%s", a.Memory, a.Pids, a.CPU, s.Source)
	}
	if a.Count != 3 || a.Restart != scenarios.RestartOnFailure || a.MaxTurns != 40 || a.RestartWindow != time.Minute ||
		len(a.Env) != 1 || back.Agents[1].Runtime != scenarios.RuntimeInProc {
		t.Errorf("agents loaded back: %+v", back.Agents)
	}
}

// Check reports every problem of a scenario built in Go at once.
func TestCheckReportsEveryProblem(t *testing.T) {
	s := scenarios.New("bad name")
	s.Stepping = scenarios.SteppingRealtime // no tick rate
	s.MissingAction = scenarios.MissingAbort
	dup := scenarios.NewAgent("a", scenarios.RuntimeBuiltin, "no_such_prog")
	s.Add(dup, scenarios.NewAgent("a", scenarios.RuntimeInProc, "x"), scenarios.NewAgent("b", "docker", "x"))
	err := s.Check()
	if err == nil {
		t.Fatal("Check accepted it")
	}
	for _, want := range []string{`scenario name "bad name"`, "tick rate 0", `"abort" does not go with realtime`,
		`no builtin agent "no_such_prog"`, `agent "a": defined twice`, `runtime "docker"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check error lacks %q:\n%v", want, err)
		}
	}
}

// A file may name in-process agents (for an embedding program); validate
// warns that terrarium run cannot run them.
func TestInProcAgentWarns(t *testing.T) {
	src := `scenario "s" {}
world "test_kind" {}
agent "crowd" {
  runtime = "inproc"
  command = "villager"
}
`
	s, diags := scenarios.Parse([]byte(src), "s.hcl")
	if s == nil || diags.HasErrors() || len(diags) != 1 || diags[0].Subject.Start.Line != 4 ||
		!strings.Contains(diags[0].Detail, "terrarium run cannot run them") {
		t.Fatalf("Parse = %v, %v", s, diags)
	}
}

// A claude agent built in Go gets the file's defaults, passes Check, and
// its LLM settings and budgets render and load back; a bad permission mode
// or tool name is refused.
func TestBuiltClaudeAgentRoundTrips(t *testing.T) {
	kind, _ := world.LookupKind("test_kind")
	s := scenarios.New("llm")
	s.World = scenarios.World{Impl: kind}
	s.Budget.MaxCostUSD = 1.5
	npc := scenarios.NewAgent("sage", scenarios.RuntimeClaude, "")
	if npc.Command != scenarios.DefaultClaudeCommand || npc.LLM.Model != scenarios.DefaultModel || npc.LLM.PermissionMode != scenarios.DefaultPermissionMode {
		t.Fatalf("NewAgent(claude) = %+v, want the file's defaults", npc)
	}
	npc.Count, npc.Env = 2, []string{"ANTHROPIC_API_KEY"}
	npc.LLM.SystemPrompt = "You chase runners.\nBe quick."
	npc.LLM.AllowedTools = []string{"Read"}
	npc.LLM.Budget.MaxModelTurns, npc.LLM.Budget.MaxTokens = 40, 100000
	mcp := scenarios.NewAgent("tool", scenarios.RuntimeMCP, "/bin/true")
	s.Add(npc, mcp, scenarios.NewAgent("crowd", scenarios.RuntimeInProc, "x"))
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	back, diags := scenarios.Parse(s.Source, "llm.hcl")
	if diags.HasErrors() {
		t.Fatalf("rendered scenario does not load: %s\n%s", diags.Error(), s.Source)
	}
	a := back.Agents[0]
	if a.Runtime != scenarios.RuntimeClaude || a.Count != 2 || a.LLM.Model != scenarios.DefaultModel || a.LLM.SystemPrompt != npc.LLM.SystemPrompt ||
		a.LLM.PermissionMode != scenarios.DefaultPermissionMode || len(a.LLM.AllowedTools) != 1 || a.LLM.Budget != npc.LLM.Budget || back.Budget != s.Budget {
		t.Errorf("loaded back %+v (budget %+v)\nfrom\n%s", a, back.Budget, s.Source)
	}
	if m := back.Agents[1]; m.Runtime != scenarios.RuntimeMCP || m.LLM.MCPConfigEnv != scenarios.DefaultMCPConfigEnv {
		t.Errorf("mcp agent loaded back as %+v", m)
	}

	bad := scenarios.New("llm")
	npc.LLM.PermissionMode, npc.LLM.AllowedTools, npc.LLM.Budget.MaxTokens = "yolo", []string{"rm -rf"}, -1
	bad.Add(npc)
	err := bad.Check()
	for _, want := range []string{`permission mode "yolo"`, `allowed tool "rm -rf"`, "a negative budget"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check error lacks %q: %v", want, err)
		}
	}
}
