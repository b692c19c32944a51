package terrarium

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/terrarium-sim/terrarium/checkpoint"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

// Errors of Resume.
var (
	ErrNothingToResume = errors.New("the run finished: nothing to resume")
	ErrRunning         = errors.New("the run is still going")
)

// errRealtimeFrom: the realtime loop cannot go on from a checkpoint.
var errRealtimeFrom = errors.New("a realtime run cannot go on from a checkpoint yet (its clock and pending actions are not saved); run it again instead")

// lastHostPid is the host pid of the last run.started or run.resumed.
func lastHostPid(recs []events.Record) int {
	pid := 0
	for _, r := range recs {
		if r.Kind != events.RunStarted && r.Kind != events.RunResumed {
			continue
		}
		var d struct {
			HostPid int `json:"host_pid"`
		}
		if json.Unmarshal(r.Data, &d) == nil {
			pid = d.HostPid
		}
	}
	return pid
}

// ResumeReport says what Resume did to a run directory.
type ResumeReport struct {
	Run  string
	Tick world.Tick // the run goes on after this tick (0: from the start)
	// Checkpoint is the checkpoint directory it goes on from ("" if none
	// was usable: the run starts again from tick 0).
	Checkpoint string
	// EventSeq and EventHash are the last event kept in events.jsonl.
	EventSeq  uint64
	EventHash string
	// Superseded are the events after the checkpoint, moved aside.
	Superseded SupersededRange
	// BadLine is the first bad line of events.jsonl, if it had one.
	BadLine string
	// Notes say what else was done: checkpoints skipped and why, files
	// moved aside.
	Notes []string
}

// SupersededRange is a range of events moved out of events.jsonl.
type SupersededRange struct {
	File     string `json:"file"` // relative to the run directory
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"` // of the good lines; bad lines are moved too
	Count    int    `json:"count"`    // lines moved, bad ones included
}

// RunInfo is what run.started recorded about how the run was made.
type RunInfo struct {
	Run         string
	Seed        uint64
	Vars        map[string]string
	ScenarioDir string
	// From is set for a forked run: the tick it started after.
	From world.Tick
}

// ReadRunInfo reads the run.started record of a run's events.
func ReadRunInfo(recs []events.Record) (RunInfo, error) {
	if len(recs) == 0 || recs[0].Kind != events.RunStarted {
		return RunInfo{}, errors.New("events.jsonl does not start with run.started")
	}
	var d struct {
		Seed        uint64            `json:"seed"`
		Vars        map[string]string `json:"vars"`
		ScenarioDir string            `json:"scenario_dir"`
		From        *struct {
			Tick world.Tick `json:"tick"`
		} `json:"from"`
	}
	if err := json.Unmarshal(recs[0].Data, &d); err != nil {
		return RunInfo{}, fmt.Errorf("run.started: %w", err)
	}
	info := RunInfo{Run: recs[0].Run, Seed: d.Seed, Vars: d.Vars, ScenarioDir: d.ScenarioDir}
	if d.From != nil {
		info.From = d.From.Tick
	}
	return info, nil
}

// NewRunWorld builds a scenario's world as a run starts it: New, then the
// seed for a world that takes one (world.Seeder).
func NewRunWorld(sc *scenarios.Scenario, seed uint64) (world.World, error) {
	w, err := sc.World.Impl.New(sc.World.Config, sc.Seats())
	if err != nil {
		return nil, fmt.Errorf("world %s: %w", sc.World.Kind, err)
	}
	if s, ok := w.(world.Seeder); ok {
		if err := s.Seed(seed); err != nil {
			return nil, fmt.Errorf("world %s: seed: %w", sc.World.Kind, err)
		}
	}
	return w, nil
}

// LoadRunScenario loads a run directory's copy of its scenario as the run
// loaded it: the same variables and seed, relative commands resolved where
// they were. skipPrograms does not look programs up (replay).
func LoadRunScenario(dir string, info RunInfo, skipPrograms bool) (*scenarios.Scenario, error) {
	sc, diags := scenarios.LoadWith(filepath.Join(dir, "scenario.hcl"), scenarios.LoadOptions{Vars: info.Vars, Dir: info.ScenarioDir, SkipPrograms: skipPrograms})
	if diags.HasErrors() {
		return nil, fmt.Errorf("load the run's scenario.hcl: %w", diags)
	}
	sc.Seed = info.Seed
	return sc, nil
}

