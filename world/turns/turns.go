// Package turns is the "turns" world: a clock for agents whose work happens
// outside the world (in the shared workspace, say). Every tick each agent
// is observed with the tick, whose turn it is (round robin over the seats
// in id order) and who is playing; it answers with a JSON object, which may
// say {"done": true} once it has nothing more to do. The world ends after
// rounds ticks, or, with until_done, at the first tick after which every
// agent has said done. Actions are only counted: the world is
// deterministic and knows nothing of files.
package turns

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/terrarium-sim/terrarium/world"
)

func init() {
	world.Register(world.Kind{
		Name:      "turns",
		Doc:       "a round-robin clock for agents whose work is outside the world (shared files); ends after rounds ticks or when every agent said done",
		NewConfig: func() any { return &Config{Rounds: 100} },
		New:       func(c any, seats []world.Seat) (world.World, error) { return New(c.(*Config), seats) },
	})
}

// Config is the world block.
type Config struct {
	// Rounds is the most ticks the world runs (>= 1, default 100).
	Rounds int `hcl:"rounds,optional"`
	// UntilDone ends the world at the first tick after which every agent
	// has said {"done": true} (an agent that exited counts as done).
	UntilDone bool `hcl:"until_done,optional"`
}

type settingError struct {
	setting string
	err     error
}

func (e *settingError) Error() string                  { return e.err.Error() }
func (e *settingError) WorldSetting() (string, string) { return e.setting, "" }

// Observation is what each agent gets every tick.
type Observation struct {
	Tick   world.Tick `json:"tick"`
	Turn   string     `json:"turn"`   // whose turn it is
	Agents []string   `json:"agents"` // every seat, in id order
}

// Action is what an agent answers (other fields are ignored).
type Action struct {
	Done bool `json:"done,omitempty"`
}

type state struct {
	Tick    world.Tick      `json:"tick"`
	Actions map[string]int  `json:"actions"`
	Done    map[string]bool `json:"done"`
	Ended   bool            `json:"ended"`
}

// World is the turns world.
type World struct {
	cfg   Config
	seats []string
	st    state
}

// New builds the world.
func New(cfg *Config, seats []world.Seat) (*World, error) {
	if cfg.Rounds < 1 {
		return nil, &settingError{"rounds", fmt.Errorf("rounds must be at least 1; got %d", cfg.Rounds)}
	}
	w := &World{cfg: *cfg, st: state{Actions: map[string]int{}, Done: map[string]bool{}}}
	for _, s := range seats {
		w.seats = append(w.seats, string(s.ID))
	}
	return w, nil
}

func (w *World) Observe(id world.AgentID, t world.Tick) (json.RawMessage, bool, error) {
	o := Observation{Tick: t, Turn: w.seats[int(t-1)%len(w.seats)], Agents: w.seats}
	b, err := json.Marshal(o)
	return b, true, err
}

func (w *World) Validate(a world.Action) error {
	var act Action
	if err := json.Unmarshal(a.Data, &act); err != nil {
		return errors.New(`an action is a JSON object, like {} or {"done": true}`)
	}
	return nil
}

func (w *World) DefaultAction(world.AgentID, world.Tick) json.RawMessage {
	return json.RawMessage(`{}`)
}

func (w *World) Step(t world.Tick, actions []world.Action, _ *rand.Rand) (world.StepResult, error) {
	w.st.Tick = t
	acted := 0
	seen := map[string]bool{}
	for _, a := range actions {
		seen[string(a.Agent)] = true
		var act Action
		_ = json.Unmarshal(a.Data, &act)
		w.st.Actions[string(a.Agent)]++
		acted++
		if act.Done {
			w.st.Done[string(a.Agent)] = true
		}
	}
	done := 0
	for _, s := range w.seats {
		if !seen[s] {
			w.st.Done[s] = true // exited: it has nothing more to do
		}
		if w.st.Done[s] {
			done++
		}
	}
	if int(t) >= w.cfg.Rounds || (w.cfg.UntilDone && done == len(w.seats)) {
		w.st.Ended = true
	}
	return world.StepResult{Metrics: map[string]float64{"acted": float64(acted), "done": float64(done)}}, nil
}

func (w *World) Done() bool        { return w.st.Ended }
func (w *World) Metrics() []string { return []string{"acted", "done"} }
func (w *World) Result() any {
	return map[string]any{"ticks": w.st.Tick, "actions": w.st.Actions, "done": len(w.st.Done)}
}
func (w *World) Snapshot() ([]byte, error) { return json.Marshal(w.st) }
func (w *World) Restore(b []byte) error {
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("turns: restore: %w", err)
	}
	w.st = st
	return nil
}
func (w *World) StateHash() string {
	b, _ := json.Marshal(w.st)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
