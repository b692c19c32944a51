package world

import "sync"

// Gate is the pause switch a loop checks before each step: open, it lets
// every step through; paused, it holds them, letting one through per Step
// call. The Loop pauses its ticks with one; a program playing a recorded
// run back (replay.Player) pauses its playback with another. Pause,
// Resume, Step and Paused may be called from any goroutine.
type Gate struct {
	mu      sync.Mutex
	paused  bool
	credits int // steps granted while paused, not yet taken
	changed chan struct{}
}

// NewGate returns an open gate.
func NewGate() *Gate { return &Gate{changed: make(chan struct{}, 1)} }

// Pause holds the steps after the current one.
func (g *Gate) Pause() { g.set(func() { g.paused = true }) }

// Resume opens the gate (steps granted and not taken are dropped).
func (g *Gate) Resume() { g.set(func() { g.paused, g.credits = false, 0 }) }

// Step lets one more step through a paused gate; it reports false, doing
// nothing, when the gate is open.
func (g *Gate) Step() bool {
	stepped := false
	g.set(func() {
		if g.paused {
			g.credits++
			stepped = true
		}
	})
	return stepped
}

// Paused reports whether Pause was called without a Resume since.
func (g *Gate) Paused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.paused
}

// Pass is the loop's check before a step: pass says it may take it now
// (the gate is open, or a step was granted, which this uses up); paused
// is whether the gate is paused. A loop that may not pass waits for
// Changed and checks again.
func (g *Gate) Pass() (pass, paused bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused && g.credits > 0 {
		g.credits--
		return true, true
	}
	return !g.paused, g.paused
}

// Changed is signalled (a buffered channel of one) whenever Pause, Resume
// or Step changes the gate.
func (g *Gate) Changed() <-chan struct{} { return g.changed }

func (g *Gate) set(f func()) {
	g.mu.Lock()
	f()
	g.mu.Unlock()
	select {
	case g.changed <- struct{}{}:
	default:
	}
}
