package bus

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/terrarium-sim/terrarium/internal/jsonenc"
)

// The envelope is on every message, twice per agent per tick, so Encode and
// Decode have a fast path for the canonical form Encode produces: field
// order as in Envelope, no whitespace, strings without escapes. Anything
// else goes through encoding/json, so both give exactly encoding/json's
// bytes and values (codec_test.go checks this on many envelopes).

// appendEnvelope appends e as encoding/json would marshal it, or returns
// ok=false when e needs encoding/json (a string needing escapes, a payload
// encoding/json would rewrite, or an invalid payload).
func appendEnvelope(b []byte, e *Envelope) (_ []byte, ok bool) {
	if !plain(e.Kind) || !plain(e.Run) || !plain(e.Agent) || !canonicalData(e.Data) {
		return b, false
	}
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(e.V), 10)
	b = append(b, `,"kind":"`...)
	b = append(b, e.Kind...)
	b = append(b, `","run":"`...)
	b = append(b, e.Run...)
	b = append(b, '"')
	if e.Agent != "" {
		b = append(b, `,"agent":"`...)
		b = append(b, e.Agent...)
		b = append(b, '"')
	}
	b = append(b, `,"tick":`...)
	b = strconv.AppendUint(b, e.Tick, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	if e.Deadline != nil {
		if y := e.Deadline.Year(); y < 0 || y > 9999 || e.Deadline.Location() != time.UTC {
			return b, false // encoding/json reports the error, or writes the offset
		}
		b = append(b, `,"deadline":"`...)
		b = e.Deadline.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if len(e.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, e.Data...)
	}
	return append(b, '}'), true
}

// plain reports whether encoding/json writes s as is between quotes:
// printable ASCII without '"', '\\' or the HTML characters it escapes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// canonicalData reports whether encoding/json copies the payload d
// unchanged: valid JSON with no whitespace (compacting would drop it
// outside strings), no HTML characters and no non-ASCII byte (it escapes
// those and U+2028/U+2029). A payload that is not canonical is still
// encoded, by encoding/json.
func canonicalData(d []byte) bool {
	for _, c := range d {
		switch {
		case c <= ' ', c >= 0x7f, c == '<', c == '>', c == '&':
			return false
		}
	}
	return valid(d)
}

// valid is json.Valid, faster for the canonical form most payloads have.
func valid(d []byte) bool { return jsonenc.Canonical(d) || json.Valid(d) }

// decodeCanonical parses b when it is in the canonical form, reporting
// ok=false otherwise (the caller then uses encoding/json, which also
// produces the errors). The prefix it accepts is valid JSON by
// construction and the payload is checked as json.Valid does, so whatever it
// accepts is valid JSON that encoding/json decodes to the same envelope.
func decodeCanonical(b []byte, e *Envelope, wantRun string, alias bool) (ok bool) {
	p := parser{b: b}
	if !p.lit(`{"v":`) {
		return false
	}
	v, ok := p.uint()
	if !ok || v > 1<<31 {
		return false
	}
	e.V = int(v)
	if !p.lit(`,"kind":`) {
		return false
	}
	kind, ok := p.strBytes()
	if !ok {
		return false
	}
	e.Kind = internKind(kind)
	if !p.lit(`,"run":`) {
		return false
	}
	run, ok := p.strBytes()
	if !ok {
		return false
	}
	if string(run) == wantRun { // the expected run's string: none made
		e.Run = wantRun
	} else {
		e.Run = string(run)
	}
	if p.lit(`,"agent":`) {
		if e.Agent, ok = p.str(); !ok {
			return false
		}
	}
	if !p.lit(`,"tick":`) {
		return false
	}
	if e.Tick, ok = p.uint(); !ok {
		return false
	}
	if !p.lit(`,"seq":`) {
		return false
	}
	if e.Seq, ok = p.uint(); !ok {
		return false
	}
	if p.lit(`,"deadline":`) {
		start := p.i
		if _, ok := p.str(); !ok {
			return false
		}
		var d time.Time
		if d.UnmarshalJSON(p.b[start:p.i]) != nil { // exactly encoding/json's parse
			return false
		}
		e.Deadline = &d
	}
	if p.lit(`,"data":`) {
		// The payload is the last member: one JSON value up to the
		// closing brace.
		rest := p.b[p.i : len(p.b)-1]
		if len(rest) == 0 || p.b[len(p.b)-1] != '}' || !valid(rest) || rest[0] == 'n' {
			return false // null (and anything odd) as encoding/json does it
		}
		if alias {
			e.Data = rest[:len(rest):len(rest)]
		} else {
			e.Data = append(json.RawMessage(nil), rest...)
		}
		return true
	}
	return p.i == len(p.b)-1 && p.b[p.i] == '}'
}

type parser struct {
	b []byte
	i int
}

func (p *parser) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// uint reads digits without a leading zero (except "0") that fit a uint64.
func (p *parser) uint() (uint64, bool) {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	digits := p.b[start:p.i]
	if len(digits) == 0 || len(digits) > 1 && digits[0] == '0' || len(digits) > 20 {
		return 0, false
	}
	if p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		return 0, false
	}
	var n uint64
	for _, c := range digits {
		d := uint64(c - '0')
		if n > (^uint64(0)-d)/10 {
			return 0, false // overflows: encoding/json reports it
		}
		n = n*10 + d
	}
	return n, true
}

// internKind returns the constant for a known kind, so decoding one
// allocates nothing for it.
func internKind(k []byte) string {
	for _, c := range [...]string{KindObs, KindAct, KindHello, KindStop, KindBye, KindTick, KindEnd} {
		if string(k) == c {
			return c
		}
	}
	return string(k)
}

// str reads a quoted string with no escapes and only printable ASCII.
func (p *parser) str() (string, bool) {
	b, ok := p.strBytes()
	return string(b), ok
}

// strBytes is str's bytes (aliasing p.b).
func (p *parser) strBytes() ([]byte, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			p.i = j + 1
			return p.b[start:j], true
		case c == '\\' || c >= 0x80 || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// decodeEnvelope fills e from b: the fast path, or encoding/json. run is
// the run expected (its string is reused when b names it); alias lets the
// fast path's Data alias b.
func decodeEnvelope(b []byte, e *Envelope, run string, alias bool) error {
	if decodeCanonical(b, e, run, alias) {
		return nil
	}
	*e = Envelope{}
	return json.Unmarshal(b, e)
}
