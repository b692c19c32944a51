package town_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/world"
	"github.com/terrarium-sim/terrarium/world/town"
)

// The dashboard's picture of the town: every place with who is there and
// what lies or is carried there, and what was said.
func TestView(t *testing.T) {
	w, err := town.New(town.Config{Places: []string{"square", "hall"}, Items: map[string][]string{"square": {"lantern", "bread"}}}, seats("ada", "bob", "cy"))
	if err != nil {
		t.Fatal(err)
	}
	step(t, w, 1, map[string]string{"ada": `{"do":"say","text":"to the hall"}`, "bob": `{"do":"take","item":"lantern"}`, "cy": `{"do":"move","to":"hall"}`})
	v, ok := world.ViewOf(w)
	if !ok || len(v.Places) != 2 {
		t.Fatalf("view %+v, want two places", v)
	}
	sq, hall := v.Places[0], v.Places[1]
	if sq.Name != "square" || !slices.Equal(sq.Agents, []world.AgentID{"ada", "bob"}) || strings.Join(sq.Items, ",") != "bread,lantern (carried by bob)" {
		t.Errorf("square %+v", sq)
	}
	if hall.Name != "hall" || !slices.Equal(hall.Agents, []world.AgentID{"cy"}) || len(hall.Items) != 0 {
		t.Errorf("hall %+v", hall)
	}
	if len(v.Lines) != 1 || v.Lines[0] != "t1 ada: to the hall" {
		t.Errorf("lines %q", v.Lines)
	}
	// The view is the world's state then: a later step does not change it.
	step(t, w, 2, map[string]string{"ada": `{"do":"move","to":"hall"}`})
	if !slices.Equal(sq.Agents, []world.AgentID{"ada", "bob"}) {
		t.Errorf("an earlier view changed: %+v", sq)
	}
}
