package events

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium/world"
)

// RunResumed is emitted when a run goes on from a checkpoint (terrarium
// resume): it names the range of events that were moved aside.
const RunResumed = "run.resumed"

// Checkpoint events: one was written, or writing one failed.
const (
	CheckpointWritten = "checkpoint.written"
	CheckpointFailed  = "checkpoint.failed"
)

// LogError is the first bad line of an event log.
type LogError struct {
	Path   string
	Line   int // 1-based
	Reason string
}

func (e *LogError) Error() string { return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Reason) }

// Log is an event log read and checked line by line.
type Log struct {
	// Records is the longest good prefix: line i+1 is Records[i].
	Records []Record
	// Bad is the first bad line (nil if every line is good): not JSON, a
	// broken sequence or hash chain, a wrong hash, or a last line cut short.
	Bad *LogError
}

// ReadLog reads and checks an events.jsonl. The error is for I/O only; a
// bad line is reported in Log.Bad, with the good lines before it.
func ReadLog(path string) (*Log, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer f.Close()
	lg := &Log{}
	br := bufio.NewReaderSize(f, 64<<10)
	prev := ""
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			bad := func(format string, args ...any) {
				lg.Bad = &LogError{Path: path, Line: n, Reason: fmt.Sprintf(format, args...)}
			}
			if line[len(line)-1] != '\n' {
				bad("the last line is cut short (no newline): the log was truncated")
				return lg, nil
			}
			var r Record
			if uerr := json.Unmarshal(bytes.TrimSpace(line), &r); uerr != nil {
				bad("not an event record: %v", uerr)
				return lg, nil
			}
			want := r.Hash
			c := r
			if _, serr := Seal(&c); serr != nil {
				bad("%v", serr)
				return lg, nil
			}
			switch {
			case r.Seq != uint64(n):
				bad("seq %d, want %d", r.Seq, n)
			case r.Prev != prev:
				bad("broken hash chain: prev %.12s, want %.12s", r.Prev, prev)
			case c.Hash != want:
				bad("hash mismatch: the record was changed")
			}
			if lg.Bad != nil {
				return lg, nil
			}
			prev = want
			lg.Records = append(lg.Records, r)
		}
		if errors.Is(err, io.EOF) {
			return lg, nil
		}
		if err != nil {
			return lg, fmt.Errorf("read events %s: %w", path, err)
		}
	}
}

// Append opens an existing event log to go on after its record seq, whose
// hash is prev (a resumed run). The file must hold exactly seq records.
func Append(path, run string, seq uint64, prev string, subject func(kind string) string, log hclog.Logger) (*Writer, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("open event log: %w", err)
	}
	w := &Writer{run: run, log: log, subject: subject, now: time.Now, f: f, w: bufio.NewWriterSize(f, 64<<10), seq: seq, prev: prev}
	return w, nil
}

// ProjectedAction is one applied action in a projection.
type ProjectedAction struct {
	Agent  world.AgentID   `json:"agent"`
	Data   json.RawMessage `json:"data"`
	Filled string          `json:"filled,omitempty"`
	// ActionTick is, for a realtime action applied after the tick it
	// answered, that tick (tick.closed's action_tick); 0 otherwise, and
	// then absent from the JSON, so a lockstep or turn-based projection
	// and its Digest are what they were before the field existed.
	ActionTick world.Tick `json:"action_tick,omitempty"`
}

// WorldActions are the tick's actions as the loop gave them to the
// world's Step: each tagged with the tick it answered (Action.Tick), which
// is the projection's tick except for a late realtime action.
func (tp TickProjection) WorldActions() []world.Action {
	out := make([]world.Action, len(tp.Actions))
	for i, a := range tp.Actions {
		tag := tp.Tick
		if a.ActionTick != 0 {
			tag = a.ActionTick
		}
		out[i] = world.Action{Agent: a.Agent, Tick: tag, Data: a.Data}
	}
	return out
}

// ProjectedEvent is one world event in a projection.
type ProjectedEvent struct {
	Kind  string          `json:"kind"`
	Agent world.AgentID   `json:"agent,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// TickProjection is the deterministic content of one tick.
type TickProjection struct {
	Tick    world.Tick        `json:"tick"`
	Actions []ProjectedAction `json:"actions"`
	Events  []ProjectedEvent  `json:"events,omitempty"`
	Hash    string            `json:"hash"`
}

// Project returns the deterministic projection of a run's events: per
// tick, the applied actions (by agent id, with the tick a late realtime
// action answered), the world's events (kinds "world.*", in order) and
// the state hash. Everything else (times, seq, pids, process events, wall
// times, late_ticks and late_us) is left out. Two runs of the same
// scenario and seed with deterministic agents have equal projections.
// A tick closed twice, or ticks out of order, is an error.
func Project(recs []Record) ([]TickProjection, error) {
	var out []TickProjection
	var pending []ProjectedEvent
	var last world.Tick
	for _, r := range recs {
		switch {
		case strings.HasPrefix(r.Kind, "world."):
			pending = append(pending, ProjectedEvent{Kind: r.Kind, Agent: r.Agent, Data: r.Data})
		case r.Kind == world.EventTickClosed:
			var d struct {
				Actions []ProjectedAction `json:"actions"`
				Hash    string            `json:"hash"`
			}
			if err := json.Unmarshal(r.Data, &d); err != nil {
				return out, fmt.Errorf("event %d: tick.closed: %w", r.Seq, err)
			}
			if len(out) > 0 && r.Tick != last+1 {
				return out, fmt.Errorf("event %d: tick %d closed after tick %d", r.Seq, r.Tick, last)
			}
			slices.SortStableFunc(d.Actions, func(a, b ProjectedAction) int { return strings.Compare(string(a.Agent), string(b.Agent)) })
			out = append(out, TickProjection{Tick: r.Tick, Actions: d.Actions, Events: pending, Hash: d.Hash})
			pending = nil
			last = r.Tick
		}
	}
	return out, nil
}

// Digest is a SHA-256 over a projection's canonical JSON: equal digests,
// equal projections.
func Digest(p []TickProjection) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for i := range p {
		_ = enc.Encode(&p[i])
	}
	return hex.EncodeToString(h.Sum(nil))
}
