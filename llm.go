package terrarium

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/mcpserver"
	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

// MCPConfigFile is the name of the MCP config file the host writes into
// the workspace of each claude and mcp agent.
const MCPConfigFile = ".terrarium-mcp.json"

// ClaudeConfigDir is the claude CLI's config directory (CLAUDE_CONFIG_DIR)
// inside each claude agent's workspace: its own, never shared.
const ClaudeConfigDir = ".claude"

// llmAgent is the host's state of one claude or mcp agent; agentRun.mu guards it.
type llmAgent struct {
	claude  bool
	config  string // the MCP config file
	driver  *agents.ClaudeDriver
	usage   agents.LLMUsage // over all its processes
	session string          // the CLI's session id, resumed on restart
	cost    float64         // the session's total_cost_usd, as last reported
	reason  string          // why it was stopped early
	system  string          // the system prompt
	// costBase is the session cost a resumed run's first CLI counts from
	// (its session's last process exited cleanly: llm_checkpoint.go).
	costBase float64
}

// prepareLLM sets up a claude or mcp agent: its MCP config file (the
// host's MCP server, run as this agent with its own bus credentials), its
// arguments and its environment. extra is the agent's TERRARIUM_* set; the
// bus credentials are taken out of it, as only the MCP server needs them.
func (r *run) prepareLLM(a *agentRun, i int, ws, exe string, extra map[string]string) error {
	spec := a.spec
	id := a.seat.ID
	l := &llmAgent{claude: spec.Runtime == scenarios.RuntimeClaude}
	a.llm = l
	if l.claude {
		if err := r.restoreLLM(a); err != nil {
			return fmt.Errorf("agent %s: %w", id, err)
		}
	}

	srvEnv := map[string]string{}
	for k, v := range extra {
		srvEnv[k] = v
	}
	srvEnv[agents.EnvBuiltin] = mcpserver.BuiltinName
	srvEnv[mcpserver.EnvWorldKind] = r.h.sc.World.Kind
	srvEnv["GOMAXPROCS"] = "1"
	cfg := map[string]any{"mcpServers": map[string]any{mcpserver.Name: map[string]any{
		"type": "stdio", "command": exe, "args": []string{}, "env": srvEnv,
	}}}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("agent %s: mcp config: %w", id, err)
	}
	l.config = filepath.Join(ws, MCPConfigFile)
	if err := os.WriteFile(l.config, b, 0o600); err != nil {
		return fmt.Errorf("agent %s: mcp config: %w", id, err)
	}
	if err := r.iso.giveFile(l.config, i); err != nil {
		return fmt.Errorf("agent %s: mcp config: %w", id, err)
	}
	for _, k := range []string{agents.EnvNATSURL, agents.EnvNATSUser, agents.EnvNATSPass, agents.EnvInboxPrefix} {
		delete(extra, k)
	}

	if !l.claude {
		extra[spec.LLM.MCPConfigEnv] = l.config
		a.args = make([]string, len(spec.Args))
		for j, arg := range spec.Args {
			a.args[j] = strings.ReplaceAll(arg, "{mcp_config}", l.config)
		}
		return nil
	}
	cd := filepath.Join(ws, ClaudeConfigDir)
	if err := os.MkdirAll(cd, 0o700); err != nil {
		return fmt.Errorf("agent %s: claude config directory: %w", id, err)
	}
	if err := r.iso.giveFile(cd, i); err != nil {
		return fmt.Errorf("agent %s: claude config directory: %w", id, err)
	}
	extra["CLAUDE_CONFIG_DIR"] = cd
	// Its own temporary directory: the CLI's shell tool keeps files there,
	// and a run directory under /tmp leaves /tmp itself out of a confined
	// agent's reach (workspace.RulesFor).
	tmp := filepath.Join(ws, ".tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return fmt.Errorf("agent %s: temporary directory: %w", id, err)
	}
	if err := r.iso.giveFile(tmp, i); err != nil {
		return fmt.Errorf("agent %s: temporary directory: %w", id, err)
	}
	extra["TMPDIR"] = tmp
	extra["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1"
	l.system = r.systemPrompt(a, ws)
	return nil
}

