package sweep

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/scenarios"
)

// Var is one swept variable and its values, in order.
type Var struct {
	Name   string
	Values []string
}

// Config configures a sweep.
type Config struct {
	Scenario string // the scenario file
	Vars     []Var
	// Seeds are the seeds each combination runs with (nil: the scenario's).
	Seeds    []uint64
	Parallel int    // runs at a time (default 1)
	Out      string // the sweep's directory (default sweeps/<scenario name>)
	Logger   hclog.Logger
	// Host is the template of every run's host config (agent users, ...);
	// Scenario, Dir, Logger and Progress are set per run.
	Host terrarium.Config
	// Progress, if set, is called after every tick of any run and after
	// every run; calls are serialised.
	Progress func(Progress)
}

// Progress is how far the whole sweep is.
type Progress struct {
	Runs, Done, Failed, Skipped int
	Ticks, TotalTicks           uint64 // ticks played so far, of all runs (skipped ones count as played)
}

// Point is one combination of values and a seed.
type Point struct {
	Vars []string // name=value, in Config.Vars order
	Seed uint64
	Dir  string
}

// Outcome is one point's result: a row of sweep.csv.
type Outcome struct {
	Point
	Status     string // a run status, or "failed" for a value the scenario refused
	Skipped    bool   // finished by an earlier invocation
	Refused    bool   // the scenario refused its values in this invocation: not run
	Error      string
	Ticks      uint64
	StateHash  string
	DurationMS int64
	Metrics    map[string]string // the last row of metrics.csv
	// World holds the world's result figures: every number and bool of
	// result.json's "world" object, keyed by its path ("volatility",
	// "metrics.prey.mean", "first_zero.unhappy"); lists are left out.
	World map[string]string
}

// WorldColumn prefixes sweep.csv's columns of the world's result figures
// (Outcome.World), which come after "dir": "world.volatility".
const WorldColumn = "world."

// Summary is what a sweep did. Every point is Ran (a run started by
// this invocation), Refused (the scenario refused its values: no run),
// Skipped (done by an earlier invocation) or not run (interrupted).
// Failed counts the points that did not finish, of all of them.
type Summary struct {
	Dir      string
	Outcomes []Outcome
	Ran      int
	Refused  int
	Skipped  int
	Failed   int
}

