package terrarium_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/llmtest"
)

// The scenario's model-turn and cost budgets cover all claude agents
// together (as max_tokens does, TestClaudeRunBudgetStopsAllLLMAgents):
// when the run's total reaches one, every claude agent is stopped with the
// run's reason, the counts match what the model returned, and the world
// goes on to its end.
func TestClaudeRunBudgetsOfTurnsAndCost(t *testing.T) {
	cli := claudeCLI(t)
	for _, c := range []struct {
		name, setting, reason string
		reached               func(u terrarium.Result) bool
	}{
		// Two model calls per agent and tick: four per tick.
		{"turns", "max_model_turns = 6", "run max_model_turns 6 reached", func(r terrarium.Result) bool { return r.LLM.Turns >= 6 }},
		// $0.0006 a call (100 input and 20 output tokens at $3 and $15 per million).
		{"cost", "max_cost_usd = 0.003", "run max_cost_usd 0.003 reached", func(r terrarium.Result) bool { return r.LLM.CostUSD >= 0.003-1e-12 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := startLLM(t, map[string]llmtest.Script{"a": pdPlayer("C"), "b": pdPlayer("D")})
			sc := writeScenario(t, fmt.Sprintf(`
scenario "llm_run_budget_%s" {
  ticks           = 6
  action_deadline = "30s"
  ready_timeout   = "60s"
  %s
}
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 6
}
agent "a" {
  runtime = "claude"
  command = %q
}
agent "b" {
  runtime = "claude"
  command = %q
}
`, c.name, c.setting, cli, cli))
			res, _, err := runLLM(t, sc, srv)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if res.Status != terrarium.StatusFinished || res.Ticks != 6 {
				t.Fatalf("status %s after %d ticks, want finished after 6", res.Status, res.Ticks)
			}
			var turns int
			for _, id := range []string{"a", "b"} {
				ar := agentResult(t, res, id)
				if ar.Status != "stopped" || !strings.HasPrefix(ar.Reason, c.reason) {
					t.Errorf("%s: status %s, reason %q; want stopped: %s", id, ar.Status, ar.Reason, c.reason)
				}
				checkUsage(t, ar, srv)
				turns += ar.LLM.Turns
			}
			if res.LLM == nil || res.LLM.Turns != turns || !c.reached(*res) {
				t.Errorf("run total %+v, want the agents' sum (%d turns) at or over the budget", res.LLM, turns)
			}
			// Stopped at the budget, not long after: at most the replies in
			// flight (one per agent) beyond the four calls of the tick.
			if calls := srv.Calls("a") + srv.Calls("b"); calls > 12 {
				t.Errorf("%d model calls, want the agents stopped within the tick the budget was reached", calls)
			}
		})
	}
}
