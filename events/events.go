// Package events is the run's single event writer. Every event gets a schema
// version, a sequence number, the time, its kind, tick and agent, and a hash
// chaining it to the previous event; it is appended to events.jsonl and
// then handed to a Publisher (the run's JetStream stream, subjects
// sim.<run>.events.<kind>).
//
// Emit may be called from any goroutine: events are totally ordered by Seq,
// and the file holds them in that order, and the Publisher gets them in
// that order. The file is the record of truth: the Publisher must not
// block, and what it fails to publish is its to count. Close flushes and syncs
// the file; a second Close does nothing; Emit after Close is dropped.
package events

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium/internal/jsonenc"
	"github.com/terrarium-sim/terrarium/world"
)

// SchemaVersion is the version of the event record (Record.V). Bump it when a
// field changes meaning or goes away; adding a field or a kind does not.
const SchemaVersion = 1

// Event kinds emitted by the host (the loop's are in package world).
const (
	RunStarted      = "run.started"
	RunFinished     = "run.finished"
	AgentSpawned    = "agent.spawned"
	AgentReady      = "agent.ready"
	AgentExited     = "agent.exited"
	AgentRestarting = "agent.restarting"
	AgentFailed     = "agent.failed"
	AgentUnhealthy  = "agent.unhealthy"
	AgentSpent      = "agent.spent"
	Violation       = "violation"
	BadMessage      = "message.rejected"
	MessagesDropped = "message.dropped"
	LLMResult       = "llm.result"  // an LLM agent answered a prompt: turns, tokens, cost
	LLMSession      = "llm.session" // an LLM agent's CLI reported its session id
	LLMStopped      = "llm.stopped" // an LLM agent was stopped: a budget was spent
)

