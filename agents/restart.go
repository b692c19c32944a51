package agents

import (
	"math/rand/v2"
	"time"
)

// Restart policies.
const (
	RestartNever     = "never"      // an exit is final
	RestartOnFailure = "on-failure" // restart after a non-zero exit or a signal; a clean exit is final
	RestartAlways    = "always"     // restart after any exit while the run goes on
)

// RestartPolicy says when and how fast an agent is restarted.
type RestartPolicy struct {
	Mode string // RestartNever, RestartOnFailure or RestartAlways
	// Attempts is how many restarts are allowed within Window; one more
	// marks the agent failed. Defaults 5 and 1 minute; a negative Attempts
	// allows none.
	Attempts int
	Window   time.Duration
	// Delay is the first backoff; each restart within the window doubles it,
	// up to MaxDelay. Defaults 200ms and 30s. Jitter spreads each delay by up
	// to ±Jitter of itself (default 0.2) so crashing agents do not restart in
	// lockstep; a negative Jitter means none.
	Delay    time.Duration
	MaxDelay time.Duration
	Jitter   float64
}

// Decision is what to do after an exit.
type Decision struct {
	Restart bool          // start the agent again after Delay
	Delay   time.Duration // how long to wait first
	Attempt int           // which restart this is (1 = the first), when Restart
	Failed  bool          // too many restarts within the window: give up, mark the agent failed
}

// RestartTracker decides, exit by exit, whether one agent is restarted. It
// is a pure object: time and randomness come in as arguments, so its
// behaviour is a table of inputs and outputs.
type RestartTracker struct {
	p      RestartPolicy
	recent []time.Time // restarts within the window, oldest first
}

// NewRestartTracker fills the policy's defaults.
func NewRestartTracker(p RestartPolicy) *RestartTracker {
	if p.Mode == "" {
		p.Mode = RestartNever
	}
	switch {
	case p.Attempts == 0:
		p.Attempts = 5
	case p.Attempts < 0:
		p.Attempts = 0 // no restarts at all: the first crash fails the agent
	}
	if p.Window <= 0 {
		p.Window = time.Minute
	}
	if p.Delay <= 0 {
		p.Delay = 200 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 30 * time.Second
	}
	if p.MaxDelay < p.Delay {
		p.MaxDelay = p.Delay
	}
	switch {
	case p.Jitter == 0 || p.Jitter >= 1:
		p.Jitter = 0.2
	case p.Jitter < 0:
		p.Jitter = 0 // none
	}
	return &RestartTracker{p: p}
}

// Exited returns the decision for an exit at now; clean is whether the exit
// was clean (status 0). r supplies the jitter (nil: none).
func (t *RestartTracker) Exited(now time.Time, clean bool, r *rand.Rand) Decision {
	switch {
	case t.p.Mode == RestartNever:
		return Decision{}
	case t.p.Mode == RestartOnFailure && clean:
		return Decision{}
	}
	// Forget restarts older than the window.
	keep := t.recent[:0]
	for _, at := range t.recent {
		if now.Sub(at) < t.p.Window {
			keep = append(keep, at)
		}
	}
	t.recent = keep
	if len(t.recent) >= t.p.Attempts {
		return Decision{Failed: true}
	}
	d := t.p.Delay
	for i := 0; i < len(t.recent) && d < t.p.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, t.p.MaxDelay)
	if r != nil && t.p.Jitter > 0 {
		d = time.Duration(float64(d) * (1 + t.p.Jitter*(2*r.Float64()-1)))
	}
	t.recent = append(t.recent, now)
	return Decision{Restart: true, Delay: d, Attempt: len(t.recent)}
}
