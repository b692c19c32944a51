package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/agenttest"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/agents/llmtest"
	"github.com/terrarium-sim/terrarium/agents/mcpserver"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/internal/leaktest"
	"github.com/terrarium-sim/terrarium/replay"
	"github.com/terrarium-sim/terrarium/world"
)

func TestMain(m *testing.M) {
	builtin.Main() // this test binary is also the chasers' binary
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	// A developer's real key must not add LLM NPCs to the tests' games:
	// the LLM test sets a dummy one and its own model server.
	os.Unsetenv("ANTHROPIC_API_KEY")
	os.Unsetenv("ANTHROPIC_BASE_URL")
	os.Exit(m.Run())
}

var summary = regexp.MustCompile(`frames (\d+)  ticks (\d+)  answered: chaser (\d+) runner (\d+) trader (\d+) llm (\d+)`)

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
	for _, r := range recs {
		var d struct{ Pid int }
		if r.Kind == events.AgentSpawned && (json.Unmarshal(r.Data, &d) != nil || d.Pid <= 0 || agenttest.Alive(d.Pid)) {
			t.Errorf("agent %s: spawned %s, and its process is still running or has no pid", r.Agent, r.Data)
		}
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
	replayArena(t, res, "--frames", "30", "--fps", "200", "--stepping", "lockstep", "--chasers", "2", "--runners", "6", "--traders", "2")
	again, _ := playArena(t, "--frames", "30", "--fps", "200", "--stepping", "lockstep", "--chasers", "2", "--runners", "6", "--traders", "2")
	if last := regexp.MustCompile(`tick 30  catches \d+  trades \d+`); last.FindString(out) != last.FindString(again) || res.StateHash == "" {
		t.Errorf("same seed, different games:\n%s\n%s", out, again)
	}
}

// Headless realtime: the game's loop is the clock; a frame never waits for
// an NPC, so only the frame count is certain. Whatever landed when, the
// event log records it so that the run replays: replay.Run with a fresh
// arena, made as the game made it, certifies every recorded state hash.
func TestHeadlessRealtimeArena(t *testing.T) {
	args := []string{"--frames", "20", "--fps", "50"}
	out, res := playArena(t, args...)
	if n := counts(t, out); n[0] != 20 || n[1] != 20 {
		t.Errorf("frames, ticks = %v, want 20, 20", n[:2])
	}
	if res.Status != terrarium.StatusFinished {
		t.Errorf("status %s", res.Status)
	}
	replayArena(t, res, args...)
}

// replayArena replays a finished arena run through the replay API, with
// the arena the game makes for args, and checks that it certifies.
func replayArena(t *testing.T, res *terrarium.Result, args ...string) {
	t.Helper()
	o, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	seats := o.scenario().Seats()
	rep, err := replay.Run(res.Dir, replay.Options{World: func() world.World { return newArena(o.width, o.height, seats, o.seed) }})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Certified || rep.Ticks != res.Ticks || rep.Hash != res.StateHash {
		t.Errorf("replay: certified %v after %d ticks (the run had %d), problems %v", rep.Certified, rep.Ticks, res.Ticks, rep.Problems)
	}
}

// claudeCLI is the claude CLI the test runs: $TERRARIUM_CLAUDE, or the
// pinned one .ci/deps/claude.sh installs; the test is skipped without one.
func claudeCLI(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TERRARIUM_CLAUDE"); p != "" {
		return p
	}
	p, err := filepath.Abs("../../agents/claude/cli/node_modules/.bin/claude")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("the claude CLI is not installed (%v): run bash .ci/deps/claude.sh, or set TERRARIUM_CLAUDE", err)
	}
	return p
}

