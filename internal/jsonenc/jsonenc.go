// Package jsonenc encodes and checks JSON the way encoding/json.Marshal
// does, without reflection, for the few shapes the hot paths need (event
// records, tick.closed): where a value is not one it can tell about, it
// says so and the caller asks encoding/json.
package jsonenc

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// AppendFloat appends f as encoding/json encodes a float64, for the
// values it writes without an exponent (0 and 1e-6 <= |f| < 1e21); ok is
// false for the rest (exponents, NaN, infinities), which the caller leaves
// to encoding/json.
func AppendFloat(b []byte, f float64) ([]byte, bool) {
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21 || math.IsNaN(f)) {
		return b, false
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64), true
}

// AppendString appends s as encoding/json encodes a string, for the
// strings that need no escaping but a backslash before '"' and '\\'; ok is
// false for anything else (control characters, '<', '>', '&', non-ASCII),
// which the caller leaves to encoding/json.
func AppendString(b []byte, s string) ([]byte, bool) {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= utf8.RuneSelf || c == '<' || c == '>' || c == '&':
			return b, false
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"'), true
}

// Canonical reports whether v is valid JSON exactly as
// encoding/json.Marshal encodes a json.RawMessage holding it: no
// whitespace outside strings, and no '<', '>', '&', U+2028 or U+2029 (which
// Marshal escapes). False may also mean too deep to tell (past
// maxCanonicalDepth): the caller asks encoding/json.
func Canonical(v []byte) bool {
	end, ok := canonicalValue(v, 0, 0)
	return ok && end == len(v)
}

// maxCanonicalDepth bounds the nesting canonicalValue follows; deeper
// values go to encoding/json (whose own limit is 10,000).
const maxCanonicalDepth = 256

// canonicalValue checks the value starting at v[i] and returns its end.
func canonicalValue(v []byte, i, depth int) (int, bool) {
	if i >= len(v) || depth > maxCanonicalDepth {
		return 0, false
	}
	switch c := v[i]; {
	case c == '"':
		return canonicalString(v, i)
	case c == '{':
		i++
		if i < len(v) && v[i] == '}' {
			return i + 1, true
		}
		for {
			if i >= len(v) || v[i] != '"' {
				return 0, false
			}
			var ok bool
			if i, ok = canonicalString(v, i); !ok || i >= len(v) || v[i] != ':' {
				return 0, false
			}
			if i, ok = canonicalValue(v, i+1, depth+1); !ok || i >= len(v) {
				return 0, false
			}
			switch v[i] {
			case ',':
				i++
			case '}':
				return i + 1, true
			default:
				return 0, false
			}
		}
	case c == '[':
		i++
		if i < len(v) && v[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = canonicalValue(v, i, depth+1); !ok || i >= len(v) {
				return 0, false
			}
			switch v[i] {
			case ',':
				i++
			case ']':
				return i + 1, true
			default:
				return 0, false
			}
		}
	case c == 't':
		return literal(v, i, "true")
	case c == 'f':
		return literal(v, i, "false")
	case c == 'n':
		return literal(v, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return canonicalNumber(v, i)
	}
	return 0, false
}

func literal(v []byte, i int, lit string) (int, bool) {
	if len(v)-i < len(lit) || string(v[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// canonicalNumber checks a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func canonicalNumber(v []byte, i int) (int, bool) {
	digits := func(i int) (int, bool) {
		j := i
		for j < len(v) && v[j] >= '0' && v[j] <= '9' {
			j++
		}
		return j, j > i
	}
	if v[i] == '-' {
		i++
	}
	switch {
	case i >= len(v):
		return 0, false
	case v[i] == '0':
		i++
	case v[i] >= '1' && v[i] <= '9':
		i, _ = digits(i)
	default:
		return 0, false
	}
	var ok bool
	if i < len(v) && v[i] == '.' {
		if i, ok = digits(i + 1); !ok {
			return 0, false
		}
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		if i, ok = digits(i); !ok {
			return 0, false
		}
	}
	return i, true
}

// canonicalString checks a JSON string starting at v[i] (a '"') and
// returns its end: valid escapes, no control characters, and none of the
// characters encoding/json escapes in a RawMessage ('<', '>', '&', U+2028,
// U+2029). Other bytes pass as they are, as encoding/json passes them.
func canonicalString(v []byte, i int) (int, bool) {
	for i++; i < len(v); i++ {
		for i < len(v) && plainByte[v[i]] {
			i++
		}
		if i >= len(v) {
			break
		}
		switch c := v[i]; {
		case c == '"':
			return i + 1, true
		case c == '\\':
			i++
			if i >= len(v) {
				return 0, false
			}
			switch v[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(v)-i < 5 {
					return 0, false
				}
				for _, h := range v[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return 0, false
					}
				}
				i += 4
			default:
				return 0, false
			}
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			return 0, false
		case c == 0xE2 && i+2 < len(v) && v[i+1] == 0x80 && (v[i+2] == 0xA8 || v[i+2] == 0xA9):
			return 0, false
		}
	}
	return 0, false
}

// plainByte says which bytes a canonical string holds as they are,
// needing no further look: all but controls, '"', '\\', '<', '>', '&' and
// 0xE2 (the first byte of U+2028 and U+2029).
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && c != 0xE2
	}
	return t
}()
