package terrarium_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/inproc"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

// tally is a game's world: every NPC adds its number to a shared total.
type tally struct {
	total int
	ticks world.Tick
}

func (w *tally) Observe(id world.AgentID, t world.Tick) (json.RawMessage, bool, error) {
	b, err := json.Marshal(map[string]int{"total": w.total})
	return b, true, err
}
func (w *tally) Validate(a world.Action) error {
	var n int
	return json.Unmarshal(a.Data, &n)
}
func (w *tally) DefaultAction(world.AgentID, world.Tick) json.RawMessage { return json.RawMessage(`0`) }
func (w *tally) Step(t world.Tick, actions []world.Action, _ *rand.Rand) (world.StepResult, error) {
	for _, a := range actions {
		var n int
		_ = json.Unmarshal(a.Data, &n)
		w.total += n
	}
	w.ticks = t
	return world.StepResult{Metrics: map[string]float64{"total": float64(w.total)}}, nil
}
func (w *tally) Done() bool                { return false }
func (w *tally) Metrics() []string         { return []string{"total"} }
func (w *tally) Result() any               { return map[string]int{"total": w.total} }
func (w *tally) Snapshot() ([]byte, error) { return json.Marshal(w.total) }
func (w *tally) Restore(b []byte) error    { return json.Unmarshal(b, &w.total) }
func (w *tally) StateHash() string         { return fmt.Sprint(w.total) }

// A game declares its NPCs in Go, supplies its own world, and steps the
// host from its own loop: each Step is exactly one tick.
func ExampleHost_Step() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	sc := scenarios.New("tally")
	crowd := scenarios.NewAgent("npc", scenarios.RuntimeInProc, "adder")
	crowd.Count = 100
	sc.Add(crowd)

	w := &tally{}
	h, err := terrarium.New(terrarium.Config{
		Scenario: sc, World: w, Dir: filepath.Join(dir, "run"), StepManually: true,
		InProc: map[string]inproc.Factory{"adder": func(seat world.Seat) inproc.Agent {
			return inproc.Func(func(ctx context.Context, obs inproc.Observation) (any, error) {
				return seat.Index, nil // NPC i adds i
			})
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	ctx := context.Background()
	if err := h.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	for range 3 { // the game's own loop
		rep, err := h.Step(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("tick %d: %d NPCs acted, total %.0f\n", rep.Tick, len(rep.Answered), rep.Metrics["total"])
	}
	// Output:
	// tick 1: 100 NPCs acted, total 5050
	// tick 2: 100 NPCs acted, total 10100
	// tick 3: 100 NPCs acted, total 15150
}

// A program can let Terrarium drive the ticks and follow the run on a
// channel of events, which never slows the world down.
func ExampleHost_Events() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	sc := scenarios.New("watched")
	sc.Ticks = 5
	sc.Add(scenarios.NewAgent("npc", scenarios.RuntimeInProc, "one"))
	h, err := terrarium.New(terrarium.Config{
		Scenario: sc, World: &tally{}, Dir: filepath.Join(dir, "run"), EventBuffer: 256,
		InProc: map[string]inproc.Factory{"one": func(world.Seat) inproc.Agent {
			return inproc.Func(func(context.Context, inproc.Observation) (any, error) { return 1, nil })
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	if err := h.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	for rec := range h.Events() { // closed after run.finished
		if rec.Kind == world.EventTickClosed || rec.Kind == "run.finished" {
			fmt.Println(rec.Tick, rec.Kind)
		}
	}
	res, err := h.Wait()
	fmt.Println(res.Status, err)
	// Output:
	// 1 tick.closed
	// 2 tick.closed
	// 3 tick.closed
	// 4 tick.closed
	// 5 tick.closed
	// 5 run.finished
	// finished <nil>
}
