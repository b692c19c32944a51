package agents

import (
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestLineWriter(t *testing.T) {
	type line struct {
		text    string
		dropped int
	}
	tests := []struct {
		name   string
		max    int
		writes []string
		want   []line
	}{
		{"one line", 10, []string{"abc\n"}, []line{{"abc", 0}}},
		{"split across writes", 10, []string{"ab", "c\nde", "f\n"}, []line{{"abc", 0}, {"def", 0}}},
		{"several in one write", 10, []string{"a\nb\nc\n"}, []line{{"a", 0}, {"b", 0}, {"c", 0}}},
		{"empty lines", 10, []string{"\n\n"}, []line{{"", 0}, {"", 0}}},
		{"crlf", 10, []string{"a\r\n"}, []line{{"a", 0}}},
		{"last line without newline", 10, []string{"a\nb"}, []line{{"a", 0}, {"b", 0}}},
		{"exactly max", 3, []string{"abc\n"}, []line{{"abc", 0}}},
		{"truncated", 3, []string{"abcdef\n", "gh\n"}, []line{{"abc", 3}, {"gh", 0}}},
		{"truncated across writes", 3, []string{"ab", "cd", "ef", "\nx\n"}, []line{{"abc", 3}, {"x", 0}}},
		{"truncated last line", 2, []string{"abcd"}, []line{{"ab", 2}}},
		{"nothing", 10, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []line
			w := newLineWriter(tt.max, func(b []byte, dropped int) {
				got = append(got, line{string(b), dropped})
			})
			for _, s := range tt.writes {
				n, err := w.Write([]byte(s))
				if n != len(s) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			w.Close()
			if !slices.Equal(got, tt.want) {
				t.Errorf("lines = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBuildEnv(t *testing.T) {
	host := []string{"PATH=/usr/bin", "HOME=/root", "SECRET=x", "LANG=C", "LANG=C.UTF-8", "NOEQUALS", "=weird"}
	tests := []struct {
		name  string
		allow []string
		vars  map[string]string
		want  []string
	}{
		{"nothing", nil, nil, []string{}},
		{"allow-listed only", []string{"PATH", "LANG", "MISSING"}, nil, []string{"LANG=C.UTF-8", "PATH=/usr/bin"}},
		{"vars sorted", nil, map[string]string{EnvRun: "r", EnvAgentID: "a"}, []string{EnvAgentID + "=a", EnvRun + "=r"}},
		{"vars win", []string{"HOME"}, map[string]string{"HOME": "/work"}, []string{"HOME=/work"}},
		{"empty value kept", nil, map[string]string{EnvSeed: ""}, []string{EnvSeed + "="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := BuildEnv(host, tt.allow, tt.vars)
			if !slices.Equal(got, tt.want) {
				t.Errorf("BuildEnv = %q, want %q", got, tt.want)
			}
			for _, kv := range got {
				if strings.HasPrefix(kv, "SECRET=") {
					t.Errorf("host secret leaked: %q", kv)
				}
			}
		})
	}
}

func TestEscapeLine(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "hello world", "hello world"},
		{"empty", "", ""},
		{"tab kept", "a\tb", "a\tb"},
		{"backslash kept", `C:\x1b`, `C:\x1b`},
		{"printable utf-8 kept", "héllo wörld ☃ 日本 🦎", "héllo wörld ☃ 日本 🦎"},
		{"replacement char kept", "\uFFFD", "\uFFFD"},
		{"terminal escape", "\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"carriage return mid-line", "secret\rcover", `secret\x0dcover`},
		{"nul and bell", "a\x00b\x07", `a\x00b\x07`},
		{"backspace", "abc\b\b", `abc\x08\x08`},
		{"del", "x\x7f", `x\x7f`},
		{"c1 csi", "a\u009b31m", `a\u009b31m`},
		{"c1 nel", "\u0085", `\u0085`},
		{"nbsp is printable", "a\u00a0b", "a\u00a0b"},
		{"invalid byte", "a\xffb", `a\xffb`},
		{"lone continuation", "\x80", `\x80`},
		{"truncated rune", "ok\xe2\x98", `ok\xe2\x98`},
		{"overlong encoding", "\xc0\xaf", `\xc0\xaf`},
		{"surrogate half", "\xed\xa0\x80", `\xed\xa0\x80`},
		{"mixed", "é\x1b\xffé", `é\x1b\xffé`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := escapeLine([]byte(tt.in)); got != tt.want {
				t.Errorf("escapeLine(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// exec's copier (io.Copy from the pipe) reads through ReadFrom's small
// buffer, and lines come out the same however the reads split them.
func TestLineWriterReadFrom(t *testing.T) {
	var got []string
	w := newLineWriter(MaxLineBytes, func(line []byte, dropped int) { got = append(got, string(line)) })
	long := strings.Repeat("y", 3*readBufBytes+7) // spans reads
	in := "a\n" + long + "\nlast"
	n, err := io.Copy(w, iotest.OneByteReader(strings.NewReader(in)))
	if err != nil || n != int64(len(in)) {
		t.Fatalf("io.Copy: %d, %v; want %d, nil", n, err, len(in))
	}
	w.Close()
	if len(got) != 3 || got[0] != "a" || got[1] != long || got[2] != "last" {
		t.Fatalf("lines %q", got)
	}
}

// Copying a pipe (an *os.File, as exec does) into a lineWriter allocates
// ReadFrom's small buffer, not io.Copy's 32 KiB one: held for an agent's
// whole life, per stream, that was most of the host's memory per agent.
func TestLineWriterCopiesAPipeThroughASmallBuffer(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	go func() {
		pw.Write([]byte("one line\n"))
		pw.Close()
	}()
	w := newLineWriter(MaxLineBytes, func([]byte, int) {})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := io.Copy(w, pr); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 16<<10 {
		t.Fatalf("copying a pipe allocated %d bytes, want about %d", n, readBufBytes)
	}
}
