package world

import (
	"encoding/json"
	"testing"
	"time"
)

// plainSink is an EventSink that keeps the data it got; recordSink a
// RawEventSink.
type plainSink struct{ data map[string]any }

func (s *plainSink) Emit(_ string, _ Tick, _ AgentID, data map[string]any) { s.data = data }

type recordSink struct {
	plainSink
	raw []byte
}

func (s *recordSink) EmitRaw(_ string, _ Tick, _ AgentID, data json.RawMessage) {
	s.raw = append([]byte(nil), data...)
}

// tick.closed encoded without encoding/json gives its bytes exactly,
// or leaves the event to it.
func TestTickClosedEncodesAsMarshal(t *testing.T) {
	us := int64(1234)
	neg := int64(-5)
	cases := []struct {
		name    string
		applied []AppliedAction
		hash    string
		behind  time.Duration
	}{
		{"empty", []AppliedAction{}, "", 0},
		{"plain", []AppliedAction{{Agent: "a", Data: json.RawMessage(`1`)}, {Agent: "b", Data: json.RawMessage(`1`)}, {Agent: "c", Data: json.RawMessage(`{"ok":true}`)}}, "h1", 0},
		{"filled", []AppliedAction{{Agent: "a", Data: json.RawMessage(`null`), Filled: PolicyDefault}, {Agent: "b", Data: nil, Filled: PolicyRepeat}}, "abc", 0},
		{"late", []AppliedAction{{ActionTick: 3, Agent: "a", Data: json.RawMessage(`[1,2]`), LateTicks: 2, LateUS: &us}, {ActionTick: 4, Agent: "b", Data: json.RawMessage(`2`), LateTicks: 1, LateUS: &neg}}, "x", 1500 * time.Microsecond},
		{"behind under 1us", []AppliedAction{{Agent: "a", Data: json.RawMessage(`1`)}}, "x", 500},
		{"data to compact", []AppliedAction{{Agent: "a", Data: json.RawMessage(`{ "a" : [1, 2] }`)}, {Agent: "b", Data: json.RawMessage(`"<b>&"`)}, {Agent: "c", Data: json.RawMessage("\"\u2028\"")}}, "x", 0},
		{"escapes", []AppliedAction{{Agent: `a"b\c`, Data: json.RawMessage(`1`)}, {Agent: "é<", Data: json.RawMessage(`1`)}}, "h<&>\x01é\xff", 0},
		{"invalid data", []AppliedAction{{Agent: "a", Data: json.RawMessage(`{`)}}, "x", 0},
		{"empty data", []AppliedAction{{Agent: "a", Data: json.RawMessage(`1`)}, {Agent: "b", Data: json.RawMessage{}}}, "x", 0},
	}
	var tc tickClosed
	for _, c := range cases {
		for range 2 { // the second time with the encoder's cache warm
			raw, plain := &recordSink{}, &plainSink{}
			tc.emit(raw, 7, c.applied, c.hash, 42, c.behind)
			tc.emit(plain, 7, c.applied, c.hash, 42, c.behind)
			want, err := json.Marshal(plain.data)
			if err != nil {
				want, _ = json.Marshal(map[string]any{"marshal_error": err.Error()}) // as events.Writer records it
			}
			got := raw.raw
			if got == nil && c.name != "escapes" && c.name != "invalid data" && c.name != "empty data" {
				t.Errorf("%s: not encoded on the fast path", c.name)
			}
			if got == nil { // left to Emit
				if got, err = json.Marshal(raw.data); err != nil {
					got, _ = json.Marshal(map[string]any{"marshal_error": err.Error()})
				}
			}
			if string(got) != string(want) {
				t.Errorf("%s:\n got %s\nwant %s", c.name, got, want)
			}
		}
	}
}