// claudeArgs are the CLI's arguments for the agent's next process.
func (r *run) claudeArgs(a *agentRun) []string {
	spec := a.spec
	kind, _ := world.LookupKind(r.h.sc.World.Kind)
	var tools []string
	for _, t := range mcpserver.Tools(kind) {
		tools = append(tools, mcpserver.ToolName(t))
	}
	tools = append(tools, spec.LLM.AllowedTools...)
	a.mu.Lock()
	l := a.llm
	session, used := l.session, l.usage
	a.mu.Unlock()
	args := []string{"-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose",
		"--mcp-config", l.config, "--strict-mcp-config",
		"--model", spec.LLM.Model, "--permission-mode", spec.LLM.PermissionMode,
		"--allowedTools", strings.Join(tools, ","),
		// The shared tree is outside its working directory: its file tools
		// may reach it (writes still need a lease, docs/workspace.md).
		"--add-dir", filepath.Join(r.dir, "workspace", "shared"),
		"--system-prompt", l.system,
	}
	if m := spec.LLM.Budget.MaxModelTurns; m > 0 {
		// The CLI stops a prompt that would loop past the budget itself.
		args = append(args, "--max-turns", fmt.Sprint(max(1, m-used.Turns)))
	}
	if session != "" {
		args = append(args, "--resume", session)
	}
	return append(args, spec.Args...)
}

func (r *run) systemPrompt(a *agentRun, ws string) string {
	kind, _ := world.LookupKind(r.h.sc.World.Kind)
	var sb strings.Builder
	if kind.Name != "" {
		fmt.Fprintf(&sb, "You are agent %s in a Terrarium simulation (world %q). ", a.seat.ID, kind.Name)
	} else { // the embedding program's own world
		fmt.Fprintf(&sb, "You are agent %s in a Terrarium simulation (scenario %q). ", a.seat.ID, r.h.sc.Name)
	}
	if kind.Doc != "" {
		fmt.Fprintf(&sb, "The world: %s. ", kind.Doc)
	}
	fmt.Fprintf(&sb, "Each user message is one tick's observation. Act only through the tools of the %q MCP server (%s): one action per tick. ",
		mcpserver.Name, strings.Join(mcpserver.Tools(kind), ", "))
	fmt.Fprintf(&sb, "Your own directory is %s; files shared with the other agents are under %s.", ws, filepath.Join(r.dir, "workspace", "shared"))
	fmt.Fprintf(&sb, " To change a shared file, hold its lease: %s (it may wait for the holder), edit the file, %s, then %s so others can edit it; a change without a lease is refused or undone.",
		mcpserver.ToolLeaseAcquire, mcpserver.ToolLeaseCommit, mcpserver.ToolLeaseRelease)
	if p := strings.TrimSpace(a.spec.LLM.SystemPrompt); p != "" {
		sb.WriteString("\n\n")
		sb.WriteString(p)
	}
	return sb.String()
}