// ParseSeeds parses "1..5", "1,3,9" or a mix ("1..3,10").
func ParseSeeds(s string) ([]uint64, error) {
	var out []uint64
	seen := map[uint64]bool{}
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(strings.TrimSpace(part), "..")
		lo, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--seeds %q: %q is not a whole number (want like 1..5 or 1,2,7)", s, a)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.ParseUint(b, 10, 64); err != nil || hi < lo {
				return nil, fmt.Errorf("--seeds %q: bad range %q (want like 1..5)", s, part)
			}
		}
		if hi-lo >= 100000 {
			return nil, fmt.Errorf("--seeds %q: more than 100000 seeds", s)
		}
		for n := lo; n <= hi; n++ {
			if seen[n] {
				return nil, fmt.Errorf("--seeds %q: seed %d is given twice", s, n)
			}
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._+-]`)

// dirName is a point's variables as a directory name.
func dirName(vars []string) string {
	if len(vars) == 0 {
		return "default"
	}
	parts := make([]string, len(vars))
	for i, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		parts[i] = unsafeChars.ReplaceAllString(k, "_") + "=" + unsafeChars.ReplaceAllString(v, "_")
	}
	return strings.Join(parts, ",")
}

// Points lists every combination, the first variable varying slowest,
// then the seeds.
func Points(vars []Var, seeds []uint64, out string) []Point {
	combos := [][]string{nil}
	for _, v := range vars {
		var next [][]string
		for _, c := range combos {
			for _, val := range v.Values {
				next = append(next, append(append([]string(nil), c...), v.Name+"="+val))
			}
		}
		combos = next
	}
	var pts []Point
	for _, c := range combos {
		for _, s := range seeds {
			pts = append(pts, Point{Vars: c, Seed: s, Dir: filepath.Join(out, dirName(c), "seed-"+strconv.FormatUint(s, 10))})
		}
	}
	return pts
}

// Run runs the sweep and writes <Out>/sweep.csv. The error is for a sweep
// that cannot start (no scenario, bad flags); failed runs are in the summary.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 1
	}
	base, diags := scenarios.Load(cfg.Scenario)
	if diags.HasErrors() {
		return nil, fmt.Errorf("sweep: %w", diags)
	}
	declared := map[string]bool{}
	for _, v := range base.Variables {
		declared[v.Name] = true
	}
	seen := map[string]bool{}
	for _, v := range cfg.Vars {
		if !declared[v.Name] {
			return nil, fmt.Errorf("sweep: the scenario %s declares no variable %q", cfg.Scenario, v.Name)
		}
		if seen[v.Name] || len(v.Values) == 0 {
			return nil, fmt.Errorf("sweep: variable %q given twice or without values", v.Name)
		}
		seen[v.Name] = true
	}
	if cfg.Out == "" {
		cfg.Out = filepath.Join("sweeps", base.Name)
	}
	seeds := cfg.Seeds
	if len(seeds) == 0 {
		seeds = []uint64{base.Seed}
	}
	pts := Points(cfg.Vars, seeds, cfg.Out)
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}

	s := &sweeper{cfg: cfg, outcomes: make([]Outcome, len(pts)), prog: Progress{Runs: len(pts)}}
	type job struct {
		i      int
		sc     *scenarios.Scenario
		resume bool // an earlier invocation left it stopped: go on with it
	}
	var jobs []job
	for i, p := range pts {
		s.outcomes[i].Point = p
		if o, ok := finished(p); ok {
			s.outcomes[i] = o
			s.prog.Skipped++
			s.prog.Done++
			if o.Status != terrarium.StatusFinished {
				s.prog.Failed++
			}
			s.prog.Ticks += o.Ticks
			s.prog.TotalTicks += o.Ticks
			continue
		}
		vals := map[string]string{}
		for _, kv := range p.Vars {
			k, v, _ := strings.Cut(kv, "=")
			vals[k] = v
		}
		sc, diags := scenarios.LoadWith(cfg.Scenario, scenarios.LoadOptions{Vars: vals})
		if diags.HasErrors() {
			s.outcomes[i].Status, s.outcomes[i].Error, s.outcomes[i].Refused = terrarium.StatusFailed, oneLine(diags.Error()), true
			s.prog.Done++
			s.prog.Failed++
			if err := writeFailed(p.Dir, s.outcomes[i].Error); err != nil {
				return nil, fmt.Errorf("sweep: %w", err)
			}
			continue
		}
		sc.Seed = p.Seed
		s.prog.TotalTicks += sc.Ticks
		jobs = append(jobs, job{i, sc, stopped(p.Dir)})
	}
	s.report()

	sem := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s.run(ctx, j.i, j.sc, j.resume)
		}()
	}
	wg.Wait()

	sum := &Summary{Dir: cfg.Out, Outcomes: s.outcomes}
	for _, o := range s.outcomes {
		switch {
		case o.Skipped:
			sum.Skipped++
		case o.Refused:
			sum.Refused++
		case o.Status == "":
		default:
			sum.Ran++
		}
		if o.Status != "" && o.Status != terrarium.StatusFinished {
			sum.Failed++
		}
	}
	if err := writeCSV(filepath.Join(cfg.Out, "sweep.csv"), cfg.Vars, s.outcomes); err != nil {
		return sum, fmt.Errorf("sweep: %w", err)
	}
	return sum, ctx.Err()
}

type sweeper struct {
	cfg      Config
	mu       sync.Mutex
	outcomes []Outcome
	prog     Progress
}

func (s *sweeper) report() {
	if s.cfg.Progress != nil {
		s.cfg.Progress(s.prog)
	}
}

func (s *sweeper) run(ctx context.Context, i int, sc *scenarios.Scenario, resume bool) {
	p := s.outcomes[i].Point
	hc := s.cfg.Host
	hc.Scenario, hc.Dir, hc.RunID = sc, p.Dir, ""
	hc.Logger = s.cfg.Logger.With("point", filepath.Join(dirName(p.Vars), "seed-"+strconv.FormatUint(p.Seed, 10)))
	var last atomic.Uint64
	hc.Progress = func(pr terrarium.Progress) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.prog.Ticks += uint64(pr.Tick) - last.Swap(uint64(pr.Tick))
		s.report()
	}
	o := Outcome{Point: p}
	var h *terrarium.Host
	var err error
	if resume {
		var rep *terrarium.ResumeReport
		if h, rep, err = terrarium.Resume(p.Dir, hc); err == nil {
			hc.Logger.Info("resuming a run an earlier sweep left stopped", "after_tick", rep.Tick)
			last.Store(uint64(rep.Tick))
			s.mu.Lock()
			s.prog.Ticks += uint64(rep.Tick)
			s.mu.Unlock()
		} else {
			hc.Logger.Warn("cannot resume the run an earlier sweep left; running it again", "error", err)
		}
	}
	if h == nil {
		if err = moveAside(p.Dir); err == nil {
			h, err = terrarium.New(hc)
		}
	}
	var res *terrarium.Result
	if err == nil {
		res, err = h.Run(ctx)
		_ = h.Close()
	}
	if res != nil {
		o = outcomeOf(p, res)
	} else {
		o.Status = terrarium.StatusFailed
		_ = writeFailed(p.Dir, err.Error())
	}
	if err != nil {
		o.Error = oneLine(err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outcomes[i] = o
	s.prog.Done++
	if o.Status != terrarium.StatusFinished {
		s.prog.Failed++
	}
	s.report()
}

func outcomeOf(p Point, res *terrarium.Result) Outcome {
	o := Outcome{Point: p, Status: res.Status, Error: res.Error, Ticks: uint64(res.Ticks), StateHash: res.StateHash, DurationMS: res.DurationMS}
	o.Metrics = lastMetrics(filepath.Join(p.Dir, "metrics.csv"))
	o.World = worldFigures(filepath.Join(p.Dir, "result.json"))
	return o
}

// worldFigures flattens result.json's world object (see Outcome.World).
func worldFigures(path string) map[string]string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var res struct {
		World json.RawMessage `json:"world"`
	}
	if json.Unmarshal(b, &res) != nil || len(res.World) == 0 {
		return nil
	}
	d := json.NewDecoder(strings.NewReader(string(res.World)))
	d.UseNumber()
	var w any
	if d.Decode(&w) != nil {
		return nil
	}
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if prefix != "" {
					k = prefix + "." + k
				}
				walk(k, e)
			}
		case json.Number:
			out[prefix] = x.String()
		case bool:
			out[prefix] = strconv.FormatBool(x)
		}
	}
	walk("", w)
	return out
}

// stopped reports whether dir holds a run an earlier invocation left
// without finishing it (interrupted, or killed): it can be resumed.
func stopped(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "events.jsonl"))
	return err == nil && fi.Size() > 0
}

// finished reads a point done by an earlier invocation (an interrupted
// run is not done).
func finished(p Point) (Outcome, bool) {
	if b, err := os.ReadFile(filepath.Join(p.Dir, "result.json")); err == nil {
		var res terrarium.Result
		if json.Unmarshal(b, &res) == nil && res.Status != terrarium.StatusInterrupted {
			o := outcomeOf(p, &res)
			o.Skipped = true
			return o, true
		}
	}
	if b, err := os.ReadFile(filepath.Join(p.Dir, "failed.json")); err == nil {
		var f struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &f) == nil {
			return Outcome{Point: p, Status: terrarium.StatusFailed, Error: f.Error, Skipped: true}, true
		}
	}
	return Outcome{}, false
}

// writeFailed records a point that could not run, so it is not retried.
func writeFailed(dir, msg string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, _ := json.Marshal(map[string]string{"status": terrarium.StatusFailed, "error": msg})
	return os.WriteFile(filepath.Join(dir, "failed.json"), append(b, '\n'), 0o644)
}

// moveAside renames a run directory left unfinished, so the run can start
// again in an empty one (nothing is deleted).
func moveAside(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(ents) == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	for n := 1; ; n++ {
		aside := fmt.Sprintf("%s.incomplete-%d", dir, n)
		if _, err := os.Stat(aside); errors.Is(err, os.ErrNotExist) {
			return os.Rename(dir, aside)
		}
	}
}

// lastMetrics reads the last row of a metrics.csv, by column.
func lastMetrics(path string) map[string]string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		return nil
	}
	m := map[string]string{}
	for i, name := range rows[0] {
		if name != "tick" && i < len(rows[len(rows)-1]) {
			m[name] = rows[len(rows)-1][i]
		}
	}
	return m
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// writeCSV writes sweep.csv atomically: one row per point, in order.
func writeCSV(path string, vars []Var, outs []Outcome) error {
	metricSet := map[string]bool{}
	for _, o := range outs {
		for k := range o.Metrics {
			metricSet[k] = true
		}
	}
	var metrics []string
	for k := range metricSet {
		metrics = append(metrics, k)
	}
	sort.Strings(metrics)
	figSet := map[string]bool{}
	for _, o := range outs {
		for k := range o.World {
			figSet[k] = true
		}
	}
	var figs []string
	for k := range figSet {
		figs = append(figs, k)
	}
	sort.Strings(figs)
	head := []string{}
	for _, v := range vars {
		head = append(head, v.Name)
	}
	head = append(head, "seed", "status", "ticks", "state_hash")
	head = append(head, metrics...)
	head = append(head, "duration_ms", "error", "dir")
	for _, k := range figs {
		head = append(head, WorldColumn+k)
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write(head)
	for _, o := range outs {
		var row []string
		for _, kv := range o.Vars {
			_, v, _ := strings.Cut(kv, "=")
			row = append(row, v)
		}
		status := o.Status
		if status == "" {
			status = "not_run"
		}
		row = append(row, strconv.FormatUint(o.Seed, 10), status, strconv.FormatUint(o.Ticks, 10), o.StateHash)
		for _, m := range metrics {
			row = append(row, o.Metrics[m])
		}
		row = append(row, strconv.FormatInt(o.DurationMS, 10), o.Error, o.Dir)
		for _, k := range figs {
			row = append(row, o.World[k])
		}
		_ = w.Write(row)
	}
	w.Flush()
	if err := errors.Join(w.Error(), f.Sync(), f.Close()); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
