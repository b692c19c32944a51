package agents

import "bytes"

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

// Close emits a last line that had no newline.
func (w *lineWriter) Close() error {
	if len(w.buf) > 0 || w.dropped > 0 {
		w.flush()
	}
	return nil
}
