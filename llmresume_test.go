package terrarium_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/llmtest"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/internal/leaktest"
)

// A run with a claude agent stopped in an orderly way and resumed with
// `terrarium resume`: the checkpoint's llm part carries the agent's counts
// (so its budget is enforced over both runs, and result.json counts every
// model call the two runs made) and its session (the resumed CLI's first
// request carries the conversation from before the stop).
func TestClaudeResumeKeepsCountsBudgetAndSession(t *testing.T) {
	cli := claudeCLI(t)
	srv := startLLM(t, map[string]llmtest.Script{"a": pdPlayer("C")})
	const budget = 8 // model turns: two per tick (act, then end the turn)
	sc := writeScenario(t, fmt.Sprintf(`
scenario "llm_resume_budget" {
  ticks           = 12
  action_deadline = "60s"
  ready_timeout   = "60s"
}
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 12
}
agent "a" {
  runtime         = "claude"
  command         = %q
  max_model_turns = %d
}
agent "bot" {
  runtime = "builtin"
  command = "tit_for_tat"
}
`, cli, budget))
	leaktest.Goroutines(t)
	dir := filepath.Join(openTempDir(t), "run")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: testLogger(t), Dir: dir, Env: llmEnv(srv),
		Progress: func(p terrarium.Progress) {
			if p.Tick == 2 {
				cancel()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	res1, err := h.Run(ctx)
	h.Close()
	if !errors.Is(err, context.Canceled) || res1.Status != terrarium.StatusInterrupted {
		t.Fatalf("stopped run: %v, status %s", err, res1.Status)
	}
	first := agentResult(t, res1, "a")
	before := srv.Calls("a")
	if first.LLM == nil || first.LLM.Turns != before || before < 4 || before >= budget {
		t.Fatalf("first run: counted %+v, the model got %d calls; want them equal, at least 4 and under the budget", first.LLM, before)
	}

	h2, rep, err := terrarium.Resume(dir, terrarium.Config{Logger: testLogger(t), Env: llmEnv(srv)})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel2()
	res, err := h2.Run(ctx2)
	h2.Close()
	if err != nil {
		t.Fatalf("resumed run (from tick %d): %v", rep.Tick, err)
	}
	recs := verifiedEvents(t, dir)
	if t.Failed() {
		dumpLogs(t, dir)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != 12 {
		t.Errorf("resumed run: status %s after %d ticks, want finished after 12 (the world goes on)", res.Status, res.Ticks)
	}
	a := agentResult(t, res, "a")
	// Every model call of both runs is counted once, and the budget held
	// over both: the resumed agent was stopped after a few more turns, not
	// a fresh budget's worth.
	checkUsage(t, a, srv)
	if a.Status != "stopped" || !strings.Contains(a.Reason, fmt.Sprintf("max_model_turns %d reached", budget)) {
		t.Errorf("a: status %s, reason %q; want stopped by its max_model_turns over both runs", a.Status, a.Reason)
	}
	if after := srv.Calls("a") - before; after >= budget {
		t.Errorf("a made %d model calls after the resume, a whole budget's worth: its counts started afresh", after)
	}
	if res.LLM == nil || res.LLM.Turns != srv.Calls("a") {
		t.Errorf("run total %+v, want every call of both runs (%d)", res.LLM, srv.Calls("a"))
	}
	// The cost of both runs, each session cost counted once (the resumed
	// CLI reports its session's cost from where the stopped one left it).
	u := srv.Usage("a")
	if want := float64(u.InputTokens)*3e-6 + float64(u.OutputTokens)*15e-6; math.Abs(a.LLM.CostUSD-want) > 1e-9 || res.LLM == nil || math.Abs(res.LLM.CostUSD-want) > 1e-9 {
		t.Errorf("a: cost $%.6f (run $%+v), want $%.6f for the tokens the model returned over both runs", a.LLM.CostUSD, res.LLM, want)
	}
	// The session went on: the first request after the resume carries
	// tick 1's prompt.
	reqs := srv.Requests("a")
	if len(reqs) <= before {
		t.Fatal("a made no request after the resume")
	}
	var history strings.Builder
	for _, m := range reqs[before].Messages {
		history.WriteString(m.Content.Text())
	}
	if !strings.Contains(history.String(), "Tick 1 (") {
		t.Error("the first request after the resume does not carry tick 1's prompt: the session was not resumed")
	}
	sessions := map[string]bool{}
	for _, r := range eventsOf(recs, events.LLMResult, "a") {
		sessions[string(data(r)["session"].(string))] = true
	}
	if len(sessions) != 1 {
		t.Errorf("llm.result sessions %v, want the one session over both runs", sessions)
	}
}
