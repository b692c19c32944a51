package terrarium_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/internal/leaktest"
)

// terrarium ps on a live run (no result.json yet): an agent stopped by
// max_turns shows stopped with the reason, an agent that stopped answering
// shows unhealthy, a healthy one ready with its pid; and the run running.
func TestRunStateOfALiveRun(t *testing.T) {
	leaktest.Goroutines(t)
	sc := writeScenario(t, `
scenario "live" {
  ticks           = 1000000
  action_deadline = "100ms" # mute misses every tick from 3 on: about 10 ticks a second
}
world "repeated_game" {
  rounds = 1000000
}
agent "thrifty" {
  runtime   = "builtin"
  command   = "cooperator"
  max_turns = 2
}
agent "mute" {
  runtime         = "builtin"
  command         = "test_silent_from_3"
  unhealthy_after = 2
}
agent "steady" {
  runtime = "builtin"
  command = "cooperator"
}
`)
	dir := filepath.Join(openTempDir(t), "run")
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: testLogger(t), Dir: dir, Env: raceEnv})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := h.Run(context.Background())
		done <- err
	}()
	var st *terrarium.RunState
	state := func(id string) terrarium.AgentState {
		for _, a := range st.Agents {
			if a.ID == id {
				return a
			}
		}
		return terrarium.AgentState{}
	}
	eventually(t, "thrifty's exit and mute's agent.unhealthy in the event log", func() bool {
		recs, _ := events.ReadFile(filepath.Join(dir, "events.jsonl")) // a live log may end in a partial line
		exited, unhealthy := false, false
		for _, r := range recs {
			exited = exited || r.Kind == events.AgentExited && r.Agent == "thrifty"
			unhealthy = unhealthy || r.Kind == events.AgentUnhealthy && r.Agent == "mute"
		}
		return exited && unhealthy
	})
	st, err = terrarium.ReadRunState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "result.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("result.json exists (%v): the run is not live", err)
	}
	if st.Status != "running" {
		t.Errorf("status %q, want running", st.Status)
	}
	if a := state("thrifty"); a.State != "stopped" || a.LastError != "max_turns 2 reached" || a.Turns != 2 {
		t.Errorf("thrifty %+v, want stopped, max_turns 2 reached, 2 turns", a)
	}
	if a := state("mute"); a.State != "unhealthy" || !strings.Contains(a.LastError, "missed 2 deadlines in a row") || a.Turns != 2 || a.Missing < 2 {
		t.Errorf("mute %+v, want unhealthy after missing 2 deadlines in a row", a)
	}
	if a := state("steady"); a.State != "ready" || a.Pid <= 0 || a.LastError != "" {
		t.Errorf("steady %+v, want ready with its pid", a)
	}
	_ = h.Close()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	verifiedEvents(t, dir)
	// Once the run has ended, result.json has the last word.
	st, err = terrarium.ReadRunState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a := state("thrifty"); st.Status != terrarium.StatusInterrupted || a.State != "stopped" || a.LastError != "max_turns 2 reached" {
		t.Errorf("after the run: %s, thrifty %+v", st.Status, a)
	}
}
