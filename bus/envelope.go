package bus

import (
	"encoding/json"
	"fmt"
	"time"
)

// SchemaVersion is the version of the wire envelope (Envelope.V).
const SchemaVersion = 1

// MaxPayload is the largest message the embedded server accepts.
const MaxPayload = 1 << 20

// Envelope is every message on the bus: a schema version, the run, the tick,
// a per-sender sequence number, and a kind-specific JSON payload.
type Envelope struct {
	V     int    `json:"v"`
	Kind  string `json:"kind"`
	Run   string `json:"run"`
	Agent string `json:"agent,omitempty"`
	Tick  uint64 `json:"tick"`
	Seq   uint64 `json:"seq"`
	// Deadline, on an observation, is when the host closes the tick.
	Deadline *time.Time      `json:"deadline,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
}

// Encode marshals e, filling V.
func Encode(e Envelope) ([]byte, error) {
	e.V = SchemaVersion
	if b, ok := appendEnvelope(make([]byte, 0, 128+len(e.Data)), &e); ok {
		return b, nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode %s envelope: %w", e.Kind, err)
	}
	return b, nil
}

// Decode parses an envelope and checks its version and run.
func Decode(b []byte, run string) (Envelope, error) { return decode(b, run, false) }

// DecodeShared is Decode for a message the caller owns and never changes
// (a nats.Msg's Data is its own copy): the envelope's Data may alias b
// instead of being copied out of it.
func DecodeShared(b []byte, run string) (Envelope, error) { return decode(b, run, true) }

func decode(b []byte, run string, alias bool) (Envelope, error) {
	var e Envelope
	if err := decodeEnvelope(b, &e, run, alias); err != nil {
		return Envelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	if e.V != SchemaVersion {
		return Envelope{}, fmt.Errorf("decode envelope: schema version %d, want %d", e.V, SchemaVersion)
	}
	if run != "" && e.Run != run {
		return Envelope{}, fmt.Errorf("decode envelope: run %q, want %q", e.Run, run)
	}
	return e, nil
}