// startClaude drives a claude agent's new process.
func (r *run) startClaude(a *agentRun, p *agents.Process) error {
	id := a.seat.ID
	a.mu.Lock()
	base := a.llm.costBase // a resumed run's first process
	if old := a.proc; old != nil {
		base = 0
		if old.Exit().Clean() {
			base = a.llm.cost
		}
	}
	a.mu.Unlock()
	d, err := agents.NewClaudeDriver(p, agents.ClaudeConfig{
		CostBase: base,
		OnResult: func(res agents.ClaudeResult, delta agents.LLMUsage) { r.onLLMResult(a, res, delta) },
		OnTurn:   func(turns, input int) { r.onLLMTurn(a, turns, input) },
		OnSession: func(s string) {
			a.mu.Lock()
			known := a.llm.session == s
			a.llm.session = s
			a.mu.Unlock()
			if !known {
				r.events.Emit(events.LLMSession, r.tick(), id, map[string]any{"session": s})
			}
		},
	})
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.llm.driver = d
	// A restart, or the first process of a resumed run (the session comes
	// from the checkpoint).
	resumed := a.llm.session != ""
	a.mu.Unlock()
	if resumed {
		// A resumed CLI starts its MCP servers only once it has input: this
		// prompt brings the agent back (its MCP server says hello), and
		// tells the model what happened.
		d.Prompt(fmt.Sprintf("Your process was restarted after tick %d and your session resumed. The next tick's observation follows; you may call %s with wait=true.", r.tick(), mcpserver.ToolObserve))
	}
	r.bridges.Add(1)
	go func() {
		defer r.bridges.Done()
		if err := d.Run(r.bridgeCtx); err != nil && r.bridgeCtx.Err() == nil {
			r.log.Warn("claude driver ended", "agent", id, "error", err)
		}
	}()
	return nil
}

// promptLLM gives a claude agent its observation for tick t as a prompt.
func (r *run) promptLLM(a *agentRun, t world.Tick, deadline time.Time, obs json.RawMessage) {
	a.mu.Lock()
	d := a.llm.driver
	spent := a.spent
	a.mu.Unlock()
	if d == nil || spent {
		return
	}
	d.Prompt(fmt.Sprintf("Tick %d (answer before %s).\nYour observation:\n%s\nSend one action for tick %d with the act tool or one of the world's tools.",
		t, deadline.UTC().Format(time.RFC3339), obs, t))
}

func usageFields(u agents.LLMUsage) map[string]any {
	return map[string]any{"turns": u.Turns, "input_tokens": u.InputTokens, "output_tokens": u.OutputTokens,
		"cache_read_input_tokens": u.CacheReadTokens, "cache_creation_input_tokens": u.CacheCreationTokens,
		"tokens": u.Tokens(), "cost_usd": u.CostUSD}
}

func (r *run) onLLMResult(a *agentRun, res agents.ClaudeResult, delta agents.LLMUsage) {
	id := a.seat.ID
	a.mu.Lock()
	a.llm.usage = a.llm.usage.Add(delta)
	a.llm.cost = res.TotalCost
	total := a.llm.usage
	a.mu.Unlock()
	r.llmMu.Lock()
	r.llmTotal = r.llmTotal.Add(delta)
	run := r.llmTotal
	r.llmMu.Unlock()
	f := usageFields(delta)
	f["subtype"] = res.Subtype
	f["is_error"] = res.IsError
	f["session"] = res.SessionID
	f["total"] = usageFields(total)
	r.events.Emit(events.LLMResult, r.tick(), id, f)
	if reason := budgetSpent(a.spec.LLM.Budget, total, 0, 0, "", res.Subtype == "error_max_turns"); reason != "" {
		r.stopLLM(a, reason)
	}
	if reason := budgetSpent(r.h.sc.Budget, run, 0, 0, "run ", false); reason != "" {
		for _, seat := range r.seats {
			if o := r.agents[seat.ID]; o.llm != nil && o.llm.claude {
				r.stopLLM(o, reason)
			}
		}
	}
}

// onLLMTurn checks the budgets against a prompt still being answered.
func (r *run) onLLMTurn(a *agentRun, liveTurns, liveInput int) {
	a.mu.Lock()
	total := a.llm.usage
	a.mu.Unlock()
	b := a.spec.LLM.Budget
	if b.MaxModelTurns > 0 && total.Turns+liveTurns > b.MaxModelTurns {
		r.stopLLM(a, fmt.Sprintf("max_model_turns %d reached", b.MaxModelTurns))
		return
	}
	if reason := budgetSpent(b, total, 0, liveInput, "", false); reason != "" {
		r.stopLLM(a, reason)
	}
}

