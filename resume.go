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
// *.superseded-N.*, the agents' workspaces to workspace/agents.superseded-N;
// the resumed run's run.resumed event names the range. A checkpoint is
// usable when its files are intact and events.jsonl holds, unchanged, every
// event up to the one it records; without one the run starts again at
// tick 0.
func Resume(dir string, cfg Config) (*Host, *ResumeReport, error) {
	if res, err := readResult(dir); err == nil && res.Status == StatusFinished {
		return nil, nil, fmt.Errorf("resume %s: %w", dir, ErrNothingToResume)
	}
	evPath := filepath.Join(dir, "events.jsonl")
	lg, err := events.ReadLog(evPath)
	if err != nil {
		return nil, nil, fmt.Errorf("resume %s: %w", dir, err)
	}
	info, err := ReadRunInfo(lg.Records)
	if err != nil {
		return nil, nil, fmt.Errorf("resume %s: %w", dir, err)
	}
	if pid := lastHostPid(lg.Records); pid > 0 && pid != os.Getpid() && processAlive(pid) && lg.Records[len(lg.Records)-1].Kind != events.RunFinished {
		return nil, nil, fmt.Errorf("resume %s: %w: its host (pid %d) is still running; stop it first (Ctrl-C or kill it)", dir, ErrRunning, pid)
	}
	sc, err := LoadRunScenario(dir, info, false)
	if err != nil {
		return nil, nil, fmt.Errorf("resume %s: %w", dir, err)
	}
	if sc.Stepping == scenarios.SteppingRealtime {
		return nil, nil, fmt.Errorf("resume %s: %w", dir, errRealtimeFrom)
	}
	rep := &ResumeReport{Run: info.Run}
	if lg.Bad != nil {
		rep.BadLine = lg.Bad.Error()
	}
	cps, bad := checkpoint.List(filepath.Join(dir, "checkpoints"))
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
		use = c
		break
	}
	keep := uint64(1) // without a checkpoint: only run.started stays
	if use == nil {
		c, seq, note, err := rebuild(dir, sc, info, lg.Records, cfg.CheckpointParts)
		if err != nil {
			return nil, nil, fmt.Errorf("resume %s: %w", dir, err)
		}
		rep.Notes = append(rep.Notes, note)
		if c != nil {
			rep.Tick, rep.Checkpoint, keep = c.Meta.Tick, c.Dir, seq
			use = c
		}
	} else {
		rep.Tick, rep.Checkpoint, keep = use.Meta.Tick, use.Dir, use.Meta.EventSeq
	}
	rep.EventSeq, rep.EventHash = keep, lg.Records[keep-1].Hash
	n := supersedeNumber(dir)
	if rep.Superseded, err = supersedeEvents(dir, evPath, keep, n); err != nil {
		return nil, nil, fmt.Errorf("resume %s: %w", dir, err)
	}
	if err := cutMetrics(dir, rep.Tick, n); err != nil {
		return nil, nil, fmt.Errorf("resume %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "result.json")); err == nil {
		aside := fmt.Sprintf("result.superseded-%d.json", n)
		if err := os.Rename(filepath.Join(dir, "result.json"), filepath.Join(dir, aside)); err != nil {
			return nil, nil, fmt.Errorf("resume %s: %w", dir, err)
		}
		rep.Notes = append(rep.Notes, "moved result.json to "+aside)
	}
	cfg.Scenario, cfg.Dir, cfg.RunID = sc, dir, info.Run
	cfg.resume = &resumePoint{ckpt: use, report: rep}
	cfg.Fork = nil
	ws := checkpoint.DirPart{PartName: "workspace", Path: filepath.Join(dir, "workspace", "agents")}
	parts := append([]checkpoint.Part{ws}, cfg.CheckpointParts...)
	if use != nil {
		if _, err := os.Stat(filepath.Join(use.Dir, sharedPart{}.Name())); err == nil {
			parts = append(parts, sharedPart{versions: filepath.Join(dir, "versions")})
		}
		for _, p := range parts {
			if err := use.Restore(p); err != nil {
				return nil, nil, fmt.Errorf("resume %s: %w", dir, err)
			}
		}
	} else if _, err := os.Stat(ws.Path); err == nil {
		aside := ws.Path + fmt.Sprintf(".superseded-%d", n)
		if err := os.Rename(ws.Path, aside); err != nil {
			return nil, nil, fmt.Errorf("resume %s: %w", dir, err)
		}
	}
	lockAside(filepath.Join(dir, "workspace"))
	h, err := New(cfg)
	if err != nil {
		return nil, nil, err
	}
	return h, rep, nil
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

// rebuild makes a checkpoint from the event log when a run has none it
// can use: the world rebuilt by replaying the log's ticks (from the start,
// or for a fork from the checkpoint it started from), the loop's and the
// supervisor's state counted from the log, and the agents' workspaces as
// they are. It returns the checkpoint (nil: start again from tick 0), the
// sequence number of the last event it covers, and what it did.
func rebuild(dir string, sc *scenarios.Scenario, info RunInfo, recs []events.Record, parts []checkpoint.Part) (*checkpoint.Checkpoint, uint64, string, error) {
	w, err := NewRunWorld(sc, info.Seed)
	if err != nil {
		return nil, 0, "", err
	}
	root := filepath.Join(dir, "checkpoints")
	loop := world.LoopState{Last: map[world.AgentID]json.RawMessage{}, Stats: map[world.AgentID]world.AgentStats{}}
	var origin *checkpoint.Checkpoint
	if info.From > 0 {
		if origin, err = checkpoint.At(root, info.From); err != nil {
			return nil, 0, "", fmt.Errorf("a forked run goes on from its copy of the checkpoint it started from: %w", err)
		}
		snap, err := origin.World()
		if err == nil {
			err = w.Restore(snap)
		}
		if err != nil {
			return nil, 0, "", fmt.Errorf("restore the checkpoint the fork started from: %w", err)
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
			return origin, 1, "no usable checkpoint: the fork starts again from the checkpoint it started from, at tick " + strconv.FormatUint(uint64(info.From), 10) + why, nil
		}
		return nil, 1, "no usable checkpoint and no tick to rebuild: the run starts again from tick 0" + why, nil
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
		return nil, 0, "", err
	}
	ws := checkpoint.DirPart{PartName: "workspace", Path: filepath.Join(dir, "workspace", "agents")}
	cw := &checkpoint.Writer{Root: root}
	c, _, err := cw.Write(checkpoint.Meta{Run: info.Run, Tick: loop.Tick, Seed: info.Seed, StateHash: w.StateHash(),
		EventSeq: seq, EventHash: recs[seq-1].Hash, Reason: "rebuilt", Loop: loop, Agents: agentsState},
		snap, append([]checkpoint.Part{ws}, parts...))
	if err != nil {
		return nil, 0, "", err
	}
	return c, seq, fmt.Sprintf("no usable checkpoint: rebuilt one at tick %d by replaying events.jsonl%s (the agents' workspaces are as the stopped run left them)", loop.Tick, why), nil
}

// supersedeNumber is the first N no events.superseded-N.jsonl has.
func supersedeNumber(dir string) int {
	for n := 1; ; n++ {
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("events.superseded-%d.jsonl", n))); os.IsNotExist(err) {
			return n
		}
	}
}

