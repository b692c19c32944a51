package scenarios

import (
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/terrarium-sim/terrarium/agents"
)

// Defaults of runtime "claude".
const (
	DefaultClaudeCommand  = "claude"
	DefaultModel          = "claude-sonnet-4-5"
	DefaultPermissionMode = "dontAsk" // tools not allowed are refused, never asked about
	// DefaultMCPConfigEnv is where runtime "mcp" agents find the path of
	// their MCP config file.
	DefaultMCPConfigEnv = "TERRARIUM_MCP_CONFIG"
)

// permissionModes are the claude CLI's --permission-mode values.
var permissionModes = []string{"dontAsk", "acceptEdits", "auto", "manual", "plan", "bypassPermissions"}

// toolPattern is what an allowed_tools entry must look like: a tool name,
// optionally with a rule in parentheses ("Bash(git diff:*)").
var toolPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*(\(.*\))?$`)

// LLMBudget caps what LLM agents may spend. Zero means no limit.
type LLMBudget struct {
	MaxModelTurns int     // max_model_turns: model calls (the CLI's num_turns)
	MaxTokens     int     // max_tokens: input + output tokens, cache reads and writes included
	MaxCostUSD    float64 // max_cost_usd: as the CLI prices it
}

// LLM is an agent block's settings for runtime "claude" ("mcp" agents use
// MCPConfigEnv only); zero for the other runtimes.
type LLM struct {
	Model          string   // model = "claude-sonnet-4-5"
	SystemPrompt   string   // system_prompt = "...": the persona, after the host's own lines
	PermissionMode string   // permission_mode = "default"
	AllowedTools   []string // allowed_tools = ["Read", "Edit"]: granted on top of the world's tools
	Budget         LLMBudget
	// MCPConfigEnv names the variable that holds the MCP config file's path
	// (runtime "mcp"; default DefaultMCPConfigEnv).
	MCPConfigEnv string
}

var claudeOnly = []string{"model", "system_prompt", "permission_mode", "allowed_tools", "max_model_turns", "max_tokens", "max_cost_usd"}

// llm decodes the LLM settings of an agent block.
func (d *decoder) llm(b *hcl.Block, attrs hcl.Attributes, a *Agent, runtimeOK bool) {
	if !runtimeOK {
		return
	}
	if a.Runtime != RuntimeClaude {
		for _, name := range claudeOnly {
			if attr := attrs[name]; attr != nil {
				d.errorf(attr.NameRange, fmt.Sprintf("Unexpected %s", name),
					`%s is a setting of runtime = "claude"; agent %q has runtime = %q. Remove it, or set runtime = "claude".`, name, a.Name, a.Runtime)
			}
		}
	}
	if attr := attrs["mcp_config_env"]; attr != nil && a.Runtime != RuntimeMCP {
		d.errorf(attr.NameRange, "Unexpected mcp_config_env",
			`mcp_config_env is a setting of runtime = "mcp"; agent %q has runtime = %q.`, a.Name, a.Runtime)
	}
	switch a.Runtime {
	case RuntimeClaude:
		a.LLM = LLM{Model: DefaultModel, PermissionMode: DefaultPermissionMode}
		if attrs["command"] == nil {
			a.Command = DefaultClaudeCommand
		}
		if a.Command != "" {
			// The CLI may be installed later (bash .ci/deps/claude.sh): a
			// missing one is a warning now and an error when the run starts.
			if p, err := agents.LookPath(a.Command, d.dir, d.pathEnv); err == nil {
				a.Path = p
			} else {
				r := b.DefRange
				if attr := attrs["command"]; attr != nil {
					r = attr.Expr.Range()
				}
				how := "bash .ci/deps/claude.sh installs the pinned CLI at agents/claude/cli/node_modules/.bin/claude (of the Terrarium source tree), or name another installed CLI's path in command"
				if !strings.ContainsRune(a.Command, '/') {
					how = fmt.Sprintf("%q is looked up in PATH: npm install -g @anthropic-ai/claude-code puts claude there; or bash .ci/deps/claude.sh installs the pinned CLI at agents/claude/cli/node_modules/.bin/claude, and command names that path", a.Command)
				}
				d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "claude CLI not found",
					Detail:  fmt.Sprintf("agent %q: %v; the run will fail until it is installed: %s.", a.Name, err, how),
					Subject: r.Ptr()})
			}
		}
		if attr := optional(attrs, "model"); attr != nil {
			if v, ok := d.str(attr, `a model name, like model = "claude-sonnet-4-5"`); ok && v != "" {
				a.LLM.Model = v
			}
		}
		if attr := optional(attrs, "system_prompt"); attr != nil {
			if v, ok := d.str(attr, "a string: the agent's persona and instructions"); ok {
				a.LLM.SystemPrompt = v
			}
		}
		if attr := optional(attrs, "permission_mode"); attr != nil {
			if v, ok := d.enum(attr, permissionModes, nil); ok {
				a.LLM.PermissionMode = v
			}
		}
		if attr := optional(attrs, "allowed_tools"); attr != nil {
			if exprs, ok := d.listExprs(attr, `a list of claude tool names, like allowed_tools = ["Read", "Edit"]`); ok {
				for i, e := range exprs {
					v, ok := d.strExpr(e, fmt.Sprintf("allowed_tools[%d]", i), `a tool name, like "Read" or "Bash(git diff:*)"`)
					if !ok {
						continue
					}
					if !toolPattern.MatchString(v) {
						d.errorf(e.Range(), "Invalid allowed_tools entry", `allowed_tools[%d] is %q: give a claude tool name, optionally with a rule, like "Edit" or "Bash(git diff:*)".`, i, v)
						continue
					}
					a.LLM.AllowedTools = append(a.LLM.AllowedTools, v)
				}
			}
		}
		d.budget(attrs, &a.LLM.Budget)
	case RuntimeMCP:
		a.LLM = LLM{MCPConfigEnv: DefaultMCPConfigEnv}
		if attr := optional(attrs, "mcp_config_env"); attr != nil {
			if v, ok := d.str(attr, `an environment variable name, like mcp_config_env = "MCP_CONFIG"`); ok {
				if !envNamePattern.MatchString(v) {
					d.errorf(attr.Expr.Range(), invalid("mcp_config_env"), `mcp_config_env is %q: give a variable name matching [A-Za-z_][A-Za-z0-9_]*.`, v)
				} else {
					a.LLM.MCPConfigEnv = v
				}
			}
		}
	}
}

// runBudget decodes the scenario block's budget for all LLM agents.
func (d *decoder) runBudget(attrs hcl.Attributes, s *Scenario) {
	d.budget(attrs, &s.Budget)
}

func (d *decoder) budget(attrs hcl.Attributes, b *LLMBudget) {
	if attr := optional(attrs, "max_model_turns"); attr != nil {
		if v, ok := d.whole(attr, 0, 1<<31, "a whole number >= 0 (model calls over the whole session; 0 = no limit), like max_model_turns = 50"); ok {
			b.MaxModelTurns = int(v)
		}
	}
	if attr := optional(attrs, "max_tokens"); attr != nil {
		if v, ok := d.whole(attr, 0, 1<<53, "a whole number >= 0 (input + output tokens; 0 = no limit), like max_tokens = 200000"); ok {
			b.MaxTokens = int(v)
		}
	}
	if attr := optional(attrs, "max_cost_usd"); attr != nil {
		if v, ok := d.eval(attr.Expr); ok {
			if v.IsNull() || v.Type() != cty.Number {
				d.errorf(attr.Expr.Range(), invalid("max_cost_usd"), "max_cost_usd must be a number of US dollars >= 0 (0 = no limit), like max_cost_usd = 2.5; got %s.", describe(v))
			} else if f, _ := v.AsBigFloat().Float64(); f < 0 || math.IsInf(f, 0) {
				d.errorf(attr.Expr.Range(), invalid("max_cost_usd"), "max_cost_usd must be >= 0; got %s.", describe(v))
			} else {
				b.MaxCostUSD = f
			}
		}
	}
}
