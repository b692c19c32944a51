package world

import "time"

// Clock is where the loop reads time and sets its timers. World logic never
// sees it: worlds get tick counts only. WallClock is the default; tests use
// worldtest.ManualClock, which moves only when told to.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once, d from now (at once if d <= 0).
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer made by a Clock.
type Timer interface {
	// C is the channel the timer's time is sent on.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it was still pending.
	Stop() bool
}

// WallClock returns the clock of the machine (package time).
func WallClock() Clock { return wallClock{} }

type wallClock struct{}

func (wallClock) Now() time.Time                 { return time.Now() }
func (wallClock) NewTimer(d time.Duration) Timer { return wallTimer{time.NewTimer(d)} }

type wallTimer struct{ t *time.Timer }

func (w wallTimer) C() <-chan time.Time { return w.t.C }
func (w wallTimer) Stop() bool          { return w.t.Stop() }