// With an API key in the environment, an LLM chaser joins the game: the
// real claude CLI, pointed at a scripted Messages API, plays through the
// host's MCP tools. Lockstep, so every frame waits for its move: the move
// the model chose from each frame's observation lands at that frame, the
// host counts exactly the tokens the model returned, no process is left,
// and the run replays.
func TestLLMChaserThroughClaude(t *testing.T) {
	cli := claudeCLI(t)
	var mu sync.Mutex
	chose := map[world.Tick]arenaAction{} // the model's move, by the tick it saw
	chase := func(c *llmtest.Call) llmtest.Reply {
		if _, ok := c.LastToolResult(); ok && c.LastToolUse() == mcpserver.ToolName(mcpserver.ToolAct) {
			return llmtest.Reply{Text: "moved"}
		}
		_, rest, ok := strings.Cut(c.LastUserText(), "Your observation:\n")
		obs, _, _ := strings.Cut(rest, "\nSend one action")
		var o arenaObs
		if !ok || json.Unmarshal([]byte(obs), &o) != nil {
			return llmtest.Reply{Text: "waiting for a tick"}
		}
		move, err := decide(json.RawMessage(obs))
		if err != nil || !o.Me.LLM {
			return llmtest.Reply{Text: fmt.Sprintf("not my observation (%v): %s", err, obs)}
		}
		mu.Lock()
		chose[o.Tick] = move
		mu.Unlock()
		return llmtest.Reply{Tool: mcpserver.ToolName(mcpserver.ToolAct), Input: map[string]any{"action": move}}
	}
	srv, err := llmtest.Start(map[string]llmtest.Script{groupLLM: chase})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	t.Setenv("ANTHROPIC_API_KEY", "sk-test-dummy") // the key makes --llm default to 1
	t.Setenv("ANTHROPIC_BASE_URL", srv.URL)
	t.Setenv("API_TIMEOUT_MS", "3000")
	t.Setenv("CLAUDE_CODE_MAX_RETRIES", "1")

	const frames = 3
	args := []string{"--frames", fmt.Sprint(frames), "--fps", "50", "--stepping", "lockstep", "--chasers", "1", "--runners", "4", "--traders", "0", "--claude", cli}
	out, res := playArena(t, args...)
	if n := counts(t, out); n[1] != frames || n[2] != frames || n[5] != frames {
		t.Errorf("ticks %d, chaser answered %d, llm answered %d; want %d each", n[1], n[2], n[5], frames)
	}
	var llm *terrarium.AgentResult
	for i := range res.Agents {
		if res.Agents[i].ID == groupLLM {
			llm = &res.Agents[i]
		}
	}
	if llm == nil || llm.LLM == nil {
		t.Fatalf("no LLM NPC with model counts in result.json: %+v", res.Agents)
	}
	if u := srv.Usage(groupLLM); llm.LLM.InputTokens != u.InputTokens || llm.LLM.OutputTokens != u.OutputTokens || llm.LLM.Turns != srv.Calls(groupLLM) {
		t.Errorf("host counted %+v, the model returned %+v in %d calls", *llm.LLM, u, srv.Calls(groupLLM))
	}
	if !strings.Contains(out, "LLM NPCs: ") {
		t.Errorf("no LLM line in the summary:\n%s", out)
	}
	if reqs := srv.Requests(groupLLM); len(reqs) == 0 || !strings.Contains(reqs[0].SystemText(), `(scenario "npc-arena")`) || !strings.Contains(reqs[0].SystemText(), "You are a chaser in a grid arena") {
		t.Errorf("the model's system prompt does not name the game and its persona: %v", reqs)
	}
	recs, err := events.ReadFile(filepath.Join(res.Dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	applied := 0
	for _, r := range recs {
		if r.Kind != world.EventTickClosed {
			continue
		}
		var d struct {
			Actions []struct {
				Agent  world.AgentID `json:"agent"`
				Data   arenaAction   `json:"data"`
				Filled string        `json:"filled"`
			} `json:"actions"`
		}
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		for _, a := range d.Actions {
			if a.Agent != groupLLM {
				continue
			}
			mu.Lock()
			want, ok := chose[r.Tick]
			mu.Unlock()
			if a.Filled != "" || !ok || a.Data != want {
				t.Errorf("tick %d: the LLM NPC's action %+v (filled %q); the model chose %+v (%v)", r.Tick, a.Data, a.Filled, want, ok)
			}
			applied++
		}
	}
	if applied != frames {
		t.Errorf("%d LLM actions applied, want %d", applied, frames)
	}
	replayArena(t, res, args...)
}

// The key decides the default number of LLM NPCs; without a claude CLI,
// a defaulted one is dropped with a note (the game still plays), an
// explicit --llm is kept (and the run will say what is missing).
func TestLLMFlagDefaults(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-claude")
	for _, c := range []struct {
		key  string
		args []string
		want int
		note bool
	}{
		{"", nil, 0, false},
		{"sk-x", []string{"--claude", "/bin/true"}, 1, false},
		{"sk-x", []string{"--claude", missing}, 0, true},
		{"sk-x", []string{"--llm", "2", "--claude", missing}, 2, false},
		{"", []string{"--llm", "1", "--claude", "/bin/true"}, 1, false},
	} {
		t.Setenv("ANTHROPIC_API_KEY", c.key)
		var stderr bytes.Buffer
		o, err := parseFlags(c.args, &stderr)
		if err != nil || o.llm != c.want || strings.Contains(stderr.String(), "playing without LLM NPCs") != c.note {
			t.Errorf("key %q, %v: --llm %d (err %v), want %d; stderr %q", c.key, c.args, o.llm, err, c.want, &stderr)
		}
		if sc := o.scenario(); (len(sc.Agents) == 4) != (c.want > 0) || c.want > 0 && sc.Agents[3].Count != c.want {
			t.Errorf("key %q, %v: agent blocks %+v", c.key, c.args, sc.Agents)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--fps", "0"}, {"--stepping", "turn_based"}, {"--runners", "0"}, {"--frames", "-1"}, {"--nope"}, {"--llm", "-1"}, {"--llm", "1", "--llm-max-cost", "0"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, &stderr)
		}
	}
}
