package terrarium

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/terrarium-sim/terrarium/world"
)

// Run directory statuses that are not a Result.Status.
const (
	StatusRunning   = "running"   // the host is still running it
	StatusAbandoned = "abandoned" // no run.finished, and the host is gone (killed, crashed)
)

// RunSummary is one run directory, as `terrarium runs` lists it.
type RunSummary struct {
	Dir      string
	Run      string
	Scenario string
	Status   string // running, finished, interrupted, aborted, failed or abandoned
	Ticks    world.Tick
	Started  time.Time
	Duration time.Duration // so far, for a running run; up to its last event for an abandoned one
}

// ListRuns lists the run directories directly under dir (those with an
// events.jsonl), oldest first. A directory it cannot read is skipped and
// reported in the joined error; the others are still listed.
func ListRuns(dir string) ([]RunSummary, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var out []RunSummary
	var errs []error
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		d := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(d, "events.jsonl")); err != nil {
			continue // not a run directory
		}
		s, err := SummarizeRun(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out, errors.Join(errs...)
}

// SummarizeRun reads one run directory.
func SummarizeRun(dir string) (RunSummary, error) {
	st, err := ReadRunState(dir)
	if err != nil {
		return RunSummary{}, err
	}
	s := RunSummary{Dir: dir, Run: st.Run, Scenario: st.Scenario, Status: st.Status, Ticks: st.Ticks, Started: st.Started}
	switch {
	case strings.HasPrefix(st.Status, StatusAbandoned):
		s.Status = StatusAbandoned
		s.Duration = st.Last.Sub(st.Started)
	case st.Status == StatusRunning:
		s.Duration = time.Since(st.Started)
	default:
		s.Duration = st.Last.Sub(st.Started)
	}
	if res, err := readResult(dir); err == nil {
		s.Status = res.Status
		s.Ticks = res.Ticks
		s.Duration = time.Duration(res.DurationMS) * time.Millisecond
	}
	return s, nil
}
