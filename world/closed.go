package world

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/terrarium-sim/terrarium/internal/jsonenc"
)

// RawEventSink is an EventSink that also takes an event's data already
// encoded. The loop uses it for tick.closed, whose data (every applied
// action) is most of a tick's recording at thousands of agents: encoding
// it without reflection and a map saves most of that cost.
//
// EmitRaw records the same event as Emit would with the map data decodes
// to: data is a JSON object exactly as encoding/json.Marshal encodes that
// map (keys sorted, compact, '<', '>' and '&' escaped), so the sink may
// use it as it is. data is the loop's again when EmitRaw returns: the
// sink must not keep it.
type RawEventSink interface {
	EventSink
	EmitRaw(kind string, t Tick, agent AgentID, data json.RawMessage)
}

// tickClosed encodes tick.closed events; the loop keeps one and reuses
// its buffer.
type tickClosed struct {
	buf []byte
	// ok is the last action data found canonical (what encoding/json
	// gives for it): most ticks carry runs of equal actions, checked once.
	ok []byte
}

// emit emits tick t's tick.closed event: every applied action, the state
// hash, the wall time and, when > 0, how far behind its boundary a
// realtime tick was applied.
func (c *tickClosed) emit(sink EventSink, t Tick, applied []AppliedAction, hash string, wallUS int64, behind time.Duration) {
	if raw, ok := sink.(RawEventSink); ok {
		if b, ok := c.encode(applied, hash, wallUS, behind); ok {
			raw.EmitRaw(EventTickClosed, t, "", b)
			return
		}
	}
	data := map[string]any{"actions": applied, "hash": hash, "wall_us": wallUS}
	if behind > 0 {
		data["behind_us"] = behind.Microseconds()
	}
	sink.Emit(EventTickClosed, t, "", data)
}

// encode appends the event's data as encoding/json would encode its map.
// ok is false when an action's data is not valid JSON (the map then
// records the encoding error) or something needs escaping the fast path
// does not do; the caller then goes through encoding/json. The result
// aliases c's buffer: valid until the next call.
func (c *tickClosed) encode(applied []AppliedAction, hash string, wallUS int64, behind time.Duration) ([]byte, bool) {
	b := c.buf[:0]
	b = append(b, `{"actions":[`...)
	for i := range applied {
		a := &applied[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		if a.ActionTick != 0 {
			b = append(b, `"action_tick":`...)
			b = strconv.AppendUint(b, uint64(a.ActionTick), 10)
			b = append(b, ',')
		}
		b = append(b, `"agent":`...)
		var ok bool
		if b, ok = jsonenc.AppendString(b, string(a.Agent)); !ok {
			return nil, false
		}
		b = append(b, `,"data":`...)
		switch {
		case a.Data == nil:
			b = append(b, "null"...)
		case len(c.ok) > 0 && bytes.Equal(a.Data, c.ok):
			b = append(b, a.Data...)
		default:
			if jsonenc.Canonical(a.Data) {
				b = append(b, a.Data...)
				c.ok = append(c.ok[:0], a.Data...)
				break
			}
			// Not in encoding/json's form (whitespace, escapes) or not
			// JSON at all: encoding/json decides.
			v, err := json.Marshal(a.Data)
			if err != nil {
				return nil, false
			}
			b = append(b, v...)
		}
		if a.Filled != "" {
			b = append(b, `,"filled":`...)
			if b, ok = jsonenc.AppendString(b, a.Filled); !ok {
				return nil, false
			}
		}
		if a.LateTicks != 0 {
			b = append(b, `,"late_ticks":`...)
			b = strconv.AppendUint(b, uint64(a.LateTicks), 10)
		}
		if a.LateUS != nil {
			b = append(b, `,"late_us":`...)
			b = strconv.AppendInt(b, *a.LateUS, 10)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	if behind > 0 {
		b = append(b, `,"behind_us":`...)
		b = strconv.AppendInt(b, behind.Microseconds(), 10)
	}
	b = append(b, `,"hash":`...)
	var ok bool
	if b, ok = jsonenc.AppendString(b, hash); !ok {
		return nil, false
	}
	b = append(b, `,"wall_us":`...)
	b = strconv.AppendInt(b, wallUS, 10)
	b = append(b, '}')
	c.buf = b
	return b, true
}