// Resume prepares a run that stopped (orderly, or killed) to go on from its
// last usable checkpoint, and returns a host that goes on when Run is
// called. cfg supplies the logger, progress and user settings; Scenario,
// Dir and RunID come from the run directory.
//
// Nothing is deleted: the events after the checkpoint (and any bad lines)
// are moved to events.superseded-N.jsonl, result.json and metrics.csv to
// *.superseded-N.*, the checkpoints after the one it goes on from to
// checkpoints.superseded-N/, the event stream's store to
// jetstream.superseded-N/, the agents' workspaces to
// workspace/agents.superseded-N; the resumed run's run.resumed event names
// the range. A checkpoint is usable when its files are intact, it has every
// part to restore, and events.jsonl holds, unchanged, every event up to the
// one it records; without one a checkpoint is rebuilt from the log, or the
// run starts again at tick 0.
//
// Everything is checked and planned before the run directory is changed:
// when Resume fails for any reason but I/O, the directory is as it was.
func Resume(dir string, cfg Config) (*Host, *ResumeReport, error) {
	fail := func(err error) (*Host, *ResumeReport, error) {
		return nil, nil, fmt.Errorf("resume %s: %w", dir, err)
	}
	if res, err := readResult(dir); err == nil && res.Status == StatusFinished {
		return fail(ErrNothingToResume)
	}
	evPath := filepath.Join(dir, "events.jsonl")
	lg, err := events.ReadLog(evPath)
	if err != nil {
		return fail(err)
	}
	info, err := ReadRunInfo(lg.Records)
	if err != nil {
		return fail(err)
	}
	if pid := lastHostPid(lg.Records); pid > 0 && pid != os.Getpid() && processAlive(pid) && lg.Records[len(lg.Records)-1].Kind != events.RunFinished {
		return fail(fmt.Errorf("%w: its host (pid %d) is still running; stop it first (Ctrl-C or kill it)", ErrRunning, pid))
	}
	sc, err := LoadRunScenario(dir, info, false)
	if err != nil {
		return fail(err)
	}
	if sc.Stepping == scenarios.SteppingRealtime {
		return fail(errRealtimeFrom)
	}
	rep := &ResumeReport{Run: info.Run}
	if lg.Bad != nil {
		rep.BadLine = lg.Bad.Error()
	}

	// Plan: where the run goes on from. Nothing is changed yet.
	ws := checkpoint.DirPart{PartName: "workspace", Path: filepath.Join(dir, "workspace", "agents")}
	need := append([]checkpoint.Part{ws}, cfg.CheckpointParts...)
	root := filepath.Join(dir, "checkpoints")
	cps, bad := checkpoint.List(root)
	for _, err := range bad {
		rep.Notes = append(rep.Notes, "skipped a damaged checkpoint: "+err.Error())
	}
	var use *checkpoint.Checkpoint
	for i := len(cps) - 1; i >= 0; i-- {
		c := cps[i]
		if c.Meta.EventSeq == 0 || c.Meta.EventSeq > uint64(len(lg.Records)) || lg.Records[c.Meta.EventSeq-1].Hash != c.Meta.EventHash {
			rep.Notes = append(rep.Notes, fmt.Sprintf("skipped the checkpoint at tick %d: events.jsonl does not hold its event %d intact", c.Meta.Tick, c.Meta.EventSeq))
			continue
		}
		if p := missingPart(c, need); p != "" {
			rep.Notes = append(rep.Notes, fmt.Sprintf("skipped the checkpoint at tick %d: it has no part %s", c.Meta.Tick, p))
			continue
		}
		use = c
		break
	}
	keep := uint64(1) // without a checkpoint: only run.started stays
	var rb *rebuilt
	if use == nil {
		if rb, err = planRebuild(sc, info, root, lg.Records); err != nil {
			return fail(err)
		}
		rep.Notes = append(rep.Notes, rb.note)
		switch {
		case rb.origin != nil:
			if p := missingPart(rb.origin, need); p != "" {
				return fail(fmt.Errorf("the checkpoint the fork started from (%s) has no part %s", rb.origin.Dir, p))
			}
			use = rb.origin
			rep.Tick, rep.Checkpoint = use.Meta.Tick, use.Dir
		case rb.meta != nil:
			rep.Tick, rep.Checkpoint, keep = rb.meta.Tick, filepath.Join(root, checkpoint.DirName(rb.meta.Tick)), rb.meta.EventSeq
		}
	} else {
		rep.Tick, rep.Checkpoint, keep = use.Meta.Tick, use.Dir, use.Meta.EventSeq
	}
	rep.EventSeq, rep.EventHash = keep, lg.Records[keep-1].Hash
	n := supersedeNumber(dir)
	cut, err := planSupersede(evPath, keep, n)
	if err != nil {
		return fail(err)
	}
	rep.Superseded = cut.rng
	mcut, err := planMetrics(dir, rep.Tick)
	if err != nil {
		return fail(err)
	}
	// Checkpoints after the one the run goes on from belong to the
	// timeline it leaves (and one at its tick that is not the one used).
	var stale []world.Tick
	for _, t := range checkpoint.Ticks(root) {
		if t > rep.Tick || (t == rep.Tick && (use == nil || filepath.Clean(use.Dir) != filepath.Join(root, checkpoint.DirName(t)))) {
			stale = append(stale, t)
		}
	}
	cfg.Scenario, cfg.Dir, cfg.RunID = sc, dir, info.Run
	rp := &resumePoint{ckpt: use, report: rep, forkTick: info.From}
	cfg.resume = rp
	cfg.Fork = nil
	h, err := New(cfg)
	if err != nil {
		return fail(err)
	}

	// Apply: from here on only I/O can fail, and what was moved aside is
	// named in the error's directory.
	if len(stale) > 0 {
		aside := fmt.Sprintf("checkpoints.superseded-%d", n)
		if err := moveCheckpoints(root, filepath.Join(dir, aside), stale); err != nil {
			return fail(err)
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("moved %d checkpoints after tick %d to %s", len(stale), rep.Tick, aside))
	}
	if rb != nil && rb.meta != nil {
		cw := &checkpoint.Writer{Root: root, Keep: sc.CheckpointKeep, Pinned: []world.Tick{info.From}}
		c, _, err := cw.Write(*rb.meta, rb.snap, need)
		if err != nil {
			return fail(err)
		}
		use, rp.ckpt, rep.Checkpoint = c, c, c.Dir
	}
	if moved, err := moveAsideNonEmpty(filepath.Join(dir, "jetstream"), filepath.Join(dir, fmt.Sprintf("jetstream.superseded-%d", n))); err != nil {
		return fail(err)
	} else if moved != "" {
		rep.Notes = append(rep.Notes, "moved the event stream's store jetstream/ to "+filepath.Base(moved)+" (the resumed run's stream starts again from events.jsonl)")
	}
	if err := cut.apply(dir, evPath); err != nil {
		return fail(err)
	}
	if err := mcut.apply(dir, n); err != nil {
		return fail(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "result.json")); err == nil {
		aside := fmt.Sprintf("result.superseded-%d.json", n)
		if err := os.Rename(filepath.Join(dir, "result.json"), filepath.Join(dir, aside)); err != nil {
			return fail(err)
		}
		rep.Notes = append(rep.Notes, "moved result.json to "+aside)
	}
	if use != nil {
		parts := need
		if _, err := os.Stat(filepath.Join(use.Dir, sharedPart{}.Name())); err == nil {
			parts = append(parts, sharedPart{versions: filepath.Join(dir, "versions")})
		}
		for _, p := range parts {
			if err := use.Restore(p); err != nil {
				return fail(err)
			}
		}
	} else if _, err := os.Stat(ws.Path); err == nil {
		aside := ws.Path + fmt.Sprintf(".superseded-%d", n)
		if err := os.Rename(ws.Path, aside); err != nil {
			return fail(err)
		}
	}
	lockAside(filepath.Join(dir, "workspace"))
	return h, rep, nil
}

