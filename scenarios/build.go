package scenarios

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/world"
)

// New returns a scenario built in Go, with every default a scenario file
// gets: seed 1, lockstep, a 5s action deadline, the "default" missing-action
// policy, a 30s ready timeout. Set its fields (Stepping, TickRate, Ticks,
// World, ...), add agents made with NewAgent, then call Check. A program
// that supplies its own world (terrarium.Config.World) leaves World empty.
func New(name string) *Scenario {
	return &Scenario{
		Name:           name,
		Seed:           DefaultSeed,
		Stepping:       SteppingLockstep,
		ActionDeadline: DefaultActionDeadline,
		MissingAction:  MissingDefault,
		ReadyTimeout:   DefaultReadyTimeout,
	}
}

// NewAgent returns an agent block with the defaults a scenario file gives
// it: count 1, restart "never", max_restarts 5 within 1m, a 200ms first
// restart delay; for runtime "claude" the default model and permission
// mode, and command DefaultClaudeCommand when command is empty; for
// runtime "mcp" the default mcp_config_env.
func NewAgent(name, runtime, command string) Agent {
	a := Agent{Name: name, Count: 1, Runtime: runtime, Command: command, Restart: RestartNever,
		MaxRestarts: DefaultMaxRestarts, RestartWindow: DefaultRestartWindow, RestartDelay: DefaultRestartDelay}
	switch runtime {
	case RuntimeClaude:
		a.LLM = LLM{Model: DefaultModel, PermissionMode: DefaultPermissionMode}
		if a.Command == "" {
			a.Command = DefaultClaudeCommand
		}
	case RuntimeMCP:
		a.LLM = LLM{MCPConfigEnv: DefaultMCPConfigEnv}
	}
	return a
}

// Realtime sets realtime stepping at rate ticks per second, with the
// default catch-up cap, and returns s.
func (s *Scenario) Realtime(rate float64) *Scenario {
	s.Stepping, s.TickRate, s.MaxCatchUp = SteppingRealtime, rate, DefaultMaxCatchUp
	return s
}

// Add appends agent blocks and returns s.
func (s *Scenario) Add(agents ...Agent) *Scenario {
	s.Agents = append(s.Agents, agents...)
	return s
}

