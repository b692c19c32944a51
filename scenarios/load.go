package scenarios

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/world"
)

// Allowed and planned values of the enumerated settings. A planned value is
// recognised and refused with a "not supported yet" diagnostic.
var (
	steppingAllowed = []string{SteppingLockstep, SteppingRealtime, SteppingTurnBased}
	steppingPlanned []string
	missingAllowed  = []string{MissingDefault, MissingRepeat, MissingAbort}
	runtimeAllowed  = []string{RuntimeNATS, RuntimeStdio, RuntimeBuiltin, RuntimeInProc, RuntimeClaude, RuntimeMCP, RuntimePool}
	runtimePlanned  = []string{}
	restartAllowed  = []string{RestartNever, RestartOnFailure, RestartAlways}
)

// envNamePattern is what an entry of an agent's env allow-list must match.
var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "scenario", LabelNames: []string{"name"}},
		{Type: "world", LabelNames: []string{"kind"}},
		{Type: "agent", LabelNames: []string{"name"}},
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "workspace"},
	},
}

var scenarioSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "seed"},
		{Name: "stepping"},
		{Name: "ticks"},
		{Name: "action_deadline"},
		{Name: "missing_action"},
		{Name: "ready_timeout"},
		{Name: "checkpoint_every"},
		{Name: "checkpoint_keep"},
		{Name: "max_model_turns"}, // all LLM agents together (llm.go)
		{Name: "max_tokens"},      // all LLM agents together (llm.go)
		{Name: "max_cost_usd"},    // all LLM agents together (llm.go)
		{Name: "tick_rate"},
		{Name: "max_catch_up"},
	},
}

var agentSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "runtime"},
		{Name: "command"}, // required; checked in agent for a better message
		{Name: "args"},
		{Name: "count"},
		{Name: "env"},
		{Name: "restart"},
		{Name: "max_restarts"},
		{Name: "restart_window"},
		{Name: "restart_delay"},
		{Name: "max_turns"},
		{Name: "unhealthy_after"},
		{Name: "restart_unhealthy"},
		{Name: "pool_size"},
		// runtime "claude" and "mcp" (llm.go)
		{Name: "model"},
		{Name: "system_prompt"},
		{Name: "permission_mode"},
		{Name: "allowed_tools"},
		{Name: "max_model_turns"},
		{Name: "max_tokens"},
		{Name: "max_cost_usd"},
		{Name: "mcp_config_env"},
		{Name: "memory"},
		{Name: "pids"},
		{Name: "cpu"},
		// runtime "stdio" (stdioline.go)
		{Name: "max_line"},
	},
}

// Load reads, parses and validates the scenario file at path. On any problem
// it returns a nil scenario and diagnostics holding every problem found, each
// with its position in the file. Warnings alone do not fail a load. Relative
// commands of runtime "nats" agents are resolved against the file's
// directory.
func Load(path string) (*Scenario, hcl.Diagnostics) {
	return LoadWith(path, LoadOptions{})
}

// Parse parses and validates scenario source; filename is used in
// diagnostics and as the scenario's Path. Like Load it returns either a
// scenario or every problem found. HCL syntax errors are returned alone,
// as hcl reports them (the rest of the file is not checked then). Relative
// commands of runtime "nats" agents are resolved against the current
// directory.
func Parse(src []byte, filename string) (*Scenario, hcl.Diagnostics) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "No current directory",
			Detail:   fmt.Sprintf("Relative agent commands are resolved against the current directory, which cannot be found: %v.", err),
		}}
	}
	return parse(src, filename, dir, LoadOptions{})
}

// parse is Parse with the directory that relative commands are resolved
// against.
func parse(src []byte, filename, dir string, o LoadOptions) (*Scenario, hcl.Diagnostics) {
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, sortDiagnostics(diags)
	}
	d := &decoder{filename: filename, dir: dir, pathEnv: os.Getenv("PATH"), skipPrograms: o.SkipPrograms, unset: map[string]bool{}}
	var vars []Variable
	if root, ok := file.Body.(*hclsyntax.Body); ok {
		vars = d.variables(root, o.Vars)
	}
	s := d.file(file.Body)
	s.Variables = vars
	if root, ok := file.Body.(*hclsyntax.Body); ok {
		suggestAll(d.diags, root, s.World.Kind, s.World.Config)
	}
	diags = sortDiagnostics(append(diags, d.diags...))
	if diags.HasErrors() {
		return nil, diags
	}
	s.Path = filename
	s.Source = src
	s.Dir = dir
	return s, diags
}

