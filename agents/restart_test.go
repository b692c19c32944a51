package agents

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestRestartTracker(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type exit struct {
		at    float64 // seconds after t0
		clean bool
		want  Decision
	}
	base := RestartPolicy{Attempts: 3, Window: 10 * time.Second, Delay: time.Second, MaxDelay: 3 * time.Second, Jitter: 0}
	with := func(mode string) RestartPolicy { p := base; p.Mode = mode; return p }
	cases := []struct {
		name   string
		policy RestartPolicy
		exits  []exit
	}{
		{"never restarts", with(RestartNever), []exit{{0, false, Decision{}}, {1, true, Decision{}}}},
		{"on-failure: a clean exit is final", with(RestartOnFailure), []exit{{0, true, Decision{}}}},
		{"on-failure: crashes back off, then fail", with(RestartOnFailure), []exit{
			{0, false, Decision{Restart: true, Delay: time.Second, Attempt: 1}},
			{1, false, Decision{Restart: true, Delay: 2 * time.Second, Attempt: 2}},
			{3, false, Decision{Restart: true, Delay: 3 * time.Second, Attempt: 3}}, // capped at MaxDelay
			{6, false, Decision{Failed: true}},
		}},
		{"always: clean exits restart too", with(RestartAlways), []exit{
			{0, true, Decision{Restart: true, Delay: time.Second, Attempt: 1}},
			{1, false, Decision{Restart: true, Delay: 2 * time.Second, Attempt: 2}},
		}},
		{"the window forgets old restarts", with(RestartOnFailure), []exit{
			{0, false, Decision{Restart: true, Delay: time.Second, Attempt: 1}},
			{1, false, Decision{Restart: true, Delay: 2 * time.Second, Attempt: 2}},
			{2, false, Decision{Restart: true, Delay: 3 * time.Second, Attempt: 3}},
			{30, false, Decision{Restart: true, Delay: time.Second, Attempt: 1}}, // all three are older than 10s
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewRestartTracker(tc.policy)
			for i, e := range tc.exits {
				if got := tr.Exited(at(e.at), e.clean, nil); got != e.want {
					t.Fatalf("exit %d at %vs (clean %v): %+v, want %+v", i, e.at, e.clean, got, e.want)
				}
			}
		})
	}
}

func TestRestartTrackerJitterStaysInBounds(t *testing.T) {
	tr := NewRestartTracker(RestartPolicy{Mode: RestartAlways, Attempts: 1000, Window: time.Hour, Delay: time.Second, MaxDelay: time.Second, Jitter: 0.2})
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		d := tr.Exited(time.Unix(int64(i), 0), false, r).Delay
		if d < 800*time.Millisecond || d > 1200*time.Millisecond {
			t.Fatalf("delay %v outside 1s ± 20%%", d)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Errorf("only %d distinct delays in 200: no jitter", len(seen))
	}
}