// Check validates a scenario built in Go by the rules a scenario file is
// held to (names, counts, unique ids, known runtimes and builtin agents,
// stepping settings) and returns every problem, joined. When the world is
// a registered kind, its settings are checked by building it once. It
// fills Source with the scenario rendered as HCL when Source is empty, so
// the run directory's scenario.hcl says what ran.
func (s *Scenario) Check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !world.IDPattern.MatchString(s.Name) {
		bad("scenario name %q: use only letters, digits, _ and -", s.Name)
	}
	if !slices.Contains(steppingAllowed, s.Stepping) {
		bad("stepping %q: want one of %s", s.Stepping, quoteList(steppingAllowed))
	}
	if s.ActionDeadline <= 0 {
		bad("action deadline %s: must be > 0", s.ActionDeadline)
	}
	if s.ReadyTimeout <= 0 {
		bad("ready timeout %s: must be > 0", s.ReadyTimeout)
	}
	if !slices.Contains(missingAllowed, s.MissingAction) {
		bad("missing action %q: want one of %s", s.MissingAction, quoteList(missingAllowed))
	}
	if s.Stepping == SteppingRealtime {
		if s.TickRate <= 0 || s.TickRate > MaxTickRate {
			bad("tick rate %g: want a number above 0 and at most %g ticks per second", s.TickRate, MaxTickRate)
		}
		if s.MaxCatchUp == 0 {
			s.MaxCatchUp = DefaultMaxCatchUp
		}
		if s.MaxCatchUp < 1 || s.MaxCatchUp > 1000 {
			bad("max catch-up %d: want 1 to 1000", s.MaxCatchUp)
		}
		if s.MissingAction == MissingAbort {
			bad(`missing action "abort" does not go with realtime stepping (the loop never waits): use "default" or "repeat"`)
		}
	}
	if b := s.Budget; b.MaxModelTurns < 0 || b.MaxTokens < 0 || b.MaxCostUSD < 0 {
		bad("a negative budget (%+v): 0 is no limit", b)
	}
	if len(s.Agents) == 0 {
		bad("no agents: add at least one (scenarios.NewAgent)")
	}
	ids := map[world.AgentID]string{}
	names := map[string]bool{}
	for _, a := range s.Agents {
		where := fmt.Sprintf("agent %q", a.Name)
		if !world.IDPattern.MatchString(a.Name) {
			bad("%s: the name may use only letters, digits, _ and -", where)
			continue
		}
		if names[a.Name] {
			bad("%s: defined twice", where)
			continue
		}
		names[a.Name] = true
		if a.Count < 1 || a.Count > MaxAgentCount {
			bad("%s: count %d: want 1 to %d", where, a.Count, MaxAgentCount)
			continue
		}
		switch a.Runtime {
		case RuntimeBuiltin:
			if _, ok := builtin.Lookup(a.Command); !ok {
				bad("%s: no builtin agent %q (known: %s)", where, a.Command, quoteList(builtin.Names()))
			}
		case RuntimeNATS, RuntimeStdio, RuntimeInProc, RuntimeMCP:
			if a.Command == "" {
				bad("%s: no command", where)
			}
		case RuntimeClaude:
			if a.Command == "" {
				bad("%s: no command (the claude CLI; NewAgent gives %q)", where, DefaultClaudeCommand)
			}
			if a.LLM.Model == "" {
				bad("%s: no model (NewAgent gives %q)", where, DefaultModel)
			}
			if !slices.Contains(permissionModes, a.LLM.PermissionMode) {
				bad("%s: permission mode %q: want one of %s", where, a.LLM.PermissionMode, quoteList(permissionModes))
			}
			if b := a.LLM.Budget; b.MaxModelTurns < 0 || b.MaxTokens < 0 || b.MaxCostUSD < 0 {
				bad("%s: a negative budget (%+v): 0 is no limit", where, b)
			}
			for _, tool := range a.LLM.AllowedTools {
				if !toolPattern.MatchString(tool) {
					bad("%s: allowed tool %q: give a claude tool name, optionally with a rule, like \"Edit\" or \"Bash(git diff:*)\"", where, tool)
				}
			}
		case RuntimePool:
			if a.Command == "" {
				bad("%s: no command", where)
			}
			if a.PoolSize < 0 || a.PoolSize > MaxPoolSize {
				bad("%s: pool_size %d: want 1 to %d", where, a.PoolSize, MaxPoolSize)
			}
			if a.Restart != RestartNever || a.MaxTurns != 0 || a.RestartUnhealthy {
				bad("%s: runtime pool supports neither restart, max_turns nor restart_unhealthy", where)
			}
		default:
			bad("%s: runtime %q: want one of %s", where, a.Runtime, quoteList(runtimeAllowed))
		}
		if !slices.Contains(restartAllowed, a.Restart) {
			bad("%s: restart %q: want one of %s", where, a.Restart, quoteList(restartAllowed))
		}
		switch {
		case a.MaxLine != 0 && a.Runtime != RuntimeStdio:
			bad("%s: max_line is a setting of runtime stdio, not %s", where, a.Runtime)
		case a.MaxLine != 0 && (a.MaxLine < MinStdioMaxLine || a.MaxLine > MaxStdioMaxLine):
			bad("%s: max_line %d: want %d to %d bytes", where, a.MaxLine, MinStdioMaxLine, MaxStdioMaxLine)
		}
		for _, e := range a.Env {
			if !envNamePattern.MatchString(e) {
				bad("%s: env entry %q is not a variable name", where, e)
			}
		}
		for _, id := range a.IDs() {
			if other, taken := ids[id]; taken {
				bad("%s makes the id %q, which agent %q also makes", where, id, other)
			}
			ids[id] = a.Name
		}
	}
	if s.World.Impl.New != nil && len(errs) == 0 {
		cfg := s.World.Config
		if cfg == nil {
			cfg = s.World.Impl.NewConfig()
			s.World.Config = cfg
		}
		w, err := s.World.Impl.New(cfg, s.Seats())
		if err != nil {
			bad("world %s: %w", s.World.Impl.Name, err)
		} else if _, turns := w.(world.Turns); s.Stepping == SteppingTurnBased && !turns {
			bad("world %s declares no turn order: turn_based stepping needs one", s.World.Impl.Name)
		}
		s.World.Kind = s.World.Impl.Name
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	if len(s.Source) == 0 {
		s.Source = s.HCL()
	}
	return nil
}