// Record is one event as stored and published.
type Record struct {
	V     int             `json:"v"`
	Seq   uint64          `json:"seq"`
	Time  time.Time       `json:"time"`
	Run   string          `json:"run"`
	Kind  string          `json:"kind"`
	Tick  world.Tick      `json:"tick"`
	Agent world.AgentID   `json:"agent,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
	// Prev is the previous record's Hash ("" for the first); Hash is the hex
	// SHA-256 of this record's JSON encoding with Hash empty.
	Prev string `json:"prev"`
	Hash string `json:"hash,omitempty"`
}

// Publisher is where records go besides the file (bus.EventPublisher: the
// run's JetStream stream). Publish is called with the Writer's lock held,
// in seq order, after the record reached the file: it must not block.
type Publisher interface {
	Publish(seq uint64, subject string, line []byte)
}

// Writer is the run's event writer.
type Writer struct {
	run     string
	log     hclog.Logger
	subject func(kind string) string
	now     func() time.Time

	mu      sync.Mutex
	f       *os.File
	w       *bufio.Writer
	pub     Publisher
	seq     uint64
	prev    string
	closed  bool
	err     error        // first write error
	pubSet  bool         // SetPublisher was called
	backlog []pendingRec // events written before that
	taps    []func(Record)
}

// Create opens path (which must not exist) for a run's events.
func Create(path, run string, subject func(kind string) string, log hclog.Logger) (*Writer, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create event log: %w", err)
	}
	return &Writer{run: run, log: log, subject: subject, now: time.Now, f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// backlogMax bounds the events held for the first Publisher.
const backlogMax = 4096

// pendingRec is an event written before the first SetPublisher.
type pendingRec struct {
	seq     uint64
	subject string
	line    []byte
}

// SetPublisher starts publishing every later event on p (nil stops). The
// first call hands p the events written before it (the first 4096 of
// them: those before the bus started), in order, so a publisher set after
// run.started still gets it.
func (w *Writer) SetPublisher(p Publisher) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pub = p
	if !w.pubSet {
		w.pubSet = true
		if p != nil {
			for _, b := range w.backlog {
				p.Publish(b.seq, b.subject, b.line)
			}
		}
		w.backlog = nil
	}
}

// Emit records one event. data is marshalled to JSON (nil for none).
func (w *Writer) Emit(kind string, t world.Tick, agent world.AgentID, data map[string]any) {
	var raw json.RawMessage
	if len(data) > 0 {
		b, err := json.Marshal(data)
		if err != nil {
			b, _ = json.Marshal(map[string]any{"marshal_error": err.Error()})
		}
		raw = b
	}
	w.emit(kind, t, agent, raw)
}

// EmitRaw records one event whose data is already encoded
// (world.RawEventSink): data must be what json.Marshal gives for the map
// it decodes to (compact, '<', '>' and '&' escaped). The loop encodes
// tick.closed so. data is not kept after EmitRaw returns.
func (w *Writer) EmitRaw(kind string, t world.Tick, agent world.AgentID, data json.RawMessage) {
	w.emit(kind, t, agent, data)
}

// emit records one event whose data json.Marshal encoded (or an
// encoder giving the same bytes): it is sealed as it is, not compacted
// again.
func (w *Writer) emit(kind string, t world.Tick, agent world.AgentID, raw json.RawMessage) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.seq++
	rec := Record{V: SchemaVersion, Seq: w.seq, Time: w.now().UTC(), Run: w.run, Kind: kind, Tick: t, Agent: agent, Data: raw, Prev: w.prev}
	line, err := seal(&rec, true, 1)
	if err != nil {
		w.fail(err)
		return
	}
	w.prev = rec.Hash
	line = append(line, '\n')
	if _, err := w.w.Write(line); err != nil {
		w.fail(err)
	}
	// Flush every event: a crash loses nothing written so far (issue: kill -9).
	if err := w.w.Flush(); err != nil {
		w.fail(err)
	}
	if len(w.taps) > 0 {
		rec.Data = slices.Clone(rec.Data) // EmitRaw's data is the caller's again after it returns
	}
	for _, tap := range w.taps {
		tap(rec)
	}
	switch {
	case w.pub != nil:
		w.pub.Publish(rec.Seq, w.subject(kind), line[:len(line)-1:len(line)-1])
	case !w.pubSet && len(w.backlog) < backlogMax:
		w.backlog = append(w.backlog, pendingRec{rec.Seq, w.subject(kind), line[: len(line)-1 : len(line)-1]})
	}
}

func (w *Writer) fail(err error) {
	if w.err == nil {
		w.err = fmt.Errorf("write event log: %w", err)
		w.log.Error("event log write failed", "error", err)
	}
}

// Tap makes fn see every later event, sealed, in order. fn is called with
// the writer's lock held, from the emitting goroutine: it must not block
// and must not emit.
func (w *Writer) Tap(fn func(Record)) {
	w.mu.Lock()
	w.taps = append(w.taps, fn)
	w.mu.Unlock()
}

// Last returns the sequence number and hash of the last event written.
func (w *Writer) Last() (seq uint64, hash string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq, w.prev
}

// Close flushes and syncs the file. It returns the first write error.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.err
	}
	w.closed = true
	if err := w.w.Flush(); err != nil {
		w.fail(err)
	}
	if err := w.f.Sync(); err != nil {
		w.fail(err)
	}
	if err := w.f.Close(); err != nil {
		w.fail(err)
	}
	return w.err
}

// Seal fills rec.Hash and returns the record's JSON line (without newline).
func Seal(rec *Record) ([]byte, error) { return seal(rec, false, 0) }

// seal is Seal; trusted says rec.Data is in json.Marshal's form already
// (compact, HTML characters escaped: what Marshal gives), so it is not
// checked; extra is room to leave after the line (the newline).
func seal(rec *Record, trusted bool, extra int) ([]byte, error) {
	// JSON encodes a byte that is not UTF-8 as the escape \ufffd, which
	// decodes to U+FFFD and re-encodes as that rune's bytes: the record read
	// back would not hash the same. Make the strings valid first.
	rec.Run = strings.ToValidUTF8(rec.Run, "\uFFFD")
	rec.Kind = strings.ToValidUTF8(rec.Kind, "\uFFFD")
	rec.Agent = world.AgentID(strings.ToValidUTF8(string(rec.Agent), "\uFFFD"))
	rec.Hash = ""
	const hashField = len(`,"hash":""`) + sha256.Size*2
	b, ok := appendRecord(make([]byte, 0, 160+len(rec.Run)+len(rec.Kind)+len(rec.Agent)+len(rec.Prev)+len(rec.Data)+hashField+extra), rec, trusted)
	if !ok {
		var err error
		if b, err = json.Marshal(rec); err != nil {
			return nil, fmt.Errorf("encode event %s: %w", rec.Kind, err)
		}
	}
	sum := sha256.Sum256(b)
	rec.Hash = hex.EncodeToString(sum[:])
	// Hash is the record's last field: the sealed line is b with it
	// appended, exactly what marshalling rec again gives, without encoding
	// (and compacting Data) twice.
	b = append(b[:len(b)-1], `,"hash":"`...)
	b = append(b, rec.Hash...)
	return append(b, `"}`...), nil
}