// missingPart names the first of parts that checkpoint c does not hold.
func missingPart(c *checkpoint.Checkpoint, parts []checkpoint.Part) string {
	for _, p := range parts {
		if !hasPart(c, p) {
			return p.Name()
		}
	}
	return ""
}

// moveCheckpoints moves the checkpoint directories of ticks from root to
// aside (created), keeping their names.
func moveCheckpoints(root, aside string, ticks []world.Tick) error {
	if err := os.MkdirAll(aside, 0o700); err != nil {
		return err
	}
	for _, t := range ticks {
		name := checkpoint.DirName(t)
		if err := os.Rename(filepath.Join(root, name), filepath.Join(aside, name)); err != nil {
			return fmt.Errorf("move the checkpoint at tick %d aside: %w", t, err)
		}
	}
	return nil
}

// moveAsideNonEmpty renames path to aside if it is a non-empty directory,
// and returns aside ("" if nothing was moved).
func moveAsideNonEmpty(path, aside string) (string, error) {
	ents, err := os.ReadDir(path)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(ents) == 0) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if err := os.Rename(path, aside); err != nil {
		return "", err
	}
	return aside, nil
}

// lockAside gives the workspaces moved aside to root, mode 0700 (when the
// host is root): their files belong to agent UIDs that later runs may get.
func lockAside(wsDir string) {
	if os.Geteuid() != 0 {
		return
	}
	asides, _ := filepath.Glob(filepath.Join(wsDir, "agents.superseded-*"))
	for _, a := range asides {
		_ = filepath.WalkDir(a, func(p string, _ fs.DirEntry, err error) error {
			if err == nil {
				_ = os.Lchown(p, 0, 0)
			}
			return nil
		})
		_ = os.Chmod(a, 0o700)
	}
}