// decoder collects diagnostics while it fills a Scenario.
type decoder struct {
	filename string
	dir      string // relative commands are resolved against it
	pathEnv  string // the PATH bare command names are looked up in
	diags    hcl.Diagnostics
	// skipPrograms: do not look up agents' programs (LoadOptions.SkipPrograms).
	skipPrograms bool
	// unset holds the variables declared without a usable value (a refused
	// --var, no default): uses of them are not reported again.
	unset map[string]bool
}

func (d *decoder) errorf(subject hcl.Range, summary, detail string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  subject.Ptr(),
	})
}

// at renders a position for a detail message: "file:line".
func at(r hcl.Range) string {
	return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line)
}

func (d *decoder) file(body hcl.Body) *Scenario {
	content, diags := body.Content(rootSchema)
	d.diags = append(d.diags, diags...)

	s := &Scenario{
		Seed:           DefaultSeed,
		Stepping:       SteppingLockstep,
		ActionDeadline: DefaultActionDeadline,
		MissingAction:  MissingDefault,
		ReadyTimeout:   DefaultReadyTimeout,
		Workspace:      defaultWorkspace(),
	}

	var scenarioBlock, worldBlock, workspaceBlock *hcl.Block
	var agentBlocks []*hcl.Block
	for _, b := range content.Blocks {
		switch b.Type {
		case "scenario":
			if scenarioBlock != nil {
				d.errorf(b.DefRange, "Duplicate scenario block",
					"A scenario file has exactly one scenario block; the first is at %s. Remove or merge this one.", at(scenarioBlock.DefRange))
				continue
			}
			scenarioBlock = b
		case "world":
			if worldBlock != nil {
				d.errorf(b.DefRange, "Duplicate world block",
					"A scenario file has exactly one world block; the first is at %s. Remove or merge this one.", at(worldBlock.DefRange))
				continue
			}
			worldBlock = b
		case "agent":
			agentBlocks = append(agentBlocks, b)
		case "workspace":
			if workspaceBlock != nil {
				d.errorf(b.DefRange, "Duplicate workspace block",
					"A scenario file has at most one workspace block; the first is at %s. Remove or merge this one.", at(workspaceBlock.DefRange))
				continue
			}
			workspaceBlock = b
			d.workspace(b, s)
		}
	}

	missing := body.MissingItemRange()
	if scenarioBlock != nil {
		d.scenario(scenarioBlock, s)
	} else if !written(body, "scenario") {
		d.errorf(missing, "Missing scenario block",
			`A scenario file needs one scenario block, like: scenario "my_run" { seed = 1 }.`)
	}

	agentsOK := len(agentBlocks) > 0
	if !agentsOK && !written(body, "agent") {
		d.errorf(missing, "Missing agent block",
			`A scenario file needs at least one agent block, like: agent "player" { command = "./player" }.`)
	}
	idsKnown := make([]bool, len(agentBlocks))
	for i, b := range agentBlocks {
		a, ok := d.agent(b)
		idsKnown[i] = ok
		s.Agents = append(s.Agents, a)
	}
	agentsOK = d.uniqueIDs(agentBlocks, s.Agents, idsKnown) && agentsOK

	if worldBlock == nil && !written(body, "world") {
		d.errorf(missing, "Missing world block",
			`A scenario file needs one world block naming a registered world kind (%s), like: world "KIND" { }.`, quoteList(world.KindNames()))
	} else if worldBlock != nil {
		d.world(worldBlock, s, agentsOK)
	}
	return s
}

