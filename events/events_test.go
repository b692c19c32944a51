package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/world"
)

// tWriter sends log lines to t.Log (shown only when the test fails) and keeps
// a copy to assert on.
type tWriter struct {
	t   *testing.T
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *tWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func subject(kind string) string { return "sim.r1.events." + kind }

// newWriter creates an event writer on a fresh file; it is closed at cleanup.
func newWriter(t *testing.T) (*events.Writer, string, *tWriter) {
	t.Helper()
	logs := &tWriter{t: t}
	path := filepath.Join(t.TempDir(), "events.jsonl")
	w, err := events.Create(path, "r1", subject, hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug}))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w, path, logs
}

// publisher records what it is given.
type publisher struct {
	mu       sync.Mutex
	seqs     []uint64
	subjects []string
	data     [][]byte
}

func (p *publisher) Publish(seq uint64, subject string, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seqs = append(p.seqs, seq)
	p.subjects = append(p.subjects, subject)
	p.data = append(p.data, bytes.Clone(data))
}

func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if s == "" {
		return nil
	}
	if !strings.HasSuffix(s, "\n") {
		t.Fatalf("file does not end with a newline: %q", s[max(0, len(s)-80):])
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func readVerified(t *testing.T, path string) []events.Record {
	t.Helper()
	recs, err := events.ReadFile(path)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := events.Verify(recs); err != nil {
		t.Fatalf("verify: %v", err)
	}
	return recs
}

func TestConcurrentEmitNumbersWithoutGaps(t *testing.T) {
	w, path, _ := newWriter(t)
	pub := &publisher{}
	w.SetPublisher(pub)
	const goroutines, each = 16, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				w.Emit(world.EventTickClosed, world.Tick(i), world.AgentID(fmt.Sprintf("g%d", g)), map[string]any{"g": g, "i": i})
			}
		})
	}
	wg.Wait()
	if got, _ := w.Last(); got != goroutines*each {
		t.Errorf("Seq() = %d, want %d", got, goroutines*each)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	recs := readVerified(t, path)
	if len(recs) != goroutines*each {
		t.Fatalf("%d records, want %d", len(recs), goroutines*each)
	}
	next := map[int]int{} // per goroutine: the i expected next
	for n, r := range recs {
		if r.Seq != uint64(n+1) {
			t.Fatalf("record %d has seq %d", n+1, r.Seq)
		}
		var d struct{ G, I int }
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatalf("record %d data %s: %v", r.Seq, r.Data, err)
		}
		if d.I != next[d.G] || r.Tick != world.Tick(d.I) || r.Agent != world.AgentID(fmt.Sprintf("g%d", d.G)) {
			t.Fatalf("record %d: %+v out of its goroutine's order (want i=%d)", r.Seq, r, next[d.G])
		}
		next[d.G]++
	}
	// Every record was published, in file order, on its kind's subject.
	lines := fileLines(t, path)
	if len(pub.data) != len(lines) {
		t.Fatalf("published %d records, file has %d", len(pub.data), len(lines))
	}
	for i, line := range lines {
		if string(pub.data[i]) != line || pub.subjects[i] != "sim.r1.events.tick.closed" {
			t.Fatalf("publish %d: %s %s, want %s %s", i, pub.subjects[i], pub.data[i], "sim.r1.events.tick.closed", line)
		}
	}
}

func TestPublishUsesKindSubject(t *testing.T) {
	w, path, _ := newWriter(t)
	w.Emit(events.RunStarted, 0, "", nil) // before the first publisher: held for it
	pub := &publisher{}
	w.SetPublisher(pub)
	w.Emit(events.AgentReady, 0, "a", nil)
	w.Emit(world.EventActionLate, 3, "a", map[string]any{"action_tick": 2})
	w.SetPublisher(nil)
	w.Emit(events.RunFinished, 3, "", map[string]any{"status": "finished"})
	if err := w.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	lines := fileLines(t, path)
	if len(lines) != 4 {
		t.Fatalf("file has %d lines, want 4", len(lines))
	}
	// run.started (written before the publisher) is handed to it first;
	// run.finished (after SetPublisher(nil)) is not published.
	want := []string{"sim.r1.events.run.started", "sim.r1.events.agent.ready", "sim.r1.events.action.late"}
	if strings.Join(pub.subjects, " ") != strings.Join(want, " ") {
		t.Errorf("subjects %q, want %q", pub.subjects, want)
	}
	for i, d := range pub.data {
		if string(d) != lines[i] {
			t.Errorf("published %s, want file line %s", d, lines[i])
		}
	}
}