// rebuilt is what planRebuild found: a checkpoint to write (meta and
// snapshot), or for a fork the checkpoint it started from (origin), or
// neither (start again from tick 0); note says which.
type rebuilt struct {
	meta   *checkpoint.Meta
	snap   []byte
	origin *checkpoint.Checkpoint
	note   string
}

// planRebuild plans a checkpoint from the event log for a run that has none
// it can use: the world rebuilt by replaying the log's ticks (from the
// start, or for a fork from the checkpoint it started from), the loop's and
// the supervisor's state counted from the log; the agents' workspaces are
// taken as they are when it is written. It writes nothing.
func planRebuild(sc *scenarios.Scenario, info RunInfo, root string, recs []events.Record) (*rebuilt, error) {
	w, err := NewRunWorld(sc, info.Seed)
	if err != nil {
		return nil, err
	}
	loop := world.LoopState{Last: map[world.AgentID]json.RawMessage{}, Stats: map[world.AgentID]world.AgentStats{}}
	var origin *checkpoint.Checkpoint
	if info.From > 0 {
		if origin, err = checkpoint.At(root, info.From); err != nil {
			return nil, fmt.Errorf("a forked run goes on from its copy of the checkpoint it started from: %w", err)
		}
		snap, err := origin.World()
		if err == nil {
			err = w.Restore(snap)
		}
		if err != nil {
			return nil, fmt.Errorf("restore the checkpoint the fork started from: %w", err)
		}
		loop.Tick = info.From
		for k, v := range origin.Meta.Loop.Last {
			loop.Last[k] = v
		}
	}
	proj, _ := events.Project(recs) // up to a problem, if there is one
	why := ""
	for _, tp := range proj {
		if tp.Tick != loop.Tick+1 {
			why = fmt.Sprintf("; tick %d follows tick %d", tp.Tick, loop.Tick)
			break
		}
		if _, err := w.Step(tp.Tick, tp.WorldActions(), world.TickRNG(info.Seed, tp.Tick)); err != nil || w.StateHash() != tp.Hash {
			why = fmt.Sprintf("; tick %d does not replay to its recorded hash", tp.Tick)
			break
		}
		loop.Tick = tp.Tick
		for _, a := range tp.Actions {
			loop.Last[a.Agent] = a.Data
		}
	}
	if loop.Tick == info.From {
		if origin != nil {
			return &rebuilt{origin: origin, note: "no usable checkpoint: the fork starts again from the checkpoint it started from, at tick " + strconv.FormatUint(uint64(info.From), 10) + why}, nil
		}
		return &rebuilt{note: "no usable checkpoint and no tick to rebuild: the run starts again from tick 0" + why}, nil
	}
	// The last event kept is the tick.closed of the last rebuilt tick; count
	// what the loop and the supervisor knew up to it.
	var seq uint64
	agentsState := map[world.AgentID]checkpoint.AgentState{}
	for _, r := range recs {
		if r.Kind == world.EventTickClosed && r.Tick == loop.Tick {
			seq = r.Seq
			break
		}
	}
	for _, r := range recs[:seq] {
		st, as := loop.Stats[r.Agent], agentsState[r.Agent]
		switch r.Kind {
		case world.EventTickClosed:
			var d struct {
				Actions []events.ProjectedAction `json:"actions"`
			}
			_ = json.Unmarshal(r.Data, &d)
			for _, a := range d.Actions {
				st, as := loop.Stats[a.Agent], agentsState[a.Agent]
				if a.Filled != "" {
					st.Missing++
				} else {
					st.Actions++
					as.Turns++
				}
				loop.Stats[a.Agent], agentsState[a.Agent] = st, as
			}
			continue
		case world.EventActionLate:
			st.Late++
		case world.EventActionRejected:
			var d struct {
				Count int `json:"count"`
			}
			_ = json.Unmarshal(r.Data, &d)
			st.Rejected += max(d.Count, 1)
		case events.AgentSpawned:
			var d struct {
				Restart int `json:"restart"`
			}
			_ = json.Unmarshal(r.Data, &d)
			as.Restarts = max(as.Restarts, d.Restart)
		case events.AgentFailed:
			as.Failed = true
		case events.AgentSpent:
			as.Spent = true
		default:
			continue
		}
		loop.Stats[r.Agent], agentsState[r.Agent] = st, as
	}
	snap, err := w.Snapshot()
	if err != nil {
		return nil, err
	}
	m := &checkpoint.Meta{Run: info.Run, Tick: loop.Tick, Seed: info.Seed, StateHash: w.StateHash(),
		EventSeq: seq, EventHash: recs[seq-1].Hash, Reason: "rebuilt", Loop: loop, Agents: agentsState}
	return &rebuilt{meta: m, snap: snap, note: fmt.Sprintf("no usable checkpoint: rebuilt one at tick %d by replaying events.jsonl%s (the agents' workspaces are as the stopped run left them)", loop.Tick, why)}, nil
}

