package game_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/world"
	"github.com/terrarium-sim/terrarium/world/game"
)

func npSeats(n int) []world.Seat {
	s := make([]world.Seat, n)
	for i := range s {
		s[i] = world.Seat{ID: world.AgentID(fmt.Sprintf("p-%02d", i+1)), Group: "p", Index: i + 1}
	}
	return s
}

func npPlay(t *testing.T, w *game.NPlayer, s []world.Seat, tick world.Tick, moves string) world.StepResult {
	t.Helper()
	var acts []world.Action
	for i, st := range s {
		if moves[i] == '-' {
			continue // no action: the default move
		}
		a := world.Action{Agent: st.ID, Tick: tick, Data: json.RawMessage(`{"move":"` + moves[i:i+1] + `"}`)}
		if err := w.Validate(a); err != nil {
			t.Fatal(err)
		}
		acts = append(acts, a)
	}
	res, err := w.Step(tick, acts, world.TickRNG(1, tick))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestElFarolRounds(t *testing.T) {
	c := game.NewNPlayerConfig()
	c.Game, c.Threshold, c.Rounds, c.History = game.ElFarol, 2, 3, 2
	s := npSeats(4)
	w, err := game.NewNPlayer(*c, s)
	if err != nil {
		t.Fatal(err)
	}
	m := npPlay(t, w, s, 1, "GGSS")
	if m.Metrics["attendance"] != 2 || m.Metrics["crowded"] != 0 {
		t.Fatalf("round 1 metrics %v", m.Metrics)
	}
	m = npPlay(t, w, s, 2, "GGG-") // the fourth plays the default, stay
	if m.Metrics["attendance"] != 3 || m.Metrics["crowded"] != 1 {
		t.Fatalf("round 2 metrics %v", m.Metrics)
	}
	obs, ok, err := w.Observe("p-01", 3)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	var o game.NPlayerObservation
	json.Unmarshal(obs, &o)
	if o.Round != 3 || len(o.History) != 2 || o.History[0] != 2 || o.History[1] != 3 || o.You != "GG" || o.Threshold != 2 {
		t.Fatalf("observation %s", obs)
	}
	npPlay(t, w, s, 3, "SSSS")
	if !w.Done() {
		t.Fatal("not done after 3 rounds")
	}
	r := w.Result().(game.NPlayerResult)
	// Round 1: two go, not crowded (+1 each); round 2: three go, crowded
	// (-1 each); round 3: nobody goes.
	if r.MeanAttendance != 5.0/3 || r.Groups[0].MeanScore != (1+1-1-1-1)/12.0 {
		t.Fatalf("result %+v", r)
	}
}

func TestMinorityVolatilityAndRestore(t *testing.T) {
	c := game.NewNPlayerConfig()
	c.Game, c.Rounds = game.Minority, 4
	s := npSeats(3)
	w, _ := game.NewNPlayer(*c, s)
	npPlay(t, w, s, 1, "AAB") // B wins; excess +1
	npPlay(t, w, s, 2, "AAA") // B wins; excess +3
	snap, err := w.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	w2, _ := game.NewNPlayer(*c, s)
	if err := w2.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if w2.StateHash() != w.StateHash() {
		t.Fatal("restored hash differs")
	}
	npPlay(t, w, s, 3, "BBA")
	npPlay(t, w2, s, 3, "BBA")
	if w2.StateHash() != w.StateHash() {
		t.Fatal("restored world diverged")
	}
	r := w.Result().(game.NPlayerResult)
	// excess 1, 3, -1: mean 1, variance (0+4+4)/3; over N = 3.
	if want := 8.0 / 9; r.Volatility < want-1e-12 || r.Volatility > want+1e-12 {
		t.Fatalf("volatility %v, want %v", r.Volatility, want)
	}
	// Round 1: B (one) wins; round 2: everyone on A loses; round 3: A (one) wins.
	if r.Groups[0].MeanScore != (-1-1+1-1-1-1-1-1+1)/9.0 {
		t.Fatalf("scores %+v", r.Groups)
	}
}

func TestNPlayerErrors(t *testing.T) {
	for _, tc := range []struct {
		edit func(c *game.NPlayerConfig)
		n    int
		want string
	}{
		{func(c *game.NPlayerConfig) { c.Game = "chicken" }, 3, "unknown N-player game"},
		{func(c *game.NPlayerConfig) { c.Game = game.Minority }, 4, "odd number"},
		{func(c *game.NPlayerConfig) { c.Game, c.Threshold = game.ElFarol, 200 }, 100, "threshold = 200"},
		{func(c *game.NPlayerConfig) { c.Game, c.Threshold = game.Minority, 3 }, 5, "setting of game"},
		{func(c *game.NPlayerConfig) { c.Game, c.DefaultMove = game.ElFarol, "A" }, 5, "not a move"},
	} {
		c := game.NewNPlayerConfig()
		tc.edit(c)
		if _, err := game.NewNPlayer(*c, npSeats(tc.n)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
	c := game.NewNPlayerConfig()
	c.Game, c.Threshold = game.ElFarol, 2
	w, err := game.NewNPlayer(*c, npSeats(3))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{"move":"X"}`, `{"move":"G","extra":1}`, `{}`, `[`} {
		if err := w.Validate(world.Action{Agent: "p-01", Tick: 1, Data: json.RawMessage(bad)}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
