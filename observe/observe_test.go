package observe_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/observe"
	"github.com/terrarium-sim/terrarium/world"
)

func rec(seq uint64, kind string, tick world.Tick, agent string) events.Record {
	return events.Record{V: 1, Seq: seq, Kind: kind, Tick: tick, Agent: world.AgentID(agent)}
}

func TestFilterMatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    observe.Filter
		r    events.Record
		want bool
	}{
		{"zero filter", observe.Filter{}, rec(1, "run.started", 0, ""), true},
		{"glob", observe.Filter{Kinds: []string{"agent.*"}}, rec(2, "agent.exited", 0, "a"), true},
		{"glob does not cross kinds", observe.Filter{Kinds: []string{"agent.*"}}, rec(2, "tick.closed", 0, ""), false},
		{"second glob", observe.Filter{Kinds: []string{"agent.*", "world.*"}}, rec(2, "world.match_finished", 3, ""), true},
		{"agent", observe.Filter{Agents: []string{"a", "b"}}, rec(2, "agent.ready", 0, "b"), true},
		{"other agent", observe.Filter{Agents: []string{"a"}}, rec(2, "agent.ready", 0, "c"), false},
		{"no agent", observe.Filter{Agents: []string{"a"}}, rec(2, "tick.closed", 1, ""), false},
		{"from tick", observe.Filter{FromTick: 3}, rec(2, "tick.closed", 2, ""), false},
		{"to tick inclusive", observe.Filter{FromTick: 3, ToTick: 5}, rec(2, "tick.closed", 5, ""), true},
		{"past to tick", observe.Filter{ToTick: 5}, rec(2, "tick.closed", 6, ""), false},
		{"after seq is exclusive", observe.Filter{AfterSeq: 7}, rec(7, "tick.closed", 1, ""), false},
		{"after seq", observe.Filter{AfterSeq: 7}, rec(8, "tick.closed", 1, ""), true},
	} {
		if got := tc.f.Match(tc.r); got != tc.want {
			t.Errorf("%s: Match = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFilterPastAndCheck(t *testing.T) {
	f := observe.Filter{ToTick: 5}
	if f.Past(rec(1, "tick.closed", 6, "")) {
		t.Error("past after tick 6 closed: events of tick 5 (stamped with the last closed tick) may still come")
	}
	if !f.Past(rec(1, "tick.closed", 7, "")) {
		t.Error("not past after tick 7 closed")
	}
	if (observe.Filter{}).Past(rec(1, "tick.closed", 100, "")) {
		t.Error("a filter without ToTick is never past")
	}
	if err := (observe.Filter{Kinds: []string{"["}}).Check(); err == nil {
		t.Error("a malformed glob passed Check")
	}
	if err := (observe.Filter{FromTick: 5, ToTick: 3}).Check(); err == nil {
		t.Error("an empty tick range passed Check")
	}
}

func TestParseTicks(t *testing.T) {
	for _, tc := range []struct {
		in       string
		from, to world.Tick
		ok       bool
	}{
		{"10:20", 10, 20, true}, {"10:", 10, 0, true}, {":20", 0, 20, true}, {":", 0, 0, true},
		{"10", 0, 0, false}, {"a:b", 0, 0, false}, {"-1:2", 0, 0, false},
	} {
		from, to, err := observe.ParseTicks(tc.in)
		if (err == nil) != tc.ok || from != tc.from || to != tc.to {
			t.Errorf("ParseTicks(%q) = %d, %d, %v", tc.in, from, to, err)
		}
	}
}

func TestWriteLineAndJSON(t *testing.T) {
	r := rec(34, "tick.closed", 7, "")
	r.Time = time.Date(2026, 12, 4, 8, 12, 1, 123456000, time.UTC)
	r.Data = json.RawMessage(`{"actions":[` + strings.Repeat(`{"agent":"a","data":{"moves":{"m01":"C"}}},`, 9) + `{"agent":"b"}],"hash":"9c1f2a3b4c5d6e7f","wall_us":812,"note":"two words"}`)
	var b bytes.Buffer
	if err := observe.WriteLine(&b, r); err != nil {
		t.Fatal(err)
	}
	want := `#34 08:12:01.123 t7 tick.closed actions=[10] hash=9c1f2a3b note="two words" wall_us=812` + "\n"
	if b.String() != want {
		t.Errorf("line\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	a := rec(2, "agent.ready", 0, "p1")
	if err := observe.WriteLine(&b, a); err != nil || !strings.HasSuffix(b.String(), " t0 agent.ready p1\n") {
		t.Errorf("line without data: %q, %v", b.String(), err)
	}
	// --json writes the record as events.jsonl has it: the hash still verifies.
	r.Prev = ""
	line, err := events.Seal(&r)
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := observe.WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	if b.String() != string(line)+"\n" {
		t.Errorf("json\n%s\nwant\n%s", b.String(), line)
	}
}
