package town_test

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/world"
	"github.com/terrarium-sim/terrarium/world/town"
)

func seats(ids ...string) []world.Seat {
	out := make([]world.Seat, len(ids))
	for i, id := range ids {
		out[i] = world.Seat{ID: world.AgentID(id), Group: id, Index: 1}
	}
	return out
}

type obs struct {
	Place     string   `json:"place"`
	Here      []string `json:"here"`
	ItemsHere []string `json:"items_here"`
	Inventory []string `json:"inventory"`
	Heard     []struct {
		From, Text string
	} `json:"heard"`
}

func observe(t *testing.T, w *town.World, id string, tick world.Tick) obs {
	t.Helper()
	b, ok, err := w.Observe(world.AgentID(id), tick)
	if err != nil || !ok {
		t.Fatalf("observe %s: %v %v", id, ok, err)
	}
	var o obs
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

func step(t *testing.T, w *town.World, tick world.Tick, acts map[string]string) world.StepResult {
	t.Helper()
	var list []world.Action
	for _, id := range []string{"ada", "bob", "cy"} {
		if a, ok := acts[id]; ok {
			if err := w.Validate(world.Action{Agent: world.AgentID(id), Tick: tick, Data: json.RawMessage(a)}); err != nil {
				t.Fatalf("validate %s %s: %v", id, a, err)
			}
			list = append(list, world.Action{Agent: world.AgentID(id), Tick: tick, Data: json.RawMessage(a)})
		}
	}
	res, err := w.Step(tick, list, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Speech is heard by those in the same place only, at the next tick;
// a move takes effect after the tick's speech; items move by take and give.
func TestTownRules(t *testing.T) {
	w, err := town.New(town.Config{Places: []string{"square", "hall"}, Items: map[string][]string{"square": {"lantern"}}}, seats("ada", "bob", "cy"))
	if err != nil {
		t.Fatal(err)
	}
	step(t, w, 1, map[string]string{"ada": `{"do":"say","text":"festival at the hall"}`, "bob": `{"do":"take","item":"lantern"}`, "cy": `{"do":"move","to":"hall"}`})
	if o := observe(t, w, "bob", 2); len(o.Heard) != 1 || o.Heard[0].Text != "festival at the hall" || o.Heard[0].From != "ada" || strings.Join(o.Inventory, ",") != "lantern" {
		t.Errorf("bob at tick 2: %+v; want ada's words and the lantern", o)
	}
	// cy was in the square when ada spoke (speech before moves), and is in the hall now.
	if o := observe(t, w, "cy", 2); o.Place != "hall" || len(o.Heard) != 1 {
		t.Errorf("cy at tick 2: %+v; want in the hall, having heard ada", o)
	}
	step(t, w, 2, map[string]string{"cy": `{"do":"say","text":"nobody here"}`, "bob": `{"do":"give","item":"lantern","to":"ada"}`})
	if o := observe(t, w, "ada", 3); len(o.Heard) != 0 || strings.Join(o.Inventory, ",") != "lantern" {
		t.Errorf("ada at tick 3: %+v; want nothing heard from the hall, and the lantern", o)
	}
	res := step(t, w, 3, map[string]string{"bob": `{"do":"give","item":"lantern","to":"cy"}`})
	if len(res.Events) != 1 || res.Events[0].Kind != "refused" {
		t.Errorf("give of an item bob does not carry: events %+v, want one refusal", res.Events)
	}
	if err := w.Validate(world.Action{Agent: "ada", Data: json.RawMessage(`{"do":"move","to":"moon"}`)}); err == nil {
		t.Error("a move to an unknown place was accepted")
	}
	if err := w.Validate(world.Action{Agent: "ada", Data: json.RawMessage(`{"do":"dance"}`)}); err == nil {
		t.Error("an unknown action was accepted")
	}
	// Snapshot and restore give the same state.
	snap, err := w.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	w2, _ := town.New(town.Config{Places: []string{"square", "hall"}}, seats("ada", "bob", "cy"))
	if err := w2.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if w2.StateHash() != w.StateHash() {
		t.Error("restored town hashes differently")
	}
}

func TestTownConfigErrors(t *testing.T) {
	for _, c := range []town.Config{{}, {Places: []string{"a", "a"}}, {Places: []string{"a"}, Start: "b"}, {Places: []string{"a"}, Items: map[string][]string{"b": {"x"}}}} {
		if _, err := town.New(c, seats("ada")); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}