// The publisher gets each record after the file, with its seq, in order.
func TestPublisherGetsSeqInOrder(t *testing.T) {
	w, path, _ := newWriter(t)
	pub := &publisher{}
	w.SetPublisher(pub)
	const n = 10
	for i := range n {
		w.Emit(world.EventTickClosed, world.Tick(i+1), "", map[string]any{"i": i})
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	recs := readVerified(t, path)
	if len(recs) != n || len(pub.seqs) != n {
		t.Fatalf("%d records in the file, %d published, want %d", len(recs), len(pub.seqs), n)
	}
	for i, r := range recs {
		if pub.seqs[i] != r.Seq {
			t.Errorf("publish %d: seq %d, want %d", i, pub.seqs[i], r.Seq)
		}
	}
}

func TestCloseTwiceAndEmitAfterClose(t *testing.T) {
	w, path, _ := newWriter(t)
	pub := &publisher{}
	w.SetPublisher(pub)
	w.Emit(events.RunStarted, 0, "", nil)
	if err := w.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	w.Emit(events.RunFinished, 1, "", nil)
	if got, _ := w.Last(); got != 1 {
		t.Errorf("Seq() after a dropped emit = %d, want 1", got)
	}
	if len(pub.seqs) != 1 {
		t.Errorf("publisher called %d times, want 1", len(pub.seqs))
	}
	if recs := readVerified(t, path); len(recs) != 1 || recs[0].Kind != events.RunStarted {
		t.Errorf("records %+v, want only run.started", recs)
	}
}

func TestCreateRefusesExistingFile(t *testing.T) {
	_, path, _ := newWriter(t)
	_, err := events.Create(path, "r1", subject, hclog.NewNullLogger())
	if err == nil || !errors.Is(err, os.ErrExist) {
		t.Fatalf("create over an existing file: %v, want an error wrapping os.ErrExist", err)
	}
}

// writeSample writes n events and returns the file's lines.
func writeSample(t *testing.T, n int) []string {
	t.Helper()
	w, path, _ := newWriter(t)
	for i := 1; i <= n; i++ {
		w.Emit(world.EventTickClosed, world.Tick(i), "a", map[string]any{"hash": fmt.Sprintf("h%d", i), "n": i})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return fileLines(t, path)
}

func verifyLines(t *testing.T, lines []string) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "edited.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	recs, err := events.ReadFile(path)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return events.Verify(recs)
}

func TestVerifyDetectsTampering(t *testing.T) {
	const n = 5
	lines := writeSample(t, n)
	if err := verifyLines(t, lines); err != nil {
		t.Fatalf("untouched file: %v", err)
	}
	edit := func(k int, old, new string) func([]string) []string {
		return func(ls []string) []string {
			if !strings.Contains(ls[k-1], old) {
				t.Fatalf("line %d has no %q: %s", k, old, ls[k-1])
			}
			ls[k-1] = strings.Replace(ls[k-1], old, new, 1)
			return ls
		}
	}
	field := func(k int, name string) func([]string) []string {
		return func(ls []string) []string {
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(ls[k-1]), &m); err != nil {
				t.Fatal(err)
			}
			v := string(m[name])
			var mod string
			if name == "time" { // another year
				mod = `"1999` + v[5:]
			} else { // another last hex digit
				mod = v[:len(v)-2] + "0" + v[len(v)-1:]
				if mod == v {
					mod = v[:len(v)-2] + "1" + v[len(v)-1:]
				}
			}
			return edit(k, `"`+name+`":`+v, `"`+name+`":`+mod)(ls)
		}
	}
	remove := func(k int) func([]string) []string {
		return func(ls []string) []string { return append(ls[:k-1], ls[k:]...) }
	}
	cases := []struct {
		name   string
		change func([]string) []string
		want   string // error prefix: names the event
	}{
		{"data", edit(3, `"n":3`, `"n":4`), "event 3: hash mismatch"},
		{"tick", edit(3, `"tick":3`, `"tick":30`), "event 3: hash mismatch"},
		{"kind", edit(2, `"kind":"tick.closed"`, `"kind":"tick.opened"`), "event 2: hash mismatch"},
		{"agent", edit(4, `"agent":"a"`, `"agent":"b"`), "event 4: hash mismatch"},
		{"run", edit(1, `"run":"r1"`, `"run":"r2"`), "event 1: hash mismatch"},
		{"time", field(5, "time"), "event 5: hash mismatch"},
		{"hash", field(3, "hash"), "event 3: hash mismatch"},
		{"prev", field(3, "prev"), "event 3: broken chain"},
		{"seq", edit(3, `"seq":3`, `"seq":33`), "event 3: seq 33, want 3"},
		{"first line removed", remove(1), "event 1: seq 2, want 1"},
		{"middle line removed", remove(3), "event 3: seq 4, want 3"},
		{"lines swapped", func(ls []string) []string { ls[1], ls[2] = ls[2], ls[1]; return ls }, "event 2: seq 3, want 2"},
		{"line repeated", func(ls []string) []string { return append(ls[:3], ls[2:]...) }, "event 4: seq 3, want 4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyLines(t, tc.change(append([]string(nil), lines...)))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("verify: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestReadFileRoundTrips(t *testing.T) {
	w, path, _ := newWriter(t)
	type emit struct {
		kind  string
		tick  world.Tick
		agent world.AgentID
		data  map[string]any
		want  string // the data as stored; "" for none
	}
	emits := []emit{
		{events.RunStarted, 0, "", map[string]any{"seed": uint64(math.MaxUint64), "world": "repeated_game"}, `{"seed":18446744073709551615,"world":"repeated_game"}`},
		{events.AgentReady, 0, "agent-1", nil, ""},
		{events.Violation, 2, "agent_2", map[string]any{"subject": "sim.r1.agent.<x>&y", "reason": "héllo \u2028 \"quoted\"\n"}, `{"reason":"héllo \u2028 \"quoted\"\n","subject":"sim.r1.agent.\u003cx\u003e\u0026y"}`},
		{world.EventTickClosed, 7, "", map[string]any{"actions": []map[string]any{{"agent": "a", "data": json.RawMessage(`{"move":"C"}`)}}, "hash": "abc"}, `{"actions":[{"agent":"a","data":{"move":"C"}}],"hash":"abc"}`},
		{"world.custom", 7, "a", map[string]any{}, ""}, // empty data is stored as none
		{"metric", 8, "", map[string]any{"bad": math.NaN()}, `{"marshal_error":"json: unsupported value: NaN"}`},
	}
	for _, e := range emits {
		w.Emit(e.kind, e.tick, e.agent, e.data)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	recs := readVerified(t, path)
	lines := fileLines(t, path)
	if len(recs) != len(emits) {
		t.Fatalf("%d records, want %d", len(recs), len(emits))
	}
	prev := ""
	for i, r := range recs {
		e := emits[i]
		if r.V != events.SchemaVersion || r.Seq != uint64(i+1) || r.Run != "r1" || r.Kind != e.kind || r.Tick != e.tick || r.Agent != e.agent || string(r.Data) != e.want {
			t.Errorf("record %d: %+v, want kind %s tick %d agent %q data %s", i+1, r, e.kind, e.tick, e.agent, e.want)
		}
		if r.Time.IsZero() || r.Time.Location() != time.UTC {
			t.Errorf("record %d: time %v, want a UTC time", i+1, r.Time)
		}
		if r.Prev != prev {
			t.Errorf("record %d: prev %q, want %q", i+1, r.Prev, prev)
		}
		prev = r.Hash
		// Sealing the record read back gives the very line in the file.
		c := r
		line, err := events.Seal(&c)
		if err != nil || string(line) != lines[i] || c.Hash != r.Hash {
			t.Errorf("record %d resealed: %s (%v), want %s", i+1, line, err, lines[i])
		}
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := events.ReadFile(filepath.Join(dir, "missing.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
	lines := writeSample(t, 2)
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte(lines[0]+"\n"+"{not json\n"+lines[1]+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	recs, err := events.ReadFile(bad)
	if err == nil || !strings.Contains(err.Error(), bad+":2:") {
		t.Errorf("bad line: %v, want an error naming %s:2", err, bad)
	}
	if len(recs) != 1 || recs[0].Seq != 1 {
		t.Errorf("records before the bad line: %+v, want seq 1", recs)
	}
}

func TestVerifyAcceptsInvalidUTF8Kind(t *testing.T) {
	// World events name their own kinds; a byte that is not UTF-8 must not
	// make an untouched file look tampered with.
	w, path, _ := newWriter(t)
	w.Emit("world.bad\xffkind", 1, "agent\xfe", map[string]any{"k\xff": "v\xfe"})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs := readVerified(t, path)
	if len(recs) != 1 || recs[0].Kind != "world.bad\uFFFDkind" || recs[0].Agent != "agent\uFFFD" {
		t.Errorf("records %+v, want kind and agent with U+FFFD for the bad bytes", recs)
	}
}

// Seal's line is exactly the record marshalled with its hash.
func TestSealLineIsTheMarshalledRecord(t *testing.T) {
	for _, rec := range []events.Record{
		{V: 1, Seq: 1, Run: "r", Kind: "k", Prev: ""},
		{V: 1, Seq: 2, Run: "r", Kind: "tick.closed", Tick: 3, Agent: "a", Data: json.RawMessage(`{"actions":[{"agent":"a","data":{"x": 1}}]}`), Prev: "ab"},
		{V: 1, Seq: 3, Run: "r<&>", Kind: "é", Data: json.RawMessage(`"<\u2028>"`), Prev: "cd"},
		{V: 1, Seq: 4, Time: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC), Run: "r", Kind: "k", Tick: 9, Data: json.RawMessage(`{"a":[1,"x",null,true]}`), Prev: "ef"},
		{V: 1, Seq: 5, Time: time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.FixedZone("x", -(5*3600+30*60))), Run: `r"\`, Kind: "k\t", Agent: "a\x01", Prev: "gh"},
		{V: 1, Seq: 6, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("y", 3600+17)), Run: "r", Kind: "k", Data: json.RawMessage{}, Prev: "ij"},
		{V: 1, Seq: 7, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Run: "r", Kind: "k", Prev: "kl"},
		{V: 1, Seq: 8, Run: "r", Kind: "k", Data: json.RawMessage(`{"a":`), Prev: "mn"},
		{V: 1, Seq: 9, Run: "r", Kind: "k", Data: json.RawMessage(" [ 1 ,\n2 ] "), Prev: "op"},
	} {
		line, err := events.Seal(&rec)
		want, merr := json.Marshal(rec)
		if (err != nil) != (merr != nil) {
			t.Fatalf("Seal(%+v): error %v, Marshal's %v", rec, err, merr)
		}
		if err != nil {
			continue
		}
		if string(line) != string(want) {
			t.Errorf("Seal:\n%s\nwant\n%s", line, want)
		}
	}
}

// EmitRaw with json.Marshal's encoding of a map records what Emit with
// the map does.
func TestEmitRawRecordsAsEmit(t *testing.T) {
	w, path, _ := newWriter(t)
	data := map[string]any{"actions": []map[string]any{{"agent": "a<b>", "data": json.RawMessage(`{"x":1}`)}}, "hash": "h", "wall_us": 3}
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	w.Emit(world.EventTickClosed, 1, "", data)
	w.EmitRaw(world.EventTickClosed, 1, "", raw)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs := readVerified(t, path)
	if len(recs) != 2 || string(recs[0].Data) != string(recs[1].Data) || string(recs[1].Data) != string(raw) {
		t.Errorf("records %+v, want the same data twice: %s", recs, raw)
	}
}
