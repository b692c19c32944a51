package bus

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// envelopes covers the canonical form and every way out of it.
func envelopes() []Envelope {
	d := time.Date(2026, 12, 4, 10, 0, 0, 123456789, time.UTC)
	d0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	dz := time.Date(2026, 12, 4, 10, 0, 0, 5, time.FixedZone("X", 3600))
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	es := []Envelope{
		{Kind: KindObs, Run: "r-1", Agent: "a_1", Tick: 7, Seq: 99, Deadline: &d, Data: json.RawMessage(`{"tick":7,"pad":"xx"}`)},
		{Kind: KindAct, Run: "r", Agent: "a", Tick: 0, Seq: 0, Data: json.RawMessage(`{"ok":true}`)},
		{Kind: KindEnd, Run: "r", Tick: 1 << 63, Seq: ^uint64(0)},
		{Kind: KindObs, Run: "r", Deadline: &d0},
		{Kind: KindObs, Run: "r", Deadline: &dz},
		{Kind: KindObs, Run: "r", Deadline: &far},
		{Kind: KindAct, Run: "r", Data: json.RawMessage(`{"a": 1}`)},       // whitespace: compacted
		{Kind: KindAct, Run: "r", Data: json.RawMessage(`"<b>&"`)},         // HTML escaped
		{Kind: KindAct, Run: "r", Data: json.RawMessage(`"é\u2028"`)},      // non-ASCII
		{Kind: KindAct, Run: "r", Data: json.RawMessage(`[1,2,{"x":[]}]`)}, // nested
		{Kind: KindAct, Run: "r", Data: json.RawMessage(`null`)},
		{Kind: KindAct, Run: "r", Data: json.RawMessage(`{"a":`)}, // invalid
		{Kind: "a\"b", Run: "r<", Agent: "é", Data: json.RawMessage(`1`)},
		{Kind: "k\n", Run: "r\\", Agent: "\x7f"},
		{V: 3, Kind: KindAct, Run: "r"},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", "0", "-", "_", " ", "\"", "\\", "<", "é", "\x01", "{", "}", "[", "]", ",", ":", "1", "n"}
	clean := []string{"a", "Z", "0", "-", "_", "."}
	values := []string{`1`, `"s"`, `{"a":[1,2]}`, `[]`, `true`, `{"x":{"y":"z"}}`, `-1.5e3`}
	var from []string
	word := func() string {
		var b strings.Builder
		for n := rng.IntN(6); n > 0; n-- {
			b.WriteString(from[rng.IntN(len(from))])
		}
		return b.String()
	}
	for i := 0; i < 2000; i++ {
		from = alphabet
		if i%2 == 0 {
			from = clean
		}
		e := Envelope{Kind: word(), Run: word(), Agent: word(), Tick: rng.Uint64() >> rng.IntN(64), Seq: rng.Uint64() >> rng.IntN(64)}
		if rng.IntN(2) == 0 {
			t := time.Unix(rng.Int64N(1<<34), rng.Int64N(1e9)).UTC()
			e.Deadline = &t
		}
		switch {
		case i%2 == 0:
			e.Data = json.RawMessage(values[rng.IntN(len(values))])
		case rng.IntN(3) > 0:
			e.Data = json.RawMessage(word())
		}
		es = append(es, e)
	}
	return es
}

