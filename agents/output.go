package agents

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"unicode/utf8"
)

// MaxLineBytes is the longest output line kept; the rest of a longer line is
// discarded and counted.
const MaxLineBytes = 64 << 10

// lineWriter splits what a child writes into lines and hands each to emit,
// with the number of bytes cut off it. It never blocks on the child's behalf
// and holds at most max bytes. Write is called by one goroutine at a time (the
// exec package's copier for one pipe); Close after that goroutine has ended.
type lineWriter struct {
	max     int
	emit    func(line []byte, dropped int)
	buf     []byte
	dropped int
}

func newLineWriter(max int, emit func(line []byte, dropped int)) *lineWriter {
	return &lineWriter{max: max, emit: emit}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.add(p)
			break
		}
		w.add(p[:i])
		w.flush()
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) add(b []byte) {
	room := min(max(w.max-len(w.buf), 0), len(b))
	w.buf = append(w.buf, b[:room]...)
	w.dropped += len(b) - room
}

func (w *lineWriter) flush() {
	line := w.buf
	if w.dropped == 0 {
		line = bytes.TrimSuffix(line, []byte("\r"))
	}
	w.emit(line, w.dropped)
	w.buf = w.buf[:0]
	w.dropped = 0
}

// readBufBytes is the buffer ReadFrom reads a child's pipe with. Without
// ReadFrom, exec's copier would use io.Copy's 32 KiB buffer, held for the
// child's whole life: 64 KiB per agent for its two streams, most of the
// host's memory per agent.
const readBufBytes = 2 << 10

// ReadFrom implements io.ReaderFrom, so io.Copy (exec's copier) reads the
// pipe through a small buffer. It returns at EOF (nil) or on a read error.
func (w *lineWriter) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, readBufBytes)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			total += int64(n)
			_, _ = w.Write(buf[:n])
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Close emits a last line that had no newline.
func (w *lineWriter) Close() error {
	if len(w.buf) > 0 || w.dropped > 0 {
		w.flush()
	}
	return nil
}

// escapeLine returns line with what must not reach a log file raw made
// visible: control characters other than tab (C0, DEL and C1, the ones a
// terminal may act on) become \xHH (C0, DEL) or \u00HH (C1), and each byte
// that is not part of valid UTF-8 becomes \xHH. Printable UTF-8, backslashes
// included, is kept as is, so the result is readable but not reversible.
func escapeLine(line []byte) string {
	if clean(line) {
		return string(line)
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(line) + 16)
	for len(line) > 0 {
		r, size := utf8.DecodeRune(line)
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteByte(hex[line[0]>>4])
			b.WriteByte(hex[line[0]&0xf])
		case r == '\t':
			b.WriteByte('\t')
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x`)
			b.WriteByte(hex[r>>4])
			b.WriteByte(hex[r&0xf])
		case r >= 0x80 && r < 0xa0:
			b.WriteString(`\u00`)
			b.WriteByte(hex[r>>4])
			b.WriteByte(hex[r&0xf])
		default:
			b.Write(line[:size])
		}
		line = line[size:]
	}
	return b.String()
}

// clean reports whether line needs no escaping: valid UTF-8 without control
// characters other than tab.
func clean(line []byte) bool {
	for len(line) > 0 {
		if c := line[0]; c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' || c == 0x7f {
				return false
			}
			line = line[1:]
			continue
		}
		r, size := utf8.DecodeRune(line)
		if r == utf8.RuneError && size == 1 || r < 0xa0 {
			return false
		}
		line = line[size:]
	}
	return true
}