// appendRecord appends rec (with Hash empty) as json.Marshal encodes it,
// without reflection; ok is false when it cannot tell the bytes would be
// the same (a string or Data that needs escaping or compacting, a time
// Marshal refuses): the caller then marshals.
func appendRecord(b []byte, rec *Record, trusted bool) ([]byte, bool) {
	if y := rec.Time.Year(); y < 0 || y > 9999 {
		return b, false
	}
	if _, off := rec.Time.Zone(); off%60 != 0 || off <= -24*3600 || off >= 24*3600 {
		return b, false
	}
	var ok bool
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(rec.V), 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, rec.Seq, 10)
	b = append(b, `,"time":"`...)
	b = rec.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","run":`...)
	if b, ok = jsonenc.AppendString(b, rec.Run); !ok {
		return b, false
	}
	b = append(b, `,"kind":`...)
	if b, ok = jsonenc.AppendString(b, rec.Kind); !ok {
		return b, false
	}
	b = append(b, `,"tick":`...)
	b = strconv.AppendUint(b, uint64(rec.Tick), 10)
	if rec.Agent != "" {
		b = append(b, `,"agent":`...)
		if b, ok = jsonenc.AppendString(b, string(rec.Agent)); !ok {
			return b, false
		}
	}
	if len(rec.Data) > 0 {
		if !trusted && !jsonenc.Canonical(rec.Data) {
			return b, false
		}
		b = append(b, `,"data":`...)
		b = append(b, rec.Data...)
	}
	b = append(b, `,"prev":`...)
	if b, ok = jsonenc.AppendString(b, rec.Prev); !ok {
		return b, false
	}
	return append(b, '}'), true
}

// Verify checks a sequence of records: consecutive Seq from 1, each Prev the
// previous Hash, each Hash correct. It returns the first problem.
func Verify(recs []Record) error {
	prev := ""
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			return fmt.Errorf("event %d: seq %d, want %d", i+1, r.Seq, i+1)
		}
		if r.Prev != prev {
			return fmt.Errorf("event %d: broken chain (prev %q, want %q)", r.Seq, r.Prev, prev)
		}
		want := r.Hash
		c := r
		if _, err := Seal(&c); err != nil {
			return err
		}
		if c.Hash != want {
			return fmt.Errorf("event %d: hash mismatch", r.Seq)
		}
		prev = want
	}
	return nil
}

// ReadFile reads an events.jsonl file. Lines may be of any length.
func ReadFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer f.Close()
	var recs []Record
	br := bufio.NewReaderSize(f, 64<<10)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			var r Record
			if uerr := json.Unmarshal(line, &r); uerr != nil {
				return recs, fmt.Errorf("read events %s:%d: %w", path, n, uerr)
			}
			recs = append(recs, r)
		}
		if errors.Is(err, io.EOF) {
			return recs, nil
		}
		if err != nil {
			return recs, fmt.Errorf("read events %s: %w", path, err)
		}
	}
}