// Encode gives exactly encoding/json's bytes (or its error) for every
// envelope; Decode gives exactly encoding/json's value (or an error when
// it errs) for every message, canonical or not.
func TestCodecMatchesEncodingJSON(t *testing.T) {
	fast := 0
	for _, e := range envelopes() {
		got, gotErr := Encode(e)
		e.V = SchemaVersion
		want, wantErr := json.Marshal(e)
		if (gotErr != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("Encode(%+v) = %s, %v; encoding/json: %s, %v", e, got, gotErr, want, wantErr)
		}
		if _, ok := appendEnvelope(nil, &e); ok {
			fast++
		}
		if gotErr != nil {
			continue
		}
		checkDecode(t, got)
	}
	if fast < 100 {
		t.Errorf("only %d envelopes took the fast path: the test does not test it", fast)
	}
	// Messages Encode never makes: other key order, case, spacing,
	// duplicates, unknown fields, odd numbers, escapes.
	for _, m := range []string{
		`{"kind":"act","v":1,"run":"r","tick":1,"seq":2}`,
		`{"V":1,"Kind":"act","run":"r","tick":1,"seq":2}`,
		`{ "v":1,"kind":"act","run":"r","tick":1,"seq":2}`,
		`{"v":1,"kind":"act","run":"r","tick":1,"seq":2,"seq":3}`,
		`{"v":1,"kind":"act","run":"r","tick":1,"seq":2,"data":{"a":1},"x":1}`,
		`{"v":1,"kind":"act","run":"r","tick":1,"seq":2,"data":{"a":1},"data":2}`,
		`{"v":1,"kind":"act","run":"r","tick":1.0,"seq":2}`,
		`{"v":1,"kind":"act","run":"r","tick":1e3,"seq":2}`,
		`{"v":1,"kind":"act","run":"r","tick":-1,"seq":2}`,
		`{"v":1,"kind":"act","run":"r","tick":18446744073709551616,"seq":2}`,
		`{"v":1,"kind":"a\u0063t","run":"r","tick":1,"seq":2}`,
		`{"v":1,"kind":"act","run":"r","tick":1,"seq":2,"deadline":"2026-12-04T10:00:00+01:00"}`,
		`{"v":1,"kind":"act","run":"r","tick":1,"seq":2,"deadline":"2026-12-04T25:00:00Z"}`,
		`{"v":1,"kind":"act","run":"r","tick":1,"seq":2,"deadline":null}`,
		`{"v":1,"kind":"act","run":"r","tick":1,"seq":2,"data":null}`,
		`{"v":1,"kind":"act","run":"r","tick":1,"seq":2,"data":"x"} `,
		`{"v":1,"kind":"act","run":"r","agent":null,"tick":1,"seq":2}`,
		`{"v":1,"kind":"act","run":"r","tick":1,"seq":2`,
		`{"v":1,"kind":"act","run":"r","tick":1,"seq":2}}`,
		"{\"v\":1,\"kind\":\"a\x01\",\"run\":\"r\",\"tick\":1,\"seq\":2}",
		"{\"v\":1,\"kind\":\"a\",\"run\":\"r\xff\",\"tick\":1,\"seq\":2}",
		`{"v":1,"kind":"act","run":"r","tick":1,"seq":2,"data":}`,
		`{"v":1,"kind":"act","run":"r","tick":1,"seq":2,"data":1,}`,
		`{"v":1,"kind":"act","run":"r","tick":1,"seq":2,"data":{"a":1}`,
		`[]`, ``, `null`,
	} {
		checkDecode(t, []byte(m))
	}
}

func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	var got, want Envelope
	gotErr := decodeEnvelope(b, &got, "", false)
	wantErr := json.Unmarshal(b, &want)
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("decode %s: error %v; encoding/json: %v", b, gotErr, wantErr)
	}
	if gotErr != nil {
		return
	}
	if !reflect.DeepEqual(normal(got), normal(want)) {
		t.Fatalf("decode %s:\n got %+v\nwant %+v", b, got, want)
	}
	// Expecting the run it names (its string reused) or another, Data
	// aliasing b or not: the same envelope.
	for _, run := range []string{want.Run, "other"} {
		var again Envelope
		if err := decodeEnvelope(b, &again, run, run == "other"); err != nil || !reflect.DeepEqual(normal(again), normal(want)) {
			t.Fatalf("decode %s expecting run %q: %+v, %v; want %+v", b, run, again, err, want)
		}
	}
}

// normal makes deadlines comparable with DeepEqual.
func normal(e Envelope) Envelope {
	if e.Deadline != nil {
		d := e.Deadline.UTC()
		s := d.Format(time.RFC3339Nano)
		e.Deadline = nil
		e.Data = append(e.Data, s...)
	}
	return e
}

func BenchmarkEncodeObservation(b *testing.B) {
	d := time.Now().UTC()
	e := Envelope{Kind: KindObs, Run: "bench-12", Agent: "a-500", Tick: 20, Seq: 20000, Deadline: &d, Data: json.RawMessage(`{"tick":20,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeObservation(b *testing.B) {
	d := time.Now().UTC()
	msg, _ := Encode(Envelope{Kind: KindObs, Run: "bench-12", Agent: "a-500", Tick: 20, Seq: 20000, Deadline: &d, Data: json.RawMessage(`{"tick":20,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(msg, "bench-12"); err != nil {
			b.Fatal(err)
		}
	}
}