func (d *decoder) scenario(b *hcl.Block, s *Scenario) {
	s.Name = b.Labels[0]
	if !world.IDPattern.MatchString(s.Name) {
		d.errorf(b.LabelRanges[0], "Invalid scenario name",
			`The scenario name %q may use only letters, digits, "_" and "-", like scenario "axelrod".`, s.Name)
	}
	content, diags := b.Body.Content(scenarioSchema)
	d.diags = append(d.diags, diags...)
	attrs := content.Attributes

	if a := optional(attrs, "seed"); a != nil {
		if v, ok := d.whole(a, 0, ^uint64(0), "a whole number >= 0, like seed = 1980"); ok {
			s.Seed = v
		}
	}
	if a := optional(attrs, "stepping"); a != nil {
		if v, ok := d.enum(a, steppingAllowed, steppingPlanned); ok {
			s.Stepping = v
		}
	}
	if a := optional(attrs, "ticks"); a != nil {
		if v, ok := d.whole(a, 0, ^uint64(0), "a whole number >= 1 (or 0 to run until the world is done), like ticks = 200"); ok {
			s.Ticks = v
		}
	}
	if a := optional(attrs, "action_deadline"); a != nil {
		if v, ok := d.duration(a); ok {
			s.ActionDeadline = v
		}
	}
	if a := optional(attrs, "missing_action"); a != nil {
		if v, ok := d.enum(a, missingAllowed, nil); ok {
			s.MissingAction = v
		}
	}
	if a := optional(attrs, "ready_timeout"); a != nil {
		if v, ok := d.duration(a); ok {
			s.ReadyTimeout = v
		}
	}
	if a := optional(attrs, "checkpoint_every"); a != nil {
		if v, ok := d.whole(a, 0, ^uint64(0), "a whole number of ticks >= 0 (0 = no periodic checkpoints), like checkpoint_every = 100"); ok {
			s.CheckpointEvery = v
		}
	}
	if a := optional(attrs, "checkpoint_keep"); a != nil {
		if v, ok := d.whole(a, 0, maxCheckpointKeep, "a whole number of checkpoints >= 0 (0 = keep them all), like checkpoint_keep = 10"); ok {
			s.CheckpointKeep = int(v)
			if v == 0 {
				s.CheckpointKeep = -1
			}
		}
	}
	d.runBudget(attrs, s)
	d.realtime(attrs, s)
}

