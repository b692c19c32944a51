package game

import (
	"testing"

	"github.com/terrarium-sim/terrarium/world"
)

// The dashboard's picture of a repeated game: the ranking so far and a row
// per match with its sides, scores and latest moves.
func TestView(t *testing.T) {
	w := mustNew(t, config(4, false), seatsOf("a", "b"))
	step(t, w, 1, act("a", 1, `{"moves":{"m01":"C"}}`), act("b", 1, `{"moves":{"m01":"D"}}`))
	step(t, w, 2, act("a", 2, `{"moves":{"m01":"D"}}`), act("b", 2, `{"moves":{"m01":"D"}}`))
	v, ok := world.ViewOf(w)
	if !ok || len(v.Tables) != 2 {
		t.Fatalf("view %+v, want two tables", v)
	}
	if v.Tables[0].Columns[0] != "rank" || len(v.Tables[0].Rows) != 2 {
		t.Errorf("ranking table %+v", v.Tables[0])
	}
	m := v.Tables[1]
	want := []string{"m01", "a", "b", "1 : 6", "CD / DD"} // PD: C vs D 0:5, then D vs D 1:1
	if m.Title != "matches after round 2" || len(m.Rows) != 1 {
		t.Fatalf("match table %+v", m)
	}
	for i, c := range want {
		if m.Rows[0][i] != c {
			t.Errorf("match row %q, want %q", m.Rows[0], want)
			break
		}
	}
}
