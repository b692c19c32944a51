package observe

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/terrarium-sim/terrarium/events"
)

// maxValue is how much of one data value a human-readable line shows.
const maxValue = 60

// WriteLine writes r as one human-readable line:
//
//	#42 08:12:01.123 t7 tick.closed actions=16 hash=9c1f2a3b wall_us=812
//
// seq, time (UTC), tick, kind, the agent if any, then the data fields
// sorted by name, long values shortened (the --json output has them all).
func WriteLine(w io.Writer, r events.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s t%d %s", r.Seq, r.Time.UTC().Format("15:04:05.000"), r.Tick, r.Kind)
	if r.Agent != "" {
		fmt.Fprintf(&b, " %s", r.Agent)
	}
	var data map[string]json.RawMessage
	if len(r.Data) > 0 && json.Unmarshal(r.Data, &data) == nil {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%s", k, shortValue(k, data[k]))
		}
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

// shortValue renders one data value for a line.
func shortValue(key string, v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		if key == "hash" || key == "state_hash" {
			if len(s) > 8 {
				s = s[:8]
			}
		}
		s = strings.ToValidUTF8(s, "\uFFFD")
		if len(s) > maxValue {
			s = s[:maxValue] + "…"
		}
		if s == "" || strings.ContainsAny(s, " \t\n\"=") {
			return strconv.Quote(s)
		}
		return s
	}
	var list []json.RawMessage
	if json.Unmarshal(v, &list) == nil && len(v) > maxValue {
		return fmt.Sprintf("[%d]", len(list)) // e.g. tick.closed's actions: their number
	}
	out := string(v)
	if len(out) > maxValue {
		out = out[:maxValue] + "…"
	}
	return out
}

// WriteJSON writes r as its JSON line, exactly as in events.jsonl.
func WriteJSON(w io.Writer, r events.Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode event %d: %w", r.Seq, err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
