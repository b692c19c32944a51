package scenarios

import (
	"strconv"
	"time"

	"github.com/terrarium-sim/terrarium/world"
)

// Stepping modes.
const (
	SteppingLockstep  = "lockstep"   // every agent acts once per tick; the tick waits for all or the deadline
	SteppingRealtime  = "realtime"   // fixed tick rate; the loop never waits for an agent
	SteppingTurnBased = "turn_based" // one agent per tick, in the order the world declares
)

// Realtime defaults and limits.
const (
	DefaultTickRate   = 20.0 // ticks per second
	MaxTickRate       = 1000.0
	DefaultMaxCatchUp = 3 // overdue ticks run back to back before the lag is dropped
)

// Missing-action policies.
const (
	MissingDefault = "default" // apply the world's default action
	MissingRepeat  = "repeat"  // repeat the agent's last applied action (default action at first)
	MissingAbort   = "abort"   // abort the run
)

// Runtimes.
const (
	RuntimeNATS    = "nats"    // the process speaks NATS itself
	RuntimeStdio   = "stdio"   // the process speaks JSON lines on stdin/stdout; the host bridges them to the bus
	RuntimeBuiltin = "builtin" // the terrarium binary re-executes itself as a reference agent
	RuntimeClaude  = "claude"  // the claude CLI, driven over stream-json, playing through the host's MCP server
	RuntimeMCP     = "mcp"     // any MCP-capable program, given the host's MCP server in a config file
	// RuntimeInProc agents are Go values inside the host's process (no
	// process, no isolation): Command names one the embedding program
	// supplies (terrarium.Config.InProc).
	RuntimeInProc = "inproc"
	// RuntimePool agents are served many to a process: pool_size members
	// per process, their observations and actions batched per tick (see
	// docs/protocol.md, "Pools"). Command names a builtin pool or a program.
	RuntimePool = "pool"
)

// Restart defaults.
const (
	DefaultMaxRestarts   = 5
	DefaultRestartWindow = time.Minute
	DefaultRestartDelay  = 200 * time.Millisecond
)

// Restart policies.
const (
	RestartNever     = "never"
	RestartOnFailure = "on-failure"
	RestartAlways    = "always"
)

// Defaults for settings a scenario file leaves out.
const (
	DefaultSeed           uint64        = 1
	DefaultActionDeadline time.Duration = 5 * time.Second
	DefaultReadyTimeout   time.Duration = 30 * time.Second
	// DefaultCheckpointKeep is how many checkpoints a run keeps when its
	// scenario has no checkpoint_keep.
	DefaultCheckpointKeep = 3
	// maxCheckpointKeep bounds checkpoint_keep.
	maxCheckpointKeep = 1 << 30
)

// MaxAgentCount is the largest count one agent block may ask for.
const MaxAgentCount = 10000

// MaxTotalAgents is the most agents one scenario may make, all blocks
// together (at most MaxAgentCount of them processes of their own).
const MaxTotalAgents = 100000

// Scenario is a loaded, validated scenario file.
type Scenario struct {
	// Path is the file it was loaded from; Source its bytes as read.
	Path   string
	Source []byte
	// Dir is the directory relative agent commands were resolved against.
	Dir string

	Name           string        // scenario "NAME" label
	Seed           uint64        // seed = ...; default 1
	Stepping       string        // stepping = "lockstep" (default)
	Ticks          uint64        // ticks = N; 0 means until the world is done
	ActionDeadline time.Duration // action_deadline = "2s" (default 5s)
	MissingAction  string        // missing_action = "default" | "repeat" | "abort" (default "default")
	ReadyTimeout   time.Duration // ready_timeout = "30s" (default 30s): how long agents may take to say hello
	// CheckpointEvery is checkpoint_every = K: the host writes a checkpoint
	// every K ticks (0, the default: only on an orderly stop).
	CheckpointEvery uint64
	// CheckpointKeep is how many checkpoints are kept (the last ones; the
	// one the run started from stays too). In the file, checkpoint_keep =
	// N, and 0 keeps them all; here 0 means the default,
	// DefaultCheckpointKeep, and a negative number keeps them all.
	CheckpointKeep int
	// Variables are the scenario's variable blocks with the values they
	// took (their defaults, or LoadOptions.Vars), in file order.
	Variables []Variable
	// TickRate (tick_rate = 60) is realtime's ticks per second, default
	// DefaultTickRate; MaxCatchUp (max_catch_up = 3) how many overdue ticks
	// run back to back before the lag is dropped, default
	// DefaultMaxCatchUp. Both are 0 unless Stepping is realtime.
	TickRate   float64
	MaxCatchUp int

	World  World
	Agents []Agent // in file order
	// Workspace is the workspace block (its defaults when there is none).
	Workspace Workspace

	// Budget is for all LLM agents together (max_model_turns, max_tokens,
	// max_cost_usd in the scenario block); zero fields mean no limit.
	Budget LLMBudget
}