// supersedeEvents moves every line of events.jsonl after its keep-th to
// events.superseded-N.jsonl (synced before events.jsonl is cut).
func supersedeEvents(dir, path string, keep uint64, n int) (SupersededRange, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return SupersededRange{}, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var off int64
	for i := uint64(0); i < keep; i++ {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return SupersededRange{}, fmt.Errorf("events.jsonl: line %d: %w", i+1, err)
		}
		off += int64(len(line))
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		return SupersededRange{}, err
	}
	if len(rest) == 0 {
		return SupersededRange{}, nil
	}
	name := fmt.Sprintf("events.superseded-%d.jsonl", n)
	if err := writeSynced(filepath.Join(dir, name), rest); err != nil {
		return SupersededRange{}, err
	}
	if err := f.Truncate(off); err != nil {
		return SupersededRange{}, fmt.Errorf("cut events.jsonl: %w", err)
	}
	if err := f.Sync(); err != nil {
		return SupersededRange{}, err
	}
	lines := strings.Split(strings.TrimSuffix(string(rest), "\n"), "\n")
	sr := SupersededRange{File: name, FirstSeq: keep + 1, Count: len(lines)}
	sr.LastSeq = keep
	for _, l := range lines {
		var r struct {
			Seq uint64 `json:"seq"`
		}
		if json.Unmarshal([]byte(l), &r) == nil && r.Seq == sr.LastSeq+1 {
			sr.LastSeq = r.Seq
		}
	}
	return sr, nil
}

// cutMetrics keeps metrics.csv's header and its rows up to tick t; the
// whole old file is kept as metrics.superseded-N.csv.
func cutMetrics(dir string, t world.Tick, n int) error {
	path := filepath.Join(dir, "metrics.csv")
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
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
		return nil
	}
	if err := writeSynced(filepath.Join(dir, fmt.Sprintf("metrics.superseded-%d.csv", n)), b); err != nil {
		return err
	}
	return writeSynced(path, []byte(kept.String()))
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
