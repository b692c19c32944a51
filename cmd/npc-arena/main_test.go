package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/internal/leaktest"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

func TestMain(m *testing.M) {
	builtin.Main() // this test binary is also the chasers' binary
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	os.Exit(m.Run())
}

var summary = regexp.MustCompile(`frames (\d+)  ticks (\d+)  answered: chaser (\d+) runner (\d+) trader (\d+)`)

func playArena(t *testing.T, args ...string) (string, *terrarium.Result) {
	t.Helper()
	leaktest.Goroutines(t)
	out := filepath.Join(t.TempDir(), "run")
	for _, d := range []string{filepath.Dir(out), filepath.Dir(filepath.Dir(out))} {
		_ = os.Chmod(d, 0o755) // agents may run as their own users
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), append(args, "--out", out), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	var res terrarium.Result
	b, err := os.ReadFile(filepath.Join(out, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	res.Dir = out
	recs, err := events.ReadFile(filepath.Join(out, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Verify(recs); err != nil {
		t.Fatal(err)
	}
	return stdout.String(), &res
}

func counts(t *testing.T, out string) []int {
	t.Helper()
	m := summary.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in:\n%s", out)
	}
	var n []int
	for _, s := range m[1:] {
		v, _ := strconv.Atoi(s)
		n = append(n, v)
	}
	return n
}

// Headless lockstep: every frame waits for every NPC, so the game is
// deterministic for its seed: chasers (processes) and the in-process crowd
// answer every frame, and the chasers catch runners while traders trade.
func TestHeadlessLockstepArena(t *testing.T) {
	out, res := playArena(t, "--frames", "30", "--fps", "200", "--stepping", "lockstep", "--chasers", "2", "--runners", "6", "--traders", "2")
	n := counts(t, out)
	if n[0] != 30 || n[1] != 30 || n[2] != 2*30 || n[3] != 6*30 || n[4] != 2*30 {
		t.Errorf("frames, ticks, answered = %v; want 30, 30 and every NPC every frame", n)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != 30 {
		t.Errorf("result %s after %d ticks", res.Status, res.Ticks)
	}
	w := res.World.(map[string]any)
	if w["catches"].(float64) < 1 || w["trades"].(float64) < 1 {
		t.Errorf("nobody caught or traded in 30 frames: %v", w)
	}
	for _, a := range res.Agents {
		if a.Group == roleChaser && (a.Pid == 0 || a.Status != "stopped") {
			t.Errorf("chaser %s: pid %d, %s", a.ID, a.Pid, a.Status)
		}
	}
	again, _ := playArena(t, "--frames", "30", "--fps", "200", "--stepping", "lockstep", "--chasers", "2", "--runners", "6", "--traders", "2")
	if last := regexp.MustCompile(`tick 30  catches \d+  trades \d+`); last.FindString(out) != last.FindString(again) || res.StateHash == "" {
		t.Errorf("same seed, different games:\n%s\n%s", out, again)
	}
}

// Headless realtime: the game's loop is the clock; a frame never waits for
// an NPC, so only the frame count is certain. Whatever landed when, the
// event log records it so that the run replays: stepping a fresh arena with
// each tick.closed's actions gives every recorded state hash.
func TestHeadlessRealtimeArena(t *testing.T) {
	out, res := playArena(t, "--frames", "20", "--fps", "50")
	if n := counts(t, out); n[0] != 20 || n[1] != 20 {
		t.Errorf("frames, ticks = %v, want 20, 20", n[:2])
	}
	if res.Status != terrarium.StatusFinished {
		t.Errorf("status %s", res.Status)
	}
	recs, err := events.ReadFile(filepath.Join(res.Dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var o options
	o.width, o.height, o.chasers, o.runners, o.traders, o.seed, o.stepping, o.fps, o.frames = 32, 12, 3, 16, 4, 1, scenarios.SteppingRealtime, 50, 20
	sc := o.scenario()
	ar := newArena(o.width, o.height, sc.Seats(), o.seed)
	replayed := 0
	for _, rec := range recs {
		if rec.Kind != world.EventTickClosed {
			continue
		}
		var d struct {
			Hash    string `json:"hash"`
			Actions []struct {
				Agent      world.AgentID   `json:"agent"`
				Data       json.RawMessage `json:"data"`
				ActionTick world.Tick      `json:"action_tick"`
			} `json:"actions"`
		}
		if err := json.Unmarshal(rec.Data, &d); err != nil {
			t.Fatal(err)
		}
		var acts []world.Action
		for _, a := range d.Actions {
			tag := rec.Tick
			if a.ActionTick != 0 {
				tag = a.ActionTick
			}
			acts = append(acts, world.Action{Agent: a.Agent, Tick: tag, Data: a.Data})
		}
		if _, err := ar.Step(rec.Tick, acts, world.TickRNG(sc.Seed, rec.Tick)); err != nil {
			t.Fatal(err)
		}
		if got := ar.StateHash(); got != d.Hash {
			t.Fatalf("tick %d: replay hash %s, recorded %s", rec.Tick, got, d.Hash)
		}
		replayed++
	}
	if replayed != 20 || ar.StateHash() != res.StateHash {
		t.Errorf("replayed %d ticks to %s, result says %s", replayed, ar.StateHash(), res.StateHash)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--fps", "0"}, {"--stepping", "turn_based"}, {"--runners", "0"}, {"--frames", "-1"}, {"--nope"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, &stderr)
		}
	}
}
