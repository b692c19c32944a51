package report

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/terrarium-sim/terrarium/events"
)

// MaxPoints bounds the points of one chart's line.
const MaxPoints = 2000

// Run is what a report shows of one run directory.
type Run struct {
	Dir      string
	Scenario string         // scenario.hcl as run
	Result   map[string]any // result.json (nil when the run did not finish writing it)
	Metrics  []Series       // metrics.csv, one per column after "tick"
	Grids    []Grid         // world.grid events, in tick order
	// ChainErr is the event log's hash-chain check (nil: intact).
	ChainErr error
}

// Series is one metric over the ticks.
type Series struct {
	Name   string
	Ticks  []float64
	Values []float64
}

// Grid is one world.grid snapshot.
type Grid struct {
	At       int                 `json:"at"`
	Width    int                 `json:"width"`
	Height   int                 `json:"height"`
	Rules    string              `json:"rules"`
	Topology string              `json:"topology"`
	Groups   []string            `json:"groups"`
	Agents   [][3]int            `json:"agents"` // x, y, group index
	Layers   map[string][][3]int `json:"layers"` // name -> x, y, value
}

// Load reads a run directory. A missing metrics.csv or events.jsonl is
// an error; a missing result.json is not (an interrupted run).
func Load(dir string) (*Run, error) {
	r := &Run{Dir: dir}
	if b, err := os.ReadFile(filepath.Join(dir, "scenario.hcl")); err == nil {
		r.Scenario = string(b)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("report: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "result.json")); err == nil {
		if err := json.Unmarshal(b, &r.Result); err != nil {
			return nil, fmt.Errorf("report: %s: %w", filepath.Join(dir, "result.json"), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("report: %w", err)
	}
	m, err := ReadMetrics(filepath.Join(dir, "metrics.csv"))
	if err != nil {
		return nil, fmt.Errorf("report: %w (is %s a run directory?)", err, dir)
	}
	r.Metrics = m
	recs, err := events.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	r.ChainErr = events.Verify(recs)
	for _, rec := range recs {
		if rec.Kind != "world.grid" {
			continue
		}
		var g Grid
		if err := json.Unmarshal(rec.Data, &g); err != nil {
			return nil, fmt.Errorf("report: world.grid event %d: %w", rec.Seq, err)
		}
		r.Grids = append(r.Grids, g)
	}
	return r, nil
}

// Row is metrics.csv's values at one tick, by metric.
type Row struct {
	Tick   float64
	Values map[string]float64
}

// ByTick turns series (ReadMetrics) back into rows, in tick order.
func ByTick(series []Series) []Row {
	byTick := map[float64]map[string]float64{}
	for _, s := range series {
		for i, t := range s.Ticks {
			if byTick[t] == nil {
				byTick[t] = map[string]float64{}
			}
			byTick[t][s.Name] = s.Values[i]
		}
	}
	rows := make([]Row, 0, len(byTick))
	for t, v := range byTick {
		rows = append(rows, Row{Tick: t, Values: v})
	}
	slices.SortFunc(rows, func(a, b Row) int { return cmp.Compare(a.Tick, b.Tick) })
	return rows
}

// ReadMetrics reads a run's metrics.csv: one series per column after
// "tick" (a tick with no value for a metric has no point in its series).
func ReadMetrics(path string) ([]Series, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cr := csv.NewReader(f)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(head) == 0 || head[0] != "tick" {
		return nil, fmt.Errorf("%s: the first column is %q, want \"tick\"", path, head)
	}
	out := make([]Series, len(head)-1)
	for i := range out {
		out[i].Name = head[i+1]
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		t, err := strconv.ParseFloat(rec[0], 64)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: tick %q: %w", path, line, rec[0], err)
		}
		for i := range out {
			if rec[i+1] == "" {
				continue // not reported at this tick
			}
			v, err := strconv.ParseFloat(rec[i+1], 64)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %s %q: %w", path, line, out[i].Name, rec[i+1], err)
			}
			out[i].Ticks = append(out[i].Ticks, t)
			out[i].Values = append(out[i].Values, v)
		}
	}
	return out, nil
}

// Write renders the report of dir into dir/report.html and returns its
// path. dir is a run directory, or a sweep directory (sweep.csv and no
// metrics.csv): see WriteSweep.
func Write(dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, "metrics.csv")); errors.Is(err, os.ErrNotExist) && IsSweep(dir) {
		return WriteSweep(dir)
	}
	r, err := Load(dir)
	if err != nil {
		return "", err
	}
	return writePage(dir, func(w io.Writer) error { return Render(w, r) })
}