// World is the scenario's world block.
type World struct {
	Kind   string // world "KIND" label
	Config any    // the kind's decoded settings (the pointer Kind.NewConfig returned)
	Impl   world.Kind
}

// Agent is one agent block. Count instances are made from it (see Seats).
type Agent struct {
	Name    string // agent "NAME" label; also the group name of its seats
	Count   int    // count = N (default 1)
	Runtime string // runtime = "nats" | "stdio" | "builtin" | "inproc"
	Command string // command = "..." (program path or name; for builtin: the reference agent's name)
	// Path is, for runtime "nats", the absolute path of the program Command
	// names, checked at load time to exist and be executable: a relative
	// Command is resolved against the scenario file's directory (Parse: the
	// current directory), a bare name is looked up in the host's PATH.
	// Empty for runtime "builtin".
	Path    string
	Args    []string // args = [...]
	Env     []string // env = ["NAME", ...]: host variables passed through (allow-list)
	Restart string   // restart = "never" (default) | "on-failure" | "always"
	// MaxRestarts restarts are allowed within RestartWindow; one more marks
	// the agent failed. RestartDelay is the first backoff (doubling, capped
	// at 30s, with jitter).
	MaxRestarts   int           // max_restarts = 5
	RestartWindow time.Duration // restart_window = "1m"
	RestartDelay  time.Duration // restart_delay = "200ms"
	// MaxTurns is the agent's budget of applied actions (max_turns; 0 = no
	// limit): when it is spent the agent is stopped cleanly.
	MaxTurns int
	// UnhealthyAfter missed deadlines in a row report the agent unhealthy
	// (unhealthy_after; 0 = never); with RestartUnhealthy its process is then
	// killed, so that its restart policy applies.
	UnhealthyAfter   int
	RestartUnhealthy bool
	// PoolSize is, for runtime "pool", how many of the block's agents one
	// process serves (pool_size; default DefaultPoolSize, at most Count).
	PoolSize int
	// LLM holds the settings of runtime "claude" (and "mcp": MCPConfigEnv).
	LLM LLM
	// Resource limits of each of the block's agents (0: not limited):
	// Memory in bytes (memory = "256MiB"), Pids the processes and threads
	// of the agent and all its descendants at once (pids = 64), CPU the
	// share of one core (cpu = 0.5).
	Memory int64
	Pids   int64
	CPU    float64
	// MaxLine is, for runtime "stdio", the longest stdout line the host
	// accepts, in bytes without the newline (max_line = "64KiB"; 0: the
	// bridge's default, agents.DefaultStdioMaxLine). A longer line is
	// discarded up to its newline and counted.
	MaxLine int64
}

// DefaultPoolSize is a pool's default pool_size; MaxPoolSize the largest.
const (
	DefaultPoolSize = 1000
	MaxPoolSize     = MaxAgentCount
)

// Pools splits the block's ids into its pools, in id order: pool k
// (1-based) is named PoolID(k). Nil unless the runtime is "pool".
func (a Agent) Pools() [][]world.AgentID {
	if a.Runtime != RuntimePool {
		return nil
	}
	size := a.PoolSize
	if size <= 0 {
		size = DefaultPoolSize
	}
	ids := a.IDs()
	var out [][]world.AgentID
	for len(ids) > 0 {
		n := min(size, len(ids))
		out = append(out, ids[:n:n])
		ids = ids[n:]
	}
	return out
}

// PoolID names the block's k-th pool (1-based): NAME-pool-K.
func (a Agent) PoolID(k int) string { return a.Name + "-pool-" + strconv.Itoa(k) }

// IDs returns the agent ids this block makes: NAME when Count is 1,
// NAME-1 .. NAME-N otherwise.
func (a Agent) IDs() []world.AgentID {
	if a.Count <= 1 {
		return []world.AgentID{world.AgentID(a.Name)}
	}
	ids := make([]world.AgentID, a.Count)
	for i := range ids {
		ids[i] = world.AgentID(a.Name + "-" + strconv.Itoa(i+1))
	}
	return ids
}
