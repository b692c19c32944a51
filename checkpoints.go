package terrarium

import (
	"encoding/csv"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/checkpoint"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

// Fork names a checkpoint of another run to start a new run from.
type Fork struct {
	Dir  string     // the other run's directory
	Tick world.Tick // a tick it has a checkpoint at
}

// ParseFork parses RUN_DIR@TICK.
func ParseFork(s string) (*Fork, error) {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 {
		return nil, fmt.Errorf("--from %q: want RUN_DIR@TICK, like runs/axelrod-1@100", s)
	}
	t, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil || t == 0 {
		return nil, fmt.Errorf("--from %q: the tick must be a whole number >= 1, like runs/axelrod-1@100", s)
	}
	return &Fork{Dir: s[:i], Tick: world.Tick(t)}, nil
}

// resumePoint is what Resume prepared: the checkpoint to go on from (nil:
// from tick 0) and what was done to get there.
type resumePoint struct {
	ckpt   *checkpoint.Checkpoint
	report *ResumeReport
	// forkTick is, for a forked run, the tick it started after: its copy
	// of that checkpoint is never pruned (replay starts there).
	forkTick world.Tick
}

// workspacePart is the checkpoint part holding every agent's workspace.
func (r *run) workspacePart() checkpoint.Part {
	return checkpoint.DirPart{PartName: "workspace", Path: filepath.Join(r.dir, "workspace", "agents")}
}

func (r *run) parts() []checkpoint.Part {
	ps := []checkpoint.Part{r.workspacePart(), r.sharedPart()}
	if r.hasClaude() {
		ps = append(ps, llmPart{r})
	}
	return append(ps, r.h.cfg.CheckpointParts...)
}

// prepareStart sets up the checkpoint writer and, for a fork, takes the
// other run's checkpoint: a copy of it goes into this run's checkpoints/
// (replay starts there) and its parts are put back in this run's directory.
func (r *run) prepareStart() error {
	r.ckpt = &checkpoint.Writer{Root: filepath.Join(r.dir, "checkpoints"), Keep: r.h.sc.CheckpointKeep, Hook: r.h.cfg.CheckpointHook}
	if rp := r.h.cfg.resume; rp != nil {
		r.from = rp.ckpt
		if r.from != nil {
			r.ckpt.Pinned = []world.Tick{r.from.Meta.Tick}
		}
		if rp.forkTick > 0 {
			r.ckpt.Pinned = append(r.ckpt.Pinned, rp.forkTick) // replay starts from it
		}
		return nil
	}
	f := r.h.cfg.Fork
	if f == nil {
		return nil
	}
	if r.h.sc.Stepping == scenarios.SteppingRealtime {
		return fmt.Errorf("fork: %w", errRealtimeFrom)
	}
	src, err := checkpoint.At(filepath.Join(f.Dir, "checkpoints"), f.Tick)
	if err != nil {
		return fmt.Errorf("fork: %w", err)
	}
	dst := filepath.Join(r.ckpt.Root, checkpoint.DirName(f.Tick))
	if err := os.MkdirAll(r.ckpt.Root, 0o755); err != nil {
		return fmt.Errorf("fork: %w", err)
	}
	// Like every checkpoint, private to the host: it holds every agent's workspace.
	if err := os.Mkdir(dst, 0o700); err != nil {
		return fmt.Errorf("fork: %w", err)
	}
	if err := checkpoint.CopyTree(src.Dir, dst); err != nil {
		return fmt.Errorf("fork: copy checkpoint: %w", err)
	}
	c, err := checkpoint.At(r.ckpt.Root, f.Tick)
	if err != nil {
		return fmt.Errorf("fork: %w", err)
	}
	for _, p := range r.parts() {
		if _, ok := p.(sharedPart); ok && !hasPart(c, p) {
			continue // an older or rebuilt checkpoint: the shared tree starts as seeded
		}
		if _, ok := p.(llmPart); ok {
			continue // a fork's LLM counts and sessions start anew (restoreLLM)
		}
		if err := c.Restore(p); err != nil {
			return fmt.Errorf("fork: %w", err)
		}
	}
	r.from = c
	r.ckpt.Pinned = []world.Tick{f.Tick} // replay starts from it
	return nil
}

// checkFork checks, before anything is created, that a fork can start:
// the other run has a usable checkpoint at the tick, and the run is not
// realtime.
func checkFork(f *Fork, sc *scenarios.Scenario) error {
	if sc.Stepping == scenarios.SteppingRealtime {
		return fmt.Errorf("fork: %w", errRealtimeFrom)
	}
	if _, err := checkpoint.At(filepath.Join(f.Dir, "checkpoints"), f.Tick); err != nil {
		return fmt.Errorf("fork from %s@%d: %w (a run keeps its last checkpoint_keep checkpoints, %d unless its scenario says otherwise)", f.Dir, f.Tick, err, scenarios.DefaultCheckpointKeep)
	}
	return nil
}

// openEvents creates events.jsonl, or for a resumed run opens it to go on
// after the checkpoint's last event.
func (r *run) openEvents() (*events.Writer, error) {
	path := filepath.Join(r.dir, "events.jsonl")
	subject := func(kind string) string { return bus.EventSubject(r.res.Run, kind) }
	rp := r.h.cfg.resume
	if rp == nil {
		return events.Create(path, r.res.Run, subject, r.log.Named("events"))
	}
	return events.Append(path, r.res.Run, rp.report.EventSeq, rp.report.EventHash, subject, r.log.Named("events"))
}

// emitStart writes run.started (with the variables and, for a fork, where
// it came from), or run.resumed for a resumed run.
func (r *run) emitStart(data map[string]any) {
	sc := r.h.sc
	vars := map[string]string{}
	for _, v := range sc.Variables {
		if v.Set {
			vars[v.Name] = v.String()
		}
	}
	data["vars"] = vars
	data["scenario_dir"] = sc.Dir
	if rp := r.h.cfg.resume; rp != nil {
		rep := rp.report
		d := map[string]any{"from_tick": rep.Tick, "host_pid": data["host_pid"], "isolation": data["isolation"]}
		if rep.Checkpoint != "" {
			d["checkpoint"] = rep.Checkpoint
		}
		if rep.Superseded.Count > 0 {
			d["superseded"] = map[string]any{"file": rep.Superseded.File, "first_seq": rep.Superseded.FirstSeq, "last_seq": rep.Superseded.LastSeq, "count": rep.Superseded.Count}
		}
		if rep.BadLine != "" {
			d["bad_line"] = rep.BadLine
		}
		if len(rep.Notes) > 0 {
			d["notes"] = rep.Notes
		}
		r.events.Emit(events.RunResumed, rep.Tick, "", d)
		return
	}
	if r.from != nil {
		data["from"] = map[string]any{"dir": r.h.cfg.Fork.Dir, "run": r.from.Meta.Run, "tick": r.from.Meta.Tick, "state_hash": r.from.Meta.StateHash}
	}
	r.events.Emit(events.RunStarted, 0, "", data)
}

// restoreWorld puts the checkpoint's snapshot into the new world and checks
// that it hashes as it did.
func (r *run) restoreWorld() error {
	if r.from == nil {
		return nil
	}
	snap, err := r.from.World()
	if err != nil {
		return err
	}
	if err := r.w.Restore(snap); err != nil {
		return fmt.Errorf("restore the world from the checkpoint at tick %d: %w (a fork may change the scenario only where the snapshot stays valid)", r.from.Meta.Tick, err)
	}
	if h := r.w.StateHash(); h != r.from.Meta.StateHash {
		return fmt.Errorf("restore the world from the checkpoint at tick %d: state %.12s, the checkpoint says %.12s", r.from.Meta.Tick, h, r.from.Meta.StateHash)
	}
	r.res.Ticks = r.from.Meta.Tick // until the loop has closed one more
	return nil
}

// openMetrics creates metrics.csv, or for a resumed run appends to it (it
// was cut to the checkpoint's tick by Resume).
func (r *run) openMetrics(path string, names []string) (*metricsWriter, error) {
	if r.h.cfg.resume == nil {
		return createMetrics(path, names)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("open metrics: %w", err)
	}
	return &metricsWriter{f: f, w: csv.NewWriter(f), names: names, rec: make([]string, len(names)+1)}, nil
}

// loopFrom is the loop's starting state: the checkpoint's (for a fork its
// counts start again at zero).
func (r *run) loopFrom() *world.LoopState {
	if r.from == nil {
		return nil
	}
	st := r.from.Meta.Loop
	if r.h.cfg.resume == nil {
		st.Stats = nil
	}
	return &st
}

// resumeAgent tells an agent where the run goes on from and, for a resumed
// run, gives it back its supervisor state and its workspace's files.
func (r *run) resumeAgent(a *agentRun, i int, ws string, extra map[string]string) error {
	if r.from == nil {
		return nil
	}
	extra[agents.EnvResumeTick] = strconv.FormatUint(uint64(r.from.Meta.Tick), 10)
	if r.h.cfg.resume != nil {
		st := r.from.Meta.Agents[a.seat.ID]
		a.restarts, a.turns, a.failed, a.spent = st.Restarts, st.Turns, st.Failed, st.Spent
	}
	if !r.iso.on {
		return nil
	}
	// The workspace was copied back by root: give it all to the agent.
	uid := int(r.iso.uid(i))
	return filepath.WalkDir(ws, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
}

// stayDown reports whether an agent stays stopped in a resumed run (it had
// failed, or spent its turns); it then counts as ready and gone.
func (r *run) stayDown(a *agentRun) bool {
	if r.h.cfg.resume == nil || !(a.failed || a.spent) {
		return false
	}
	r.loop.Gone(a.seat.ID)
	a.readyOnce.Do(func() { close(a.ready) })
	a.settle()
	return true
}

// agentStates is the supervisor's state for a checkpoint.
func (r *run) agentStates() map[world.AgentID]checkpoint.AgentState {
	out := make(map[world.AgentID]checkpoint.AgentState, len(r.agents))
	for id, a := range r.agents {
		a.mu.Lock()
		out[id] = checkpoint.AgentState{Restarts: a.restarts, Turns: a.turns, Failed: a.failed, Spent: a.spent}
		a.mu.Unlock()
	}
	return out
}

// writeCheckpoint writes a checkpoint of the last closed tick. It runs on
// the loop's goroutine (from onTick) or after the loop returned. A failed
// checkpoint is logged and reported as an event; the run goes on.
func (r *run) writeCheckpoint(reason string) {
	if r.w == nil || r.loop == nil || r.events == nil || r.ckpt == nil {
		return
	}
	st := r.loop.State()
	if st.Tick == 0 || (r.from != nil && st.Tick == r.from.Meta.Tick) || st.Tick == r.ckpt.LastWritten() {
		return // nothing played yet, or nothing since the checkpoint it started from or last wrote
	}
	start := time.Now()
	snap, err := r.w.Snapshot()
	if err == nil {
		seq, hash := r.events.Last()
		m := checkpoint.Meta{Run: r.res.Run, Tick: st.Tick, Seed: r.h.sc.Seed, StateHash: r.w.StateHash(),
			EventSeq: seq, EventHash: hash, Reason: reason, Loop: st, Agents: r.agentStates()}
		var c *checkpoint.Checkpoint
		var size int64
		if c, size, err = r.ckpt.Write(m, snap, r.parts()); err == nil {
			rel, _ := filepath.Rel(r.dir, c.Dir)
			r.events.Emit(events.CheckpointWritten, st.Tick, "", map[string]any{
				"dir": rel, "bytes": size, "ms": time.Since(start).Milliseconds(), "reason": reason, "event_seq": seq})
			return
		}
	}
	r.log.Error("checkpoint failed; the run goes on", "tick", st.Tick, "error", err)
	r.events.Emit(events.CheckpointFailed, st.Tick, "", map[string]any{"reason": err.Error()})
}

// hasPart reports whether checkpoint c holds part p.
func hasPart(c *checkpoint.Checkpoint, p checkpoint.Part) bool {
	_, err := os.Stat(filepath.Join(c.Dir, p.Name()))
	return err == nil
}
