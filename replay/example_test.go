package replay_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/inproc"
	"github.com/terrarium-sim/terrarium/replay"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

// steps is a game's own world: NPCs step left or right on a line, and a
// gust (the tick's seeded RNG) pushes one of them now and then.
type steps struct {
	pos map[world.AgentID]int
}

func newSteps() *steps { return &steps{pos: map[world.AgentID]int{}} }

func (w *steps) Observe(id world.AgentID, _ world.Tick) (json.RawMessage, bool, error) {
	b, err := json.Marshal(w.pos[id])
	return b, true, err
}
func (w *steps) Validate(a world.Action) error {
	var d int
	if err := json.Unmarshal(a.Data, &d); err != nil || d < -1 || d > 1 {
		return errors.New("a step is -1, 0 or 1")
	}
	return nil
}
func (w *steps) DefaultAction(world.AgentID, world.Tick) json.RawMessage { return json.RawMessage(`0`) }
func (w *steps) Step(_ world.Tick, actions []world.Action, rng *rand.Rand) (world.StepResult, error) {
	for _, a := range actions {
		var d int
		_ = json.Unmarshal(a.Data, &d)
		w.pos[a.Agent] += d
		if rng.IntN(4) == 0 {
			w.pos[a.Agent]++ // the gust
		}
	}
	return world.StepResult{}, nil
}
func (w *steps) Done() bool                { return false }
func (w *steps) Metrics() []string         { return nil }
func (w *steps) Result() any               { return w.pos }
func (w *steps) Snapshot() ([]byte, error) { return json.Marshal(w.pos) }
func (w *steps) Restore(b []byte) error    { return json.Unmarshal(b, &w.pos) }
func (w *steps) StateHash() string {
	b, _ := w.Snapshot()
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// A game that runs its own world (terrarium.Config.World) replays its runs
// by making that world again: the run's scenario names no world kind for
// replay to build.
func ExampleRun_gameWorld() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	runDir := filepath.Join(dir, "run")

	sc := scenarios.New("line")
	sc.Ticks = 20
	npc := scenarios.NewAgent("npc", scenarios.RuntimeInProc, "walker")
	npc.Count = 3
	sc.Add(npc)
	h, err := terrarium.New(terrarium.Config{
		Scenario: sc, World: newSteps(), Dir: runDir,
		InProc: map[string]inproc.Factory{"walker": func(seat world.Seat) inproc.Agent {
			return inproc.Func(func(context.Context, inproc.Observation) (any, error) {
				return seat.Index%3 - 1, nil // -1, 0 or 1
			})
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := h.Run(context.Background())
	_ = h.Close()
	if err != nil {
		fmt.Println(err)
		return
	}

	_, err = replay.Run(runDir, replay.Options{})
	fmt.Println("without the game's world:", errors.Is(err, replay.ErrProgramWorld))

	rep, err := replay.Run(runDir, replay.Options{World: func() world.World { return newSteps() }})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("certified:", rep.Certified, "ticks:", rep.Ticks, "same final state:", rep.Hash == res.StateHash)
	// Output:
	// without the game's world: true
	// certified: true ticks: 20 same final state: true
}