// agent decodes one agent block. ok is false when the block's name or count
// is unusable, so that its ids cannot be known.
func (d *decoder) agent(b *hcl.Block) (Agent, bool) {
	a := Agent{Name: b.Labels[0], Count: 1, Runtime: RuntimeNATS, Restart: RestartNever,
		MaxRestarts: DefaultMaxRestarts, RestartWindow: DefaultRestartWindow, RestartDelay: DefaultRestartDelay}
	ok := true
	if !world.IDPattern.MatchString(a.Name) {
		ok = false
		d.errorf(b.LabelRanges[0], "Invalid agent name",
			`The agent name %q may use only letters, digits, "_" and "-", like agent "tit_for_tat".`, a.Name)
	}
	content, diags := b.Body.Content(agentSchema)
	d.diags = append(d.diags, diags...)
	attrs := content.Attributes

	runtimeOK := true
	if attr := optional(attrs, "runtime"); attr != nil {
		var v string
		if v, runtimeOK = d.enum(attr, runtimeAllowed, runtimePlanned); runtimeOK {
			a.Runtime = v
		}
		if a.Runtime == RuntimeInProc {
			d.inprocWarning(attr)
		}
	}
	if attrs["command"] == nil && !(runtimeOK && a.Runtime == RuntimeClaude) {
		d.errorf(b.Body.MissingItemRange(), "Missing command",
			`agent %q has no command: add command = "..." with the program to run (for runtime "builtin", the reference agent's name, one of %s).`, a.Name, quoteList(builtin.Names()))
	}
	if attr := attrs["command"]; attr != nil {
		if v, cok := d.str(attr, `a non-empty string, like command = "./player"`); cok {
			a.Command = v
			switch {
			case v == "":
				d.errorf(attr.Expr.Range(), "Invalid command",
					`command must not be empty: give the program to run (for runtime "builtin", the reference agent's name).`)
			case runtimeOK && a.Runtime == RuntimeBuiltin:
				if _, found := builtin.Lookup(v); !found {
					d.errorf(attr.Expr.Range(), "Unknown builtin agent",
						"No builtin agent is named %q. Known builtin agents: %s.", v, quoteList(builtin.Names()))
				}
			case runtimeOK && (a.Runtime == RuntimeNATS || a.Runtime == RuntimeStdio || a.Runtime == RuntimeMCP) && !d.skipPrograms:
				a.Path = d.program(a.Name, v, attr.Expr.Range())
			case runtimeOK && a.Runtime == RuntimePool:
				if _, found := builtin.LookupPool(v); !found {
					a.Path = d.program(a.Name, v, attr.Expr.Range())
				}
			}
		}
	}
	if attr := optional(attrs, "args"); attr != nil {
		if v, lok := d.strList(attr, `a list of strings, like args = ["--verbose"]`); lok {
			a.Args = v
			if runtimeOK && (a.Runtime == RuntimeBuiltin || a.Runtime == RuntimePool) {
				if err := builtin.CheckArgs(a.Command, v); err != nil {
					d.errorf(attr.Expr.Range(), "Invalid args", "agent %q: %v.", a.Name, err)
				}
			}
		}
	}
	if attr := optional(attrs, "count"); attr != nil {
		v, cok := d.whole(attr, 1, MaxAgentCount, fmt.Sprintf("a whole number from 1 to %d (how many agents this block makes), like count = 2", MaxAgentCount))
		if cok {
			a.Count = int(v)
		} else {
			ok = false
		}
	}
	if attr := optional(attrs, "env"); attr != nil {
		a.Env = d.env(attr)
	}
	if attr := optional(attrs, "restart"); attr != nil {
		if v, rok := d.enum(attr, restartAllowed, nil); rok {
			a.Restart = v
		}
	}
	if attr := optional(attrs, "max_restarts"); attr != nil {
		if v, mok := d.whole(attr, 0, 1000, "a whole number from 0 to 1000 (restarts allowed within restart_window), like max_restarts = 5"); mok {
			a.MaxRestarts = int(v)
		}
	}
	if attr := optional(attrs, "restart_window"); attr != nil {
		if v, wok := d.duration(attr); wok {
			a.RestartWindow = v
		}
	}
	if attr := optional(attrs, "restart_delay"); attr != nil {
		if v, dok := d.duration(attr); dok {
			a.RestartDelay = v
		}
	}
	if attr := optional(attrs, "max_turns"); attr != nil {
		if v, tok := d.whole(attr, 0, 1<<31, "a whole number >= 0 (actions it may take; 0 = no limit), like max_turns = 100"); tok {
			a.MaxTurns = int(v)
		}
	}
	if attr := optional(attrs, "unhealthy_after"); attr != nil {
		if v, hok := d.whole(attr, 0, 1<<31, "a whole number >= 0 (missed deadlines in a row; 0 = never), like unhealthy_after = 3"); hok {
			a.UnhealthyAfter = int(v)
		}
	}
	if attr := optional(attrs, "restart_unhealthy"); attr != nil {
		var b bool
		if diags := gohcl.DecodeExpression(attr.Expr, nil, &b); diags.HasErrors() {
			d.errorf(attr.Expr.Range(), invalid("restart_unhealthy"), "restart_unhealthy must be true or false.")
		} else {
			a.RestartUnhealthy = b
			if b && optional(attrs, "unhealthy_after") == nil {
				d.diags = append(d.diags, &hcl.Diagnostic{
					Severity: hcl.DiagWarning,
					Summary:  "restart_unhealthy has no effect",
					Detail:   "restart_unhealthy = true acts only when unhealthy_after is set (missed deadlines in a row, like unhealthy_after = 3).",
					Subject:  attr.Expr.Range().Ptr(),
				})
			}
		}
	}
	d.pool(b, attrs, &a)
	d.llm(b, attrs, &a, runtimeOK)
	d.limits(attrs, &a)
	d.maxLine(attrs, &a, runtimeOK)
	return a, ok
}

func (d *decoder) env(attr *hcl.Attribute) []string {
	exprs, ok := d.listExprs(attr, `a list of environment variable names, like env = ["PATH", "HOME"]`)
	if !ok {
		return nil
	}
	names := make([]string, 0, len(exprs))
	for i, e := range exprs {
		v, ok := d.strExpr(e, fmt.Sprintf("env[%d]", i), `a variable name, like "PATH"`)
		if !ok {
			continue
		}
		if !envNamePattern.MatchString(v) {
			d.errorf(e.Range(), "Invalid env entry",
				`env[%d] is %q: env lists the NAMES of host variables to pass through, each matching [A-Za-z_][A-Za-z0-9_]*, like "PATH" (not "PATH=/bin").`, i, v)
			continue
		}
		names = append(names, v)
	}
	return names
}

