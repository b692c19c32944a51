package jsonenc

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

var samples = []string{
	`1`, `-0`, `0.5`, `-12.5e+3`, `1E9`, `01`, `1.`, `.5`, `-`, `1e`, `+1`,
	`true`, `false`, `null`, `tru`, `nul`, `truex`,
	`"x"`, `""`, `"a\"b"`, `"\\"`, `"\u00e9"`, `"\uZZZZ"`, `"\x"`, `"é"`, "\"\xff\"", "\"a\x01\"",
	`"<b>"`, `"a&b"`, "\"\u2028\"", "\"\u2029\"", "\"\u2027\"",
	`{}`, `[]`, `{"ok":true}`, `{"a":[1,2,{"b":null}]}`, `{"a":1,}`, `[1,]`, `{"a"}`, `{1:2}`,
	`{ "a":1}`, `[1, 2]`, " 1", "1 ", "\t{}", `{"a":1}{}`, `[[[[]]]]`, `[`, `{`, `{"a":`,
	`{"move":[0,-1],"give":"agent-17"}`, `{"a":"</script>"}`, ``,
	strings.Repeat("[", 300) + strings.Repeat("]", 300),
}

// Canonical says yes only where json.Marshal leaves the bytes as they are.
func TestCanonicalAgreesWithMarshal(t *testing.T) {
	for _, s := range samples {
		checkCanonical(t, []byte(s))
	}
}

func FuzzCanonical(f *testing.F) {
	for _, s := range samples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) { checkCanonical(t, v) })
}

func checkCanonical(t *testing.T, v []byte) {
	t.Helper()
	got := Canonical(v)
	m, err := json.Marshal(json.RawMessage(v))
	if got && (err != nil || !bytes.Equal(m, v)) {
		t.Errorf("Canonical(%q) = true, but Marshal gives %q, %v", v, m, err)
	}
	// It may say no for a canonical value only past its depth limit.
	if !got && err == nil && bytes.Equal(m, v) && len(v) > 0 && !strings.HasPrefix(string(v), strings.Repeat("[", maxCanonicalDepth)) {
		t.Errorf("Canonical(%q) = false, but Marshal leaves it as it is", v)
	}
}

func TestAppendStringAgreesWithMarshal(t *testing.T) {
	for _, s := range []string{"", "agent-1", `a"b`, `a\b`, "a<b", "a>b", "a&b", "é", "\x01", "\x7f", "tab\t", "/"} {
		got, ok := AppendString([]byte("x"), s)
		want, _ := json.Marshal(s)
		if ok && string(got) != "x"+string(want) {
			t.Errorf("AppendString(%q) = %s, want x%s", s, got, want)
		}
		if !ok && !strings.ContainsAny(s, "<>&\x01\t") && s != "é" {
			t.Errorf("AppendString(%q) refused a plain string", s)
		}
	}
}

func TestAppendFloatAgreesWithMarshal(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.3, 1.0 / 3, 1e-6, 9.99e-7, 1e20, 1e21, 123456789.125, -0.5, math.Inf(1), math.NaN(), math.Copysign(0, -1)} {
		got, ok := AppendFloat(nil, f)
		want, err := json.Marshal(f)
		if ok && (err != nil || string(got) != string(want)) {
			t.Errorf("AppendFloat(%v) = %s, want %s (%v)", f, got, want, err)
		}
	}
}