// HCL renders the scenario as a scenario file (the world block holds the
// kind's settings when the world is a registered kind, and is a comment
// otherwise).
func (s *Scenario) HCL() []byte {
	f := hclwrite.NewEmptyFile()
	root := f.Body()
	sb := root.AppendNewBlock("scenario", []string{s.Name}).Body()
	sb.SetAttributeValue("seed", cty.NumberUIntVal(s.Seed))
	sb.SetAttributeValue("stepping", cty.StringVal(s.Stepping))
	sb.SetAttributeValue("ticks", cty.NumberUIntVal(s.Ticks))
	sb.SetAttributeValue("action_deadline", cty.StringVal(s.ActionDeadline.String()))
	sb.SetAttributeValue("missing_action", cty.StringVal(s.MissingAction))
	sb.SetAttributeValue("ready_timeout", cty.StringVal(s.ReadyTimeout.String()))
	if s.CheckpointEvery > 0 {
		sb.SetAttributeValue("checkpoint_every", cty.NumberUIntVal(s.CheckpointEvery))
	}
	switch {
	case s.CheckpointKeep < 0:
		sb.SetAttributeValue("checkpoint_keep", cty.NumberIntVal(0))
	case s.CheckpointKeep > 0:
		sb.SetAttributeValue("checkpoint_keep", cty.NumberIntVal(int64(s.CheckpointKeep)))
	}
	if s.Stepping == SteppingRealtime {
		sb.SetAttributeValue("tick_rate", cty.NumberFloatVal(s.TickRate))
		sb.SetAttributeValue("max_catch_up", cty.NumberIntVal(int64(s.MaxCatchUp)))
	}
	setBudget(sb, s.Budget)
	root.AppendNewline()
	if s.World.Kind != "" && s.World.Config != nil {
		wb := root.AppendNewBlock("world", []string{s.World.Kind})
		gohcl.EncodeIntoBody(s.World.Config, wb.Body())
	} else {
		root.AppendUnstructuredTokens(hclwrite.Tokens{{Type: 0, Bytes: []byte("# world: supplied by the embedding program\n")}})
	}
	for _, a := range s.Agents {
		root.AppendNewline()
		ab := root.AppendNewBlock("agent", []string{a.Name}).Body()
		ab.SetAttributeValue("runtime", cty.StringVal(a.Runtime))
		ab.SetAttributeValue("command", cty.StringVal(a.Command))
		if a.Count != 1 {
			ab.SetAttributeValue("count", cty.NumberIntVal(int64(a.Count)))
		}
		if a.Runtime == RuntimePool && a.PoolSize > 0 {
			ab.SetAttributeValue("pool_size", cty.NumberIntVal(int64(a.PoolSize)))
		}
		if len(a.Args) > 0 {
			ab.SetAttributeValue("args", stringList(a.Args))
		}
		if len(a.Env) > 0 {
			ab.SetAttributeValue("env", stringList(a.Env))
		}
		if a.Restart != RestartNever {
			ab.SetAttributeValue("restart", cty.StringVal(a.Restart))
			ab.SetAttributeValue("max_restarts", cty.NumberIntVal(int64(a.MaxRestarts)))
			ab.SetAttributeValue("restart_window", cty.StringVal(a.RestartWindow.String()))
			ab.SetAttributeValue("restart_delay", cty.StringVal(a.RestartDelay.String()))
		}
		if a.MaxTurns > 0 {
			ab.SetAttributeValue("max_turns", cty.NumberIntVal(int64(a.MaxTurns)))
		}
		if a.UnhealthyAfter > 0 {
			ab.SetAttributeValue("unhealthy_after", cty.NumberIntVal(int64(a.UnhealthyAfter)))
			ab.SetAttributeValue("restart_unhealthy", cty.BoolVal(a.RestartUnhealthy))
		}
		switch a.Runtime {
		case RuntimeClaude:
			ab.SetAttributeValue("model", cty.StringVal(a.LLM.Model))
			ab.SetAttributeValue("permission_mode", cty.StringVal(a.LLM.PermissionMode))
			if a.LLM.SystemPrompt != "" {
				ab.SetAttributeValue("system_prompt", cty.StringVal(a.LLM.SystemPrompt))
			}
			if len(a.LLM.AllowedTools) > 0 {
				ab.SetAttributeValue("allowed_tools", stringList(a.LLM.AllowedTools))
			}
			setBudget(ab, a.LLM.Budget)
		case RuntimeMCP:
			ab.SetAttributeValue("mcp_config_env", cty.StringVal(a.LLM.MCPConfigEnv))
		}
		if a.Memory > 0 {
			ab.SetAttributeValue("memory", cty.StringVal(strconv.FormatInt(a.Memory, 10)+"B"))
		}
		if a.Pids > 0 {
			ab.SetAttributeValue("pids", cty.NumberIntVal(a.Pids))
		}
		if a.CPU > 0 {
			ab.SetAttributeValue("cpu", cty.NumberFloatVal(a.CPU))
		}
		if a.MaxLine > 0 {
			ab.SetAttributeValue("max_line", cty.StringVal(strconv.FormatInt(a.MaxLine, 10)+"B"))
		}
	}
	return f.Bytes()
}

func setBudget(b *hclwrite.Body, bu LLMBudget) {
	if bu.MaxModelTurns > 0 {
		b.SetAttributeValue("max_model_turns", cty.NumberIntVal(int64(bu.MaxModelTurns)))
	}
	if bu.MaxTokens > 0 {
		b.SetAttributeValue("max_tokens", cty.NumberIntVal(int64(bu.MaxTokens)))
	}
	if bu.MaxCostUSD > 0 {
		b.SetAttributeValue("max_cost_usd", cty.NumberFloatVal(bu.MaxCostUSD))
	}
}

func stringList(ss []string) cty.Value {
	vs := make([]cty.Value, len(ss))
	for i, s := range ss {
		vs[i] = cty.StringVal(s)
	}
	return cty.ListVal(vs)
}
