package terrarium_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/world"
)

// stdioActs is a stdio agent's shell loop: it answers every observation
// with {"line":"short"}, after running before (a shell command, with
// $tick set) at each tick.
func stdioActs(before string) string {
	return `
    while read -r line; do
      case "$line" in *'"type":"obs"'*) ;; *) continue ;; esac
      tick=$(printf '%s' "$line" | sed 's/.*"tick":\([0-9]*\).*/\1/')
      ` + before + `
      printf '{"type":"act","tick":%s,"data":{"line":"short"}}\n' "$tick"
    done`
}

// diskResult is what the tests read back from result.json as written.
type diskResult struct {
	Agents []struct {
		ID       string                 `json:"id"`
		Dropped  int                    `json:"dropped"`
		Actions  int                    `json:"actions"`
		Missing  int                    `json:"missing"`
		Late     int                    `json:"late"`
		Rejected int                    `json:"rejected"`
		Stdio    *terrarium.StdioCounts `json:"stdio"`
	} `json:"agents"`
}

func readDiskResult(t *testing.T, dir string) diskResult {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d diskResult
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// appliedPerTick maps each closed tick to its applied actions by agent,
// failing the test if a tick applied two actions of one agent.
func appliedPerTick(t *testing.T, recs []events.Record) map[world.Tick]map[string]actionRecord {
	t.Helper()
	out := map[world.Tick]map[string]actionRecord{}
	for _, r := range kinds(recs, world.EventTickClosed) {
		byAgent := map[string]actionRecord{}
		for _, a := range tickActions(t, r) {
			if _, dup := byAgent[a.Agent]; dup {
				t.Errorf("tick %d applied two actions of %s", r.Tick, a.Agent)
			}
			byAgent[a.Agent] = a
		}
		out[r.Tick] = byAgent
	}
	return out
}

// Case 6: one agent floods its action subject with 100,000 actions in one
// tick while another writes 10 MB to stdout without a newline. At most one
// action per agent per tick is applied, the flood's excess is counted
// (every message the flooder sent is an applied action, a refused one in
// result.json and the event log, or a dropped one), the long line is
// discarded and counted, and no other agent's action is dropped or misses
// its deadline.
func TestFloodsHurtNobodyElse(t *testing.T) {
	const ticks = 5
	sc := writeScenario(t, fmt.Sprintf(`
scenario "floods" {
  ticks           = %d
  # A tick ends as soon as every action is in; a host that the flood held
  # up for this long would fail the others' deadlines.
  action_deadline = "20s"
}
world "echo" {}
agent "flood" {
  runtime = "builtin"
  command = "test_flood"
}
agent "longline" {
  runtime = "stdio"
  command = "/bin/sh"
  args    = ["-c", <<-EOT
    %s
    EOT
  ]
}
agent "honest" {
  runtime = "builtin"
  command = "ack"
  count   = 3
}
`, ticks, stdioActs(`[ "$tick" = 1 ] && { head -c 10000000 /dev/zero | tr '\000' x; echo; }`)))
	res, recs, err := runScenario(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != ticks {
		t.Fatalf("run %s after %d ticks, want finished after %d", res.Status, res.Ticks, ticks)
	}
	others := []string{"longline", "honest-1", "honest-2", "honest-3"}

	// Every agent has exactly one applied action at every tick (the echo
	// world counts what it applied too: 5 agents, 5 ticks), and none of the
	// others' was filled in by the missing-action policy.
	applied := appliedPerTick(t, recs)
	for tick := world.Tick(1); tick <= ticks; tick++ {
		for _, id := range append([]string{"flood"}, others...) {
			a, ok := applied[tick][id]
			switch {
			case !ok:
				t.Errorf("tick %d: no action of %s applied", tick, id)
			case a.Filled != "":
				t.Errorf("tick %d: %s's action was filled in (%s): it missed its deadline", tick, id, a.Filled)
			}
		}
		if n := len(applied[tick]); n != 5 {
			t.Errorf("tick %d applied %d actions, want 5", tick, n)
		}
	}
	if want := fmt.Sprintf("%d/%d", ticks, 5*ticks); res.StateHash != want {
		t.Errorf("state hash %s, want %s (ticks/actions applied)", res.StateHash, want)
	}

	disk := readDiskResult(t, res.Dir)
	byID := map[string]int{}
	for i, a := range disk.Agents {
		byID[a.ID] = i
	}
	for _, id := range others {
		a := disk.Agents[byID[id]]
		if a.Actions != ticks || a.Missing+a.Late+a.Rejected+a.Dropped != 0 {
			t.Errorf("%s in result.json: %+v; want %d actions, nothing missing, refused or dropped", id, a, ticks)
		}
	}

	// The flood's excess, counted in full.
	f := disk.Agents[byID["flood"]]
	b, err := os.ReadFile(filepath.Join(res.Dir, "workspace", "agents", "flood", floodSentFile))
	if err != nil {
		t.Fatal(err)
	}
	sent, err := strconv.Atoi(string(b))
	if err != nil || sent < floodSize+ticks-1 {
		t.Fatalf("the flooder says it sent %q actions, want at least %d", b, floodSize+ticks-1)
	}
	if f.Actions != ticks || f.Missing != 0 {
		t.Errorf("flood in result.json: %+v; want %d actions applied, one per tick", f, ticks)
	}
	t.Logf("flood: sent %d, applied %d, rejected %d, late %d, dropped %d", sent, f.Actions, f.Rejected, f.Late, f.Dropped)
	if got := f.Actions + f.Rejected + f.Late + f.Dropped; got != sent {
		t.Errorf("the flooder sent %d actions; result.json accounts for %d (%d applied, %d rejected, %d late, %d dropped)",
			sent, got, f.Actions, f.Rejected, f.Late, f.Dropped)
	}
	// In the event log: each refusal is an event, or counted in a
	// "suppressed" summary, with at most MaxRefusalEvents of them per tick.
	refusals, written := 0, []events.Record{}
	for _, r := range append(kinds(recs, world.EventActionRejected), kinds(recs, world.EventActionLate)...) {
		if r.Agent != "flood" {
			t.Errorf("refusal event for %s: %s", r.Agent, r.Data)
			continue
		}
		var d struct {
			Reason string `json:"reason"`
			Count  int    `json:"count"`
		}
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.Reason == world.RejectSuppressed {
			refusals += d.Count
			continue
		}
		refusals++
		written = append(written, r)
	}
	if refusals != f.Rejected+f.Late {
		t.Errorf("the event log accounts for %d refused actions, result.json for %d", refusals, f.Rejected+f.Late)
	}
	// (A tick's window of MaxRefusalEvents runs from one tick's close to
	// the next's, so the late ones after tick 1 are also tagged tick 1.)
	if n := len(written); n > (ticks+1)*world.MaxRefusalEvents {
		t.Errorf("%d refusal events written for a flood of %d, want at most %d", n, floodSize, (ticks+1)*world.MaxRefusalEvents)
	}
	// Drops (the host's queue for the flooder overflowed) are reported as
	// message.dropped, for the flooder only.
	reported := 0
	for _, r := range kinds(recs, events.MessagesDropped) {
		var d struct{ Dropped int }
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		if r.Agent != "flood" || d.Dropped > f.Dropped {
			t.Errorf("message.dropped for %s, %d dropped; result.json: flood dropped %d", r.Agent, d.Dropped, f.Dropped)
		}
		reported = max(reported, d.Dropped)
	}
	if (f.Dropped > 0) != (reported > 0) {
		t.Errorf("flood dropped %d messages, message.dropped events report %d", f.Dropped, reported)
	}

	// The long line: discarded and counted; the agent went on acting.
	l := disk.Agents[byID["longline"]]
	if l.Stdio == nil || l.Stdio.LongLines != 1 || l.Stdio.Obs != ticks || l.Stdio.Acts != ticks || l.Stdio.BadLines != 0 {
		t.Errorf("longline stdio counts %+v, want %d observations and acts, the one long line counted", l.Stdio, ticks)
	}
	log, err := os.ReadFile(filepath.Join(res.Dir, "logs", "longline.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "stdout line over the limit discarded") || !strings.Contains(string(log), "bytes=10000000") {
		t.Errorf("longline.log does not report the discarded 10 MB line:\n%.2000s", log)
	}
}

// Case 7: a stdio agent that never reads its stdin, sent observations far
// larger than a pipe holds. Its deadlines expire at every tick, the other
// agents play every tick, the host never blocks on the pipe, and the run
// finishes.
func TestStdioAgentThatNeverReads(t *testing.T) {
	// Each observation is four times what a pipe holds (64 KiB): the
	// bridge's write of the first one to the deaf agent's stdin blocks for
	// good, and the later ones wait in its bounded queue (the queue's
	// overflow is agents.TestStdioChildThatNeverReadsStdinDoesNotBlockTheHost).
	const ticks = 6
	sc := writeScenario(t, fmt.Sprintf(`
scenario "deaf" {
  ticks           = %d
  action_deadline = "1s"
}
world "echo" {
  payload = 262144
}
agent "deaf" {
  runtime = "stdio"
  command = "/bin/sh"
  args    = ["-c", "exec sleep 300"] # holds its stdin open, never reads it
}
agent "honest" {
  runtime = "builtin"
  command = "ack"
  count   = 2
}
`, ticks))
	res, recs, err := runScenario(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != ticks {
		t.Fatalf("run %s after %d ticks, want finished after %d", res.Status, res.Ticks, ticks)
	}
	applied := appliedPerTick(t, recs)
	missing := map[world.Tick]bool{}
	for _, r := range kinds(recs, world.EventActionMissing) {
		if r.Agent != "deaf" {
			t.Errorf("action.missing for %s at tick %d", r.Agent, r.Tick)
		}
		missing[r.Tick] = true
	}
	for tick := world.Tick(1); tick <= ticks; tick++ {
		if a := applied[tick]["deaf"]; a.Filled != "default" || !missing[tick] {
			t.Errorf("tick %d: deaf's action %+v, action.missing %v; want its deadline expired and the default filled in", tick, a, missing[tick])
		}
		for _, id := range []string{"honest-1", "honest-2"} {
			if a, ok := applied[tick][id]; !ok || a.Filled != "" {
				t.Errorf("tick %d: %s's action %+v, want its own", tick, id, a)
			}
		}
	}
	d := agentResult(t, res, "deaf")
	if d.Missing != ticks || d.Actions != 0 {
		t.Errorf("deaf %+v, want %d missed deadlines", d.AgentStats, ticks)
	}
	if d.Stdio == nil || d.Stdio.Obs != ticks || d.Stdio.Acts != 0 {
		t.Errorf("deaf stdio counts %+v, want %d observations taken from the bus, no acts", d.Stdio, ticks)
	}
}

// max_line sets a stdio agent's longest stdout line: with 4KiB, an act
// line of 5000 bytes is discarded and counted while one of 3000 bytes is
// applied.
func TestStdioMaxLineFromScenario(t *testing.T) {
	pad := func(n int) string { return strings.Repeat("x", n) }
	sc := writeScenario(t, fmt.Sprintf(`
scenario "maxline" {
  ticks           = 2
  action_deadline = "60s"
}
world "echo" {}
agent "s" {
  runtime  = "stdio"
  command  = "/bin/sh"
  max_line = "4KiB"
  args     = ["-c", <<-EOT
    %s
    EOT
  ]
}
`, stdioActs(fmt.Sprintf(`[ "$tick" = 1 ] && printf '{"type":"act","tick":1,"data":{"pad":"%s"}}\n'
      [ "$tick" = 2 ] && printf '{"type":"act","tick":2,"data":{"pad":"%s"}}\n' && continue`, pad(5000), pad(3000)))))
	res, recs, err := runScenario(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	applied := appliedPerTick(t, recs)
	if got := string(applied[1]["s"].Data); got != `{"line":"short"}` {
		t.Errorf("tick 1 applied %.60s, want the short action: the 5000-byte line is over max_line", got)
	}
	if got := string(applied[2]["s"].Data); got != `{"pad":"`+pad(3000)+`"}` {
		t.Errorf("tick 2 applied %.60s, want the 3000-byte action: it is within max_line", got)
	}
	if s := agentResult(t, res, "s"); s.Stdio == nil || s.Stdio.LongLines != 1 {
		t.Errorf("stdio counts %+v, want the one long line counted", s.Stdio)
	}
}
