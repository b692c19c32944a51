package world_test

import (
	"testing"

	"github.com/terrarium-sim/terrarium/world"
)

// An open gate lets every step through; a paused one holds them but for
// one per Step; Resume drops the steps not taken; Changed is signalled.
func TestGate(t *testing.T) {
	g := world.NewGate()
	if pass, paused := g.Pass(); !pass || paused {
		t.Fatalf("open gate: pass %v paused %v", pass, paused)
	}
	if g.Step() {
		t.Error("Step on an open gate granted a step")
	}
	g.Pause()
	select {
	case <-g.Changed():
	default:
		t.Error("Pause did not signal Changed")
	}
	if pass, paused := g.Pass(); pass || !paused || !g.Paused() {
		t.Fatalf("paused gate: pass %v paused %v", pass, paused)
	}
	if !g.Step() || !g.Step() {
		t.Fatal("Step on a paused gate granted nothing")
	}
	for i := 0; i < 2; i++ {
		if pass, paused := g.Pass(); !pass || !paused {
			t.Errorf("granted step %d: pass %v paused %v", i, pass, paused)
		}
	}
	if pass, _ := g.Pass(); pass {
		t.Error("a third pass after two steps")
	}
	g.Step()
	g.Resume()
	if pass, paused := g.Pass(); !pass || paused || g.Paused() {
		t.Errorf("resumed: pass %v paused %v", pass, paused)
	}
	g.Pause()
	if pass, _ := g.Pass(); pass {
		t.Error("a step granted before Resume survived it")
	}
}
