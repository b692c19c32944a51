package echo

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/terrarium-sim/terrarium/world"
)

// Kind is the world kind's name in scenario files.
const Kind = "echo"

// MetricActions is the one per-tick metric: the number of actions applied.
const MetricActions = "actions"

// Config is the world block's settings.
type Config struct {
	// Rounds is how many ticks the world lasts (0: until the scenario's
	// tick limit).
	Rounds int `hcl:"rounds,optional"`
	// Payload is the length of the padding string in every observation, in
	// bytes (default 64); the observation is {"tick":T,"pad":"..."}.
	Payload int `hcl:"payload,optional"`
}

// MaxPayload bounds Config.Payload, well below the bus's message limit.
const MaxPayload = 256 << 10

func init() {
	world.Register(world.Kind{
		Name:      Kind,
		Doc:       "every agent gets a fixed-size observation each tick and may answer any JSON; nothing is scored (for measuring hosting)",
		NewConfig: func() any { return &Config{Payload: 64} },
		New: func(config any, seats []world.Seat) (world.World, error) {
			return New(*config.(*Config))
		},
	})
}

// World is the echo world. One goroutine owns it (world.World).
type World struct {
	rounds  world.Tick
	pad     string
	played  world.Tick
	actions uint64
}

// New checks c and returns a fresh world.
func New(c Config) (*World, error) {
	switch {
	case c.Rounds < 0:
		return nil, fmt.Errorf("rounds = %d: want 0 (until the scenario's tick limit) or more", c.Rounds)
	case c.Payload < 0 || c.Payload > MaxPayload:
		return nil, fmt.Errorf("payload = %d: want 0 to %d bytes", c.Payload, MaxPayload)
	}
	return &World{rounds: world.Tick(c.Rounds), pad: strings.Repeat("x", c.Payload)}, nil
}

// Observe returns {"tick":T,"pad":"xxx..."} for every agent at every tick.
func (w *World) Observe(_ world.AgentID, t world.Tick) (json.RawMessage, bool, error) {
	b := make([]byte, 0, len(w.pad)+40)
	b = append(b, `{"tick":`...)
	b = strconv.AppendUint(b, uint64(t), 10)
	b = append(b, `,"pad":"`...)
	b = append(b, w.pad...)
	b = append(b, `"}`...)
	return b, true, nil
}

// Validate accepts every action: the envelope already proved it is JSON.
func (w *World) Validate(world.Action) error { return nil }

// DefaultAction is {}.
func (w *World) DefaultAction(world.AgentID, world.Tick) json.RawMessage {
	return json.RawMessage(`{}`)
}

// Step counts the tick's actions.
func (w *World) Step(t world.Tick, actions []world.Action, _ *rand.Rand) (world.StepResult, error) {
	w.played = t
	w.actions += uint64(len(actions))
	return world.StepResult{Metrics: map[string]float64{MetricActions: float64(len(actions))}}, nil
}

// Done reports that Rounds ticks were played (never, with Rounds 0).
func (w *World) Done() bool { return w.rounds > 0 && w.played >= w.rounds }

// Metrics names the per-tick metric.
func (w *World) Metrics() []string { return []string{MetricActions} }

// Result is the ticks played and the actions applied.
func (w *World) Result() any {
	return map[string]any{"ticks_played": w.played, "actions": w.actions}
}

type snapshot struct {
	Played  world.Tick `json:"played"`
	Actions uint64     `json:"actions"`
}

// Snapshot encodes the ticks played and actions applied.
func (w *World) Snapshot() ([]byte, error) {
	return json.Marshal(snapshot{w.played, w.actions})
}

// Restore sets the state from a Snapshot.
func (w *World) Restore(b []byte) error {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("restore echo world: %w", err)
	}
	w.played, w.actions = s.Played, s.Actions
	return nil
}

// StateHash is "<ticks played>/<actions applied>".
func (w *World) StateHash() string {
	return strconv.FormatUint(uint64(w.played), 10) + "/" + strconv.FormatUint(w.actions, 10)
}