// budgetSpent says which of b's limits u (with a prompt's live counts) has
// reached, or "".
func budgetSpent(b scenarios.LLMBudget, u agents.LLMUsage, liveTurns, liveTokens int, prefix string, cliMaxTurns bool) string {
	switch {
	case b.MaxModelTurns > 0 && (u.Turns+liveTurns >= b.MaxModelTurns || cliMaxTurns):
		return fmt.Sprintf("%smax_model_turns %d reached", prefix, b.MaxModelTurns)
	case b.MaxTokens > 0 && u.Tokens()+liveTokens >= b.MaxTokens:
		return fmt.Sprintf("%smax_tokens %d reached (%d used)", prefix, b.MaxTokens, u.Tokens()+liveTokens)
	case b.MaxCostUSD > 0 && u.CostUSD >= b.MaxCostUSD:
		return fmt.Sprintf("%smax_cost_usd %g reached (%.6f used)", prefix, b.MaxCostUSD, u.CostUSD)
	}
	return ""
}

// stopLLM stops an LLM agent whose budget is spent, for good: it is not
// observed again, its CLI's input ends (it finishes and exits), and after
// StopGrace its process group is terminated.
func (r *run) stopLLM(a *agentRun, reason string) {
	id := a.seat.ID
	a.mu.Lock()
	if a.spent {
		a.mu.Unlock()
		return
	}
	a.spent = true
	a.llm.reason = reason
	total := a.llm.usage
	a.mu.Unlock()
	r.log.Warn("LLM agent stopped: budget spent", "agent", id, "reason", reason)
	f := usageFields(total)
	f["reason"] = reason
	r.events.Emit(events.LLMStopped, r.tick(), id, f)
	r.loop.Gone(id)
	stop, err := bus.Encode(bus.Envelope{Kind: bus.KindStop, Run: r.res.Run, Agent: string(id), Tick: uint64(r.tick()), Seq: r.seq.Add(1)})
	if err == nil {
		_ = r.nc.Publish(bus.ToSubject(r.res.Run, string(id), bus.KindStop), stop)
	}
	r.endLLMProcess(a)
}

// endLLMProcess ends a claude agent's input and, after StopGrace,
// terminates its process if it is still there.
func (r *run) endLLMProcess(a *agentRun) {
	a.mu.Lock()
	d, p := a.llm.driver, a.proc
	a.mu.Unlock()
	if d == nil || p == nil {
		return
	}
	d.Stop()
	r.bridges.Add(1)
	go func() {
		defer r.bridges.Done()
		t := time.NewTimer(r.h.cfg.StopGrace)
		defer t.Stop()
		select {
		case <-p.Done():
		case <-t.C:
			_ = p.Terminate(context.Background())
		}
	}()
}

// endLLM ends every claude agent's input at the end of the run.
func (r *run) endLLM() {
	for _, seat := range r.seats {
		if a := r.agents[seat.ID]; a != nil && a.llm != nil && a.llm.claude {
			a.mu.Lock()
			d := a.llm.driver
			a.mu.Unlock()
			if d != nil {
				d.Stop()
			}
		}
	}
}

// llmResults fills the LLM parts of result.json.
func (r *run) llmResults(out []AgentResult) *agents.LLMUsage {
	var any bool
	for i := range out {
		a := r.agents[world.AgentID(out[i].ID)]
		if a == nil || a.llm == nil || !a.llm.claude {
			continue
		}
		any = true
		a.mu.Lock()
		u := a.llm.usage
		if a.llm.reason != "" {
			out[i].Reason = a.llm.reason
		}
		a.mu.Unlock()
		out[i].LLM = &u
	}
	if !any {
		return nil
	}
	r.llmMu.Lock()
	defer r.llmMu.Unlock()
	t := r.llmTotal
	return &t
}
