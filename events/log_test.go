package events_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/world"
)

func subj(kind string) string { return "sim.r1.events." + kind }

// A log written, closed and appended to (a resumed run) is one chain;
// ReadLog names the first bad line of a damaged copy.
func TestAppendAndReadLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	w, err := events.Create(path, "r1", subj, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Emit(events.RunStarted, 0, "", nil)
	w.Emit("world.x", 1, "a", map[string]any{"n": 1})
	w.Emit(world.EventTickClosed, 1, "", map[string]any{"actions": []map[string]any{{"agent": "b", "data": 2}, {"agent": "a", "data": 1}}, "hash": "h1", "wall_us": 7})
	seq, last := w.Last()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	a, err := events.Append(path, "r1", seq, last, subj, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Emit(events.RunResumed, 1, "", nil)
	a.Emit(world.EventTickClosed, 2, "", map[string]any{"actions": []any{}, "hash": "h2", "wall_us": 9})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	lg, err := events.ReadLog(path)
	if err != nil || lg.Bad != nil || len(lg.Records) != 5 {
		t.Fatalf("read: %v, bad %v, %d records", err, lg.Bad, len(lg.Records))
	}
	p, err := events.Project(lg.Records)
	if err != nil || len(p) != 2 || p[0].Hash != "h1" || len(p[0].Events) != 1 || p[0].Actions[0].Agent != "a" || len(p[1].Events) != 0 {
		t.Errorf("projection %+v %v", p, err)
	}

	b, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(b), "\n")
	bad := strings.Replace(strings.Join(lines, ""), `"hash":"h2"`, `"hash":"h3"`, 1)
	os.WriteFile(path, []byte(bad), 0o644)
	lg, _ = events.ReadLog(path)
	if lg.Bad == nil || lg.Bad.Line != 5 || len(lg.Records) != 4 || !strings.Contains(lg.Bad.Error(), "events.jsonl:5: hash mismatch") {
		t.Errorf("changed line 5: %v, %d good", lg.Bad, len(lg.Records))
	}
	os.WriteFile(path, []byte(strings.Join(lines[:2], "")+"{\"v\":1,"), 0o644)
	lg, _ = events.ReadLog(path)
	if lg.Bad == nil || lg.Bad.Line != 3 || !strings.Contains(lg.Bad.Reason, "cut short") {
		t.Errorf("cut line 3: %v", lg.Bad)
	}
	os.WriteFile(path, []byte(lines[1]+lines[0]), 0o644)
	lg, _ = events.ReadLog(path)
	if lg.Bad == nil || lg.Bad.Line != 1 || !strings.Contains(lg.Bad.Reason, "seq 2, want 1") {
		t.Errorf("swapped lines: %v", lg.Bad)
	}
}

// A tick closed twice (a log spliced from two runs) is not a projection.
func TestProjectRefusesRepeatedTick(t *testing.T) {
	recs := []events.Record{
		{Kind: world.EventTickClosed, Tick: 1, Data: []byte(`{"actions":[],"hash":"a"}`)},
		{Kind: world.EventTickClosed, Tick: 1, Data: []byte(`{"actions":[],"hash":"a"}`)},
	}
	if _, err := events.Project(recs); err == nil || !strings.Contains(err.Error(), "tick 1 closed after tick 1") {
		t.Errorf("Project: %v", err)
	}
}

// A late realtime action keeps the tick it answered in the projection,
// and WorldActions tags it with that tick, as the loop did; a lockstep
// tick projects to exactly the JSON it always did (no action_tick), so its
// Digest is unchanged.
func TestProjectKeepsActionTick(t *testing.T) {
	recs := []events.Record{
		{Kind: world.EventTickClosed, Tick: 1, Data: []byte(`{"actions":[{"agent":"b","data":2,"filled":"default"},{"agent":"a","data":1}],"hash":"h1","wall_us":3}`)},
		{Kind: world.EventTickClosed, Tick: 2, Data: []byte(`{"actions":[{"action_tick":1,"agent":"slow","data":7,"late_ticks":1,"late_us":1500},{"agent":"a","data":1}],"hash":"h2"}`)},
	}
	p, err := events.Project(recs)
	if err != nil || len(p) != 2 {
		t.Fatalf("Project: %v, %v", p, err)
	}
	b, _ := json.Marshal(p[0])
	if want := `{"tick":1,"actions":[{"agent":"a","data":1},{"agent":"b","data":2,"filled":"default"}],"hash":"h1"}`; string(b) != want {
		t.Errorf("lockstep tick projects to\n%s\nwant\n%s", b, want)
	}
	b, _ = json.Marshal(p[1])
	if want := `{"tick":2,"actions":[{"agent":"a","data":1},{"agent":"slow","data":7,"action_tick":1}],"hash":"h2"}`; string(b) != want {
		t.Errorf("realtime tick projects to\n%s\nwant\n%s", b, want)
	}
	var tags []string
	for _, tp := range p {
		for _, a := range tp.WorldActions() {
			tags = append(tags, fmt.Sprintf("%s@%d=%s", a.Agent, a.Tick, a.Data))
		}
	}
	if got, want := strings.Join(tags, " "), "a@1=1 b@1=2 a@2=1 slow@1=7"; got != want {
		t.Errorf("world actions %s, want %s", got, want)
	}
}
