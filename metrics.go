package terrarium

import (
	"encoding/csv"
	"fmt"
	"os"
	"strconv"

	"github.com/terrarium-sim/terrarium/world"
)

// metricsWriter writes metrics.csv: a "tick" column, then one column per
// metric the world declares, one row per tick, flushed every tick. A metric
// the world did not report at a tick is an empty field.
type metricsWriter struct {
	f     *os.File
	w     *csv.Writer
	names []string
	rec   []string // reused for every row
	err   error
}

func createMetrics(path string, names []string) (*metricsWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create metrics: %w", err)
	}
	m := &metricsWriter{f: f, w: csv.NewWriter(f), names: names, rec: make([]string, len(names)+1)}
	m.write(append([]string{"tick"}, names...))
	return m, m.err
}

func (m *metricsWriter) row(t world.Tick, vals map[string]float64) {
	m.rec[0] = strconv.FormatUint(uint64(t), 10)
	for i, n := range m.names {
		m.rec[i+1] = ""
		if v, ok := vals[n]; ok {
			m.rec[i+1] = strconv.FormatFloat(v, 'g', -1, 64)
		}
	}
	m.write(m.rec)
}

// write writes one record and flushes it; the first error is kept.
func (m *metricsWriter) write(rec []string) {
	_ = m.w.Write(rec)
	m.w.Flush()
	if err := m.w.Error(); err != nil && m.err == nil {
		m.err = fmt.Errorf("write metrics: %w", err)
	}
}

func (m *metricsWriter) close() error {
	if err := m.f.Close(); err != nil && m.err == nil {
		m.err = fmt.Errorf("close metrics: %w", err)
	}
	return m.err
}
