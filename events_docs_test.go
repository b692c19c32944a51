package terrarium_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/observe"
)

// docKind is one kind's section of docs/events.md.
type docKind struct {
	line     int
	fields   map[string]bool // its data fields
	examples []events.Record
}

// parseEventDocs reads the kinds of docs/events.md: each "### `kind`"
// section, the rows of its "| data field |" table, and its ```json examples
// (one record a line).
func parseEventDocs(t *testing.T) map[string]*docKind {
	t.Helper()
	f, err := os.Open("docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	docs := map[string]*docKind{}
	var cur *docKind
	inTable, inJSON := false, false
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case inJSON && strings.HasPrefix(line, "```"):
			inJSON = false
		case inJSON:
			var r events.Record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Errorf("docs/events.md:%d: example is not an event record: %v", n, err)
				continue
			}
			cur.examples = append(cur.examples, r)
		case strings.HasPrefix(line, "### `"):
			name := strings.TrimSuffix(strings.TrimPrefix(line, "### `"), "`")
			cur = &docKind{line: n, fields: map[string]bool{}}
			docs[name] = cur
			inTable = false
		case strings.HasPrefix(line, "## "):
			cur, inTable = nil, false
		case cur != nil && strings.HasPrefix(line, "| data field |"):
			inTable = true
		case inTable && strings.HasPrefix(line, "| `"):
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
			cur.fields[name] = true
		case inTable && !strings.HasPrefix(line, "|"):
			inTable = false
		case cur != nil && line == "```json":
			inJSON = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return docs
}

// dataKeys returns the keys of a record's data.
func dataKeys(t *testing.T, r events.Record) []string {
	t.Helper()
	if len(r.Data) == 0 {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.Data, &m); err != nil {
		t.Fatalf("event %d (%s): data is not an object: %s", r.Seq, r.Kind, r.Data)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Part 2 of issue 4: every kind a real run emits is documented, with every
// data field it carries; the documented examples agree with the tables.
func TestEventsMatchTheirDocumentation(t *testing.T) {
	docs := parseEventDocs(t)
	for kind, d := range docs {
		if kind == "world.<kind>" {
			continue // the family's heading; its members have sections
		}
		if len(d.examples) == 0 {
			t.Errorf("docs/events.md:%d: %s has no ```json example", d.line, kind)
		}
		for _, ex := range d.examples {
			if ex.Kind != kind || ex.V != events.SchemaVersion {
				t.Errorf("docs/events.md:%d: %s's example is kind %q, v %d", d.line, kind, ex.Kind, ex.V)
			}
			for _, k := range dataKeys(t, ex) {
				if !d.fields[k] {
					t.Errorf("docs/events.md:%d: %s's example has data field %q, which its table does not list", d.line, kind, k)
				}
			}
		}
	}

	crash := filepath.Join(openTempDir(t), "crash.sh")
	if err := os.WriteFile(crash, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sc := writeScenario(t, `
scenario "docs" {
  ticks           = 8
  action_deadline = "300ms"
}
world "repeated_game" { rounds = 8 }
agent "crashy" {
  command        = "`+crash+`"
  restart        = "on-failure"
  max_restarts   = 1
  restart_delay  = "10ms"
  restart_window = "1m"
}
agent "sleepy" {
  runtime           = "builtin"
  command           = "test_silent_at_3"
  unhealthy_after   = 1
  restart_unhealthy = true
  restart           = "on-failure"
  restart_delay     = "10ms"
}
agent "thrifty" {
  runtime   = "builtin"
  command   = "cooperator"
  max_turns = 3
}
agent "stale" {
  runtime = "builtin"
  command = "test_stale"
}
agent "double" {
  runtime = "builtin"
  command = "test_double"
}
agent "steady" {
  runtime = "builtin"
  command = "tit_for_tat"
}
`)
	// An observer that tries what it may not: a violation during the run.
	h, err := terrarium.New(terrarium.Config{
		Scenario: sc, Logger: testLogger(t), Dir: filepath.Join(openTempDir(t), "run"), Env: raceEnv,
		Observers: func(in observe.Info) {
			nc, err := nats.Connect(in.URL, nats.UserInfo(in.User, in.Password), nats.CustomInboxPrefix(in.InboxPrefix),
				nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
			if err != nil {
				t.Errorf("observer: %v", err)
				return
			}
			t.Cleanup(nc.Close)
			_ = nc.Publish(bus.WorldSubject(in.Run, bus.KindEnd), []byte("forged"))
			_ = nc.Flush()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := h.Run(ctx)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	recs, err := events.ReadFile(filepath.Join(res.Dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	assertNoAgentsLeft(t, recs)

	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.Kind] = true
	}
	checkDocumented(t, recs)
	// The run exercised the kinds it is built to (so the check above means something).
	for _, k := range []string{
		events.RunStarted, events.AgentSpawned, events.AgentReady, events.AgentExited, events.AgentRestarting,
		events.AgentFailed, events.AgentUnhealthy, events.AgentSpent, events.Violation, events.RunFinished,
		"tick.closed", "action.missing", "action.late", "action.rejected", "world.match_finished",
	} {
		if !seen[k] {
			t.Errorf("the documentation run emitted no %s", k)
		}
	}
}

var (
	eventDocsOnce sync.Once
	eventDocs     map[string]*docKind
)

// checkDocumented checks every record against docs/events.md: its kind
// has a section, its schema version is the documented one, and every
// data field it carries is in its table. Tests whose runs emit kinds the
// documentation run does not (leases, files, the grid, the town, LLM
// agents, pauses) call it on their events.
func checkDocumented(t *testing.T, recs []events.Record) {
	t.Helper()
	eventDocsOnce.Do(func() { eventDocs = parseEventDocs(t) })
	docs := eventDocs
	for _, r := range recs {
		d, ok := docs[r.Kind]
		if !ok {
			t.Errorf("event kind %q is emitted but has no section in docs/events.md", r.Kind)
			continue
		}
		if r.V != events.SchemaVersion {
			t.Errorf("event %d: v %d, docs say %d", r.Seq, r.V, events.SchemaVersion)
		}
		for _, k := range dataKeys(t, r) {
			if !d.fields[k] {
				t.Errorf("event %d %s has data field %q, not in its table in docs/events.md:%d", r.Seq, r.Kind, k, d.line)
			}
		}
	}
}
