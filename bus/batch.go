package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Batches: the data of a pool message (runtime "pool") is a JSON array
// of entries, one per member: [{"agent":"ID","data":VALUE},...] — an
// observation batch (host to pool) or an action batch (pool to host).

// Entry is one member's part of a batch.
type Entry struct {
	Agent string          `json:"agent"`
	Data  json.RawMessage `json:"data"`
}

// EachEntry calls fn for every entry of a batch, in order. data must be
// valid JSON, as an Envelope's Data from Decode is: the canonical form
// (what AppendEntry writes, no whitespace) is split without a second
// scan of the values; anything else goes through encoding/json. fn's
// value aliases data.
func EachEntry(data []byte, fn func(agent string, value []byte)) error {
	return EachEntryBytes(data, func(agent, value []byte) { fn(string(agent), value) })
}

// EachEntryBytes is EachEntry with the agent id as bytes, which alias
// data (or a decoded copy) and are valid only during the call: a caller
// that looks the id up (m[string(agent)]) allocates nothing per entry.
func EachEntryBytes(data []byte, fn func(agent, value []byte)) error {
	if ok := eachCanonical(data, fn); ok {
		return nil
	}
	var es []Entry
	if err := json.Unmarshal(data, &es); err != nil {
		return fmt.Errorf(`batch: want [{"agent":ID,"data":VALUE},...]: %w`, err)
	}
	for _, e := range es {
		if e.Agent == "" || len(e.Data) == 0 {
			return errors.New(`batch: an entry without "agent" or "data"`)
		}
	}
	for _, e := range es {
		fn([]byte(e.Agent), e.Data)
	}
	return nil
}

// eachCanonical splits a canonical batch; ok=false (and fn not called)
// when data is not one. The batch is checked whole first, so fn sees all
// or nothing; then split again for fn (no list of entries is built).
func eachCanonical(data []byte, fn func(agent, value []byte)) (ok bool) {
	if !splitCanonical(data, nil) {
		return false
	}
	splitCanonical(data, fn)
	return true
}

// splitCanonical walks a canonical batch, calling fn (if not nil) for each
// entry; false if data is not one.
func splitCanonical(data []byte, fn func(agent, value []byte)) bool {
	if len(data) < 2 || data[0] != '[' || data[len(data)-1] != ']' {
		return false
	}
	p := parser{b: data, i: 1}
	if p.i < len(p.b) && p.b[p.i] == ']' {
		return p.i+1 == len(p.b)
	}
	for {
		if !p.lit(`{"agent":`) {
			return false
		}
		agent, sok := p.strBytes()
		if !sok || len(agent) == 0 || !p.lit(`,"data":`) {
			return false
		}
		end, vok := valueEnd(p.b, p.i)
		if !vok || end >= len(p.b) || p.b[end] != '}' {
			return false
		}
		if fn != nil {
			fn(agent, p.b[p.i:end:end])
		}
		p.i = end + 1
		if p.i < len(p.b) && p.b[p.i] == ',' {
			p.i++
			continue
		}
		return p.i+1 == len(p.b)
	}
}

// valueEnd returns the end of the JSON value starting at b[i], for b
// known to be valid JSON with no whitespace: strings are skipped with
// their escapes, brackets counted; a scalar ends at ',', '}' or ']'.
func valueEnd(b []byte, i int) (int, bool) {
	depth := 0
	for ; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if i >= len(b) {
				return 0, false
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i, true
			}
			depth--
			if depth == 0 {
				return i + 1, true
			}
		case ',':
			if depth == 0 {
				return i, true
			}
		case ' ', '\t', '\n', '\r':
			return 0, false // not canonical: encoding/json decides
		}
	}
	return 0, false
}

// AppendEntry appends one entry to a batch being built in b (the caller
// writes the brackets and commas). agent must match the id pattern (no
// escaping needed); value must be valid JSON.
func AppendEntry(b []byte, agent string, value []byte) []byte {
	b = append(b, `{"agent":"`...)
	b = append(b, agent...)
	b = append(b, `","data":`...)
	b = append(b, value...)
	return append(b, '}')
}

// EncodeBatch encodes an envelope whose Data is a batch the caller built
// from values already known to be valid JSON (AppendEntry): unlike Encode
// it does not scan the payload again, which for a batch of thousands of
// entries is most of the cost. Kind, Run and Agent must be plain ids.
func EncodeBatch(e Envelope) ([]byte, error) {
	return AppendBatch(make([]byte, 0, 160+len(e.Data)), e)
}

// AppendBatch is EncodeBatch appending to b (a buffer the caller reuses).
func AppendBatch(b []byte, e Envelope) ([]byte, error) {
	e.V = SchemaVersion
	if !plain(e.Kind) || !plain(e.Run) || !plain(e.Agent) || len(e.Data) == 0 {
		return nil, fmt.Errorf("encode %s batch: kind, run or agent needs escaping, or no data", e.Kind)
	}
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(e.V), 10)
	b = append(b, `,"kind":"`...)
	b = append(b, e.Kind...)
	b = append(b, `","run":"`...)
	b = append(b, e.Run...)
	b = append(b, `","agent":"`...)
	b = append(b, e.Agent...)
	b = append(b, `","tick":`...)
	b = strconv.AppendUint(b, e.Tick, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	if e.Deadline != nil {
		d := e.Deadline.UTC()
		b = append(b, `,"deadline":"`...)
		b = d.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	b = append(b, `,"data":`...)
	b = append(b, e.Data...)
	return append(b, '}'), nil
}
