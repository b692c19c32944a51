package terrarium

import (
	"bufio"
	"fmt"
	"os"
	"strconv"

	"github.com/terrarium-sim/terrarium/world"
)

// metricsWriter writes metrics.csv: a "tick" column, then one column per
// metric the world declares, one row per tick, flushed every tick.
type metricsWriter struct {
	f     *os.File
	w     *bufio.Writer
	names []string
	err   error
}

func createMetrics(path string, names []string) (*metricsWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create metrics: %w", err)
	}
	m := &metricsWriter{f: f, w: bufio.NewWriter(f), names: names}
	m.w.WriteString("tick")
	for _, n := range names {
		m.w.WriteByte(',')
		m.w.WriteString(csvField(n))
	}
	m.w.WriteByte('\n')
	return m, m.flush()
}

func (m *metricsWriter) row(t world.Tick, vals map[string]float64) {
	m.w.WriteString(strconv.FormatUint(uint64(t), 10))
	for _, n := range m.names {
		m.w.WriteByte(',')
		if v, ok := vals[n]; ok {
			m.w.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	m.w.WriteByte('\n')
	_ = m.flush()
}

func (m *metricsWriter) flush() error {
	if err := m.w.Flush(); err != nil && m.err == nil {
		m.err = fmt.Errorf("write metrics: %w", err)
	}
	return m.err
}

func (m *metricsWriter) close() error {
	_ = m.flush()
	if err := m.f.Close(); err != nil && m.err == nil {
		m.err = fmt.Errorf("close metrics: %w", err)
	}
	return m.err
}

func csvField(s string) string {
	for _, c := range s {
		if c == ',' || c == '"' || c == '\n' {
			return strconv.Quote(s)
		}
	}
	return s
}