// supersedeNumber is the first N that no file or directory moved aside
// by an earlier resume has.
func supersedeNumber(dir string) int {
	for n := 1; ; n++ {
		free := true
		for _, name := range []string{"events.superseded-%d.jsonl", "metrics.superseded-%d.csv", "result.superseded-%d.json",
			"checkpoints.superseded-%d", "jetstream.superseded-%d", filepath.Join("workspace", "agents.superseded-%d")} {
			if _, err := os.Lstat(filepath.Join(dir, fmt.Sprintf(name, n))); !os.IsNotExist(err) {
				free = false
				break
			}
		}
		if free {
			return n
		}
	}
}

// eventsCut is the planned move of events.jsonl's lines after its keep-th.
type eventsCut struct {
	off  int64  // events.jsonl is cut here
	rest []byte // the lines after it, to rng.File
	rng  SupersededRange
}

// planSupersede reads where events.jsonl is cut after its keep-th line
// and what moves to events.superseded-N.jsonl.
func planSupersede(path string, keep uint64, n int) (*eventsCut, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	c := &eventsCut{}
	for i := uint64(0); i < keep; i++ {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("events.jsonl: line %d: %w", i+1, err)
		}
		c.off += int64(len(line))
	}
	if c.rest, err = io.ReadAll(br); err != nil {
		return nil, err
	}
	if len(c.rest) == 0 {
		return c, nil
	}
	lines := strings.Split(strings.TrimSuffix(string(c.rest), "\n"), "\n")
	c.rng = SupersededRange{File: fmt.Sprintf("events.superseded-%d.jsonl", n), FirstSeq: keep + 1, LastSeq: keep, Count: len(lines)}
	for _, l := range lines {
		var r struct {
			Seq uint64 `json:"seq"`
		}
		if json.Unmarshal([]byte(l), &r) == nil && r.Seq == c.rng.LastSeq+1 {
			c.rng.LastSeq = r.Seq
		}
	}
	return c, nil
}

// apply writes the superseded lines (synced) before cutting events.jsonl.
func (c *eventsCut) apply(dir, path string) error {
	if len(c.rest) == 0 {
		return nil
	}
	if err := writeSynced(filepath.Join(dir, c.rng.File), c.rest); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(c.off); err != nil {
		return fmt.Errorf("cut events.jsonl: %w", err)
	}
	return f.Sync()
}

// metricsCut is the planned cut of metrics.csv (nil: nothing to do).
type metricsCut struct {
	old, kept []byte
}

// planMetrics plans to keep metrics.csv's header and its rows up to tick t.
func planMetrics(dir string, t world.Tick) (*metricsCut, error) {
	b, err := os.ReadFile(filepath.Join(dir, "metrics.csv"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lines := strings.SplitAfter(string(b), "\n")
	var kept strings.Builder
	for i, l := range lines {
		if i == 0 {
			kept.WriteString(l)
			continue
		}
		tick, _, _ := strings.Cut(l, ",")
		v, err := strconv.ParseUint(strings.TrimSpace(tick), 10, 64)
		if err != nil || v > uint64(t) || !strings.HasSuffix(l, "\n") {
			break
		}
		kept.WriteString(l)
	}
	if kept.Len() == len(b) {
		return nil, nil
	}
	return &metricsCut{old: b, kept: []byte(kept.String())}, nil
}

// apply keeps the whole old file as metrics.superseded-N.csv and cuts it.
func (c *metricsCut) apply(dir string, n int) error {
	if c == nil {
		return nil
	}
	if err := writeSynced(filepath.Join(dir, fmt.Sprintf("metrics.superseded-%d.csv", n)), c.old); err != nil {
		return err
	}
	return writeSynced(filepath.Join(dir, "metrics.csv"), c.kept)
}

// writeSynced writes a file through a temporary file, synced and renamed.
func writeSynced(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