// uniqueIDs reports duplicate agent names and agent ids one block makes that
// another block also makes (only among blocks whose ids are known: a valid
// name and count). It returns whether every block's ids are known and unique.
func (d *decoder) uniqueIDs(blocks []*hcl.Block, agents []Agent, known []bool) bool {
	ok := true
	byName := map[string]int{}
	for i, a := range agents {
		if j, dup := byName[a.Name]; dup {
			ok = false
			known[i] = false
			d.errorf(blocks[i].LabelRanges[0], "Duplicate agent name",
				"An agent block named %q is already defined at %s; agent names must be unique.", a.Name, at(blocks[j].DefRange))
			continue
		}
		byName[a.Name] = i
	}
	owner := map[world.AgentID]int{}
	for i, a := range agents {
		if !known[i] {
			ok = false
			continue
		}
		reported := map[int]bool{}
		for _, id := range a.IDs() {
			j, taken := owner[id]
			if !taken {
				owner[id] = i
				continue
			}
			ok = false
			if reported[j] {
				continue
			}
			reported[j] = true
			d.errorf(blocks[i].LabelRanges[0], "Agent id collision",
				"agent %q (count = %d) makes the id %q, which agent %q (count = %d) at %s also makes; rename one of the blocks.",
				a.Name, a.Count, id, agents[j].Name, agents[j].Count, at(blocks[j].DefRange))
		}
	}
	// Every agent process is an OS process (and, as root, a user of the
	// run's block of 10,000): a crowd beyond that is a pool's work.
	total, procs, last := 0, 0, -1
	for i, a := range agents {
		if !known[i] {
			continue
		}
		total += a.Count
		if a.Runtime != RuntimePool && a.Runtime != RuntimeInProc {
			procs += a.Count
		}
		last = i
	}
	if procs > MaxAgentCount {
		ok = false
		d.errorf(blocks[last].DefRange, "Too many agent processes",
			"the agent blocks make %d agent processes, at most %d can run (one OS process each); use runtime = \"pool\" for crowds.", procs, MaxAgentCount)
	} else if total > MaxTotalAgents {
		ok = false
		d.errorf(blocks[last].DefRange, "Too many agents", "the agent blocks make %d agents, at most %d.", total, MaxTotalAgents)
	}
	return ok
}

// written reports whether body has a block of that type at all, even one
// hcl dropped for its labels (so the block is not also reported missing).
func written(body hcl.Body, typ string) bool {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return false
	}
	for _, b := range sb.Blocks {
		if b.Type == typ {
			return true
		}
	}
	return false
}

// world decodes the world block into its kind's config and, when the agents
// are known, builds the world once to let the kind check its settings.
func (d *decoder) world(b *hcl.Block, s *Scenario, agentsOK bool) {
	s.World.Kind = b.Labels[0]
	kind, found := world.LookupKind(s.World.Kind)
	if !found {
		d.errorf(b.LabelRanges[0], "Unknown world kind",
			"No world kind is named %q. Registered kinds: %s.", s.World.Kind, quoteList(world.KindNames()))
		return
	}
	s.World.Impl = kind
	cfg := kind.NewConfig()
	if rv := reflect.ValueOf(cfg); cfg == nil || rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		d.errorf(b.LabelRanges[0], "Broken world kind",
			"World kind %q returned %T from NewConfig, not a pointer to a struct; this is a bug in the kind, not in the scenario.", kind.Name, cfg)
		return
	}
	dec := decodeConfig(b.Body, cfg, kind.Name, b.LabelRanges[0])
	d.diags = append(d.diags, dec.diags...)
	s.World.Config = cfg
	if dec.broken || !agentsOK {
		return
	}
	w, err := kind.New(cfg, s.Seats())
	for _, e := range splitErrors(err) {
		d.worldError(b, kind.Name, e, dec)
	}
	if _, turns := w.(world.Turns); err == nil && s.Stepping == SteppingTurnBased && !turns {
		d.errorf(b.LabelRanges[0], "World has no turn order",
			`stepping = "turn_based" needs a world that declares whose turn each tick is; world kind %q does not: use stepping = "lockstep" or "realtime".`, kind.Name)
	}
}

// optional returns the attribute of that name, or nil when it is absent or
// set to null (which keeps the default).
func optional(attrs hcl.Attributes, name string) *hcl.Attribute {
	a := attrs[name]
	if a == nil || isNull(a) {
		return nil
	}
	return a
}

// quoteList renders names as `"a", "b"`, or "(none)".
func quoteList(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// sortDiagnostics orders diagnostics by position (those without one first),
// so the report reads top to bottom and is the same on every run.
func sortDiagnostics(diags hcl.Diagnostics) hcl.Diagnostics {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		default:
			return a.Start.Byte < b.Start.Byte
		}
	})
	return diags
}
