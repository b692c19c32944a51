package world

import (
	"encoding/json"
	"math/rand/v2"
	"regexp"
)

// AgentID names one agent process in a run. It matches IDPattern.
type AgentID string

// Tick counts world steps. The first tick is 1; 0 means "before the first tick".
type Tick uint64

// IDPattern is what run ids and agent ids must match.
var IDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Seat is one agent as the world sees it: its id and the group (the scenario's
// agent block) it was made from. Index is its 1-based position within the group.
type Seat struct {
	ID    AgentID
	Group string
	Index int
}

// Action is what one agent did at one tick. Data is the agent's JSON payload.
type Action struct {
	Agent AgentID         `json:"agent"`
	Tick  Tick            `json:"tick"`
	Data  json.RawMessage `json:"data"`
}

// Event is something the world reports from a step. The loop stamps it with
// the tick and hands it to the run's event writer.
type Event struct {
	Kind   string         `json:"kind"`
	Agent  AgentID        `json:"agent,omitempty"`
	Fields map[string]any `json:"fields,omitempty"`
}

// StepResult is what one step produced.
type StepResult struct {
	// Events the world reports at this tick (kinds are prefixed "world." by the loop
	// unless they already contain a dot).
	Events []Event
	// Metrics holds this tick's value of every metric named by World.Metrics.
	Metrics map[string]float64
}

// World is the simulation the loop steps. One goroutine owns a World: no method
// is ever called concurrently with another.
//
// World logic must be deterministic: it never reads the wall clock or global
// randomness. Step gets a seeded RNG and the tick's actions sorted by agent id,
// so the same scenario, seed and actions give the same state hashes.
type World interface {
	// Observe returns agent id's observation for tick t (called before Step(t)).
	// ok is false when the agent has nothing to do at t: it is then neither
	// sent an observation nor expected to act.
	Observe(id AgentID, t Tick) (obs json.RawMessage, ok bool, err error)
	// Validate checks an action before the loop accepts it. An invalid action
	// is rejected (and counted) and the agent may still send a valid one.
	Validate(a Action) error
	// DefaultAction is the action applied for an agent that sent none at t
	// under the "default" missing-action policy.
	DefaultAction(id AgentID, t Tick) json.RawMessage
	// Step applies tick t. actions holds one action for every agent that was
	// observed at t, sorted by agent id; an agent that exited has none. In
	// realtime stepping an action's Tick may be earlier than t: it arrived
	// late and is applied now.
	Step(t Tick, actions []Action, rng *rand.Rand) (StepResult, error)
	// Done reports that the world has ended (after the last Step).
	Done() bool
	// Metrics names the per-tick metrics, in column order.
	Metrics() []string
	// Result is the world's final summary, written into result.json.
	Result() any
	// Snapshot encodes the full state; Restore(Snapshot()) gives back a world
	// that steps identically. StateHash is a digest of the same state.
	Snapshot() ([]byte, error)
	Restore(snapshot []byte) error
	StateHash() string
}

// Table is a printable summary (for example a ranking). A World may implement
// Tabler to have the CLI print it at the end of a run.
type Table struct {
	Title   string     `json:"title,omitempty"`
	Columns []string   `json:"columns"`
	Rows    [][]string `json:"rows"`
}

// Tabler is implemented by worlds that have a table to print at the end.
type Tabler interface {
	Table() Table
}

// Seeder is implemented by worlds that need the run's seed before the first
// tick, for a random initial layout (the grid world's). The host calls Seed
// once with the scenario's seed, right after New and before any other
// method; Restore stands in for it when a run continues from a snapshot.
type Seeder interface {
	Seed(seed uint64) error
}

// InitialMetricser is implemented by worlds whose initial state (after
// Seed, before the first Step) has metrics: the host writes them as the
// tick-0 row of metrics.csv (a run that starts from a checkpoint has none).
type InitialMetricser interface {
	InitialMetrics() map[string]float64
}
