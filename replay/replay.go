package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/checkpoint"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/world"
)

// ErrNoSuchTick is returned when Options.To is beyond the recorded ticks.
var ErrNoSuchTick = errors.New("the run did not reach that tick")

// ErrProgramWorld is returned for a run whose world the program that ran
// it supplied (terrarium.Config.World) when Options.World does not supply
// it again: its scenario names no world kind to build.
var ErrProgramWorld = errors.New("the run's world was supplied by the program that ran it (terrarium.Config.World), not built from its scenario: replay it from that program, with replay.Options.World")

// Options changes what Run does.
type Options struct {
	// To stops the replay after this tick and returns the world's snapshot
	// there (Report.State). 0: replay every tick.
	To world.Tick
	// World, if set, makes the world to replay into, instead of the world
	// kind the run's scenario names: a game that ran with its own world
	// (terrarium.Config.World) replays its runs by making that world again,
	// as it made it for the run (the same settings and seats), before any
	// tick. Each call must return a new world; Run seeds it with the run's
	// seed if it is a world.Seeder, as the host did.
	World func() world.World
}

// Divergence is the first tick where the replay differs from the record.
type Divergence struct {
	Tick     world.Tick
	What     string // what differs: "state hash", "world events", "step", "checkpoint"
	Expected string
	Got      string
	// Diff lists the differing snapshot fields, "path: a -> b"; DiffOf
	// says which two states they are.
	Diff   []string
	DiffOf string
}

// Report is what a replay found.
type Report struct {
	Run   string
	From  world.Tick // the replay started after this tick (a fork's start)
	Ticks world.Tick // the last tick replayed
	Hash  string     // the replayed state hash after Ticks
	// Certified: the run reproduces exactly (see the package doc).
	Certified bool
	// Problems say why it is not certified (empty when it is).
	Problems    []string
	Divergence  *Divergence
	Checkpoints int    // checkpoints whose state hash was checked
	State       []byte // with Options.To: the snapshot after that tick
	Elapsed     time.Duration
}

// result is what replay reads of result.json.
type result struct {
	Status    string     `json:"status"`
	Ticks     world.Tick `json:"ticks"`
	StateHash string     `json:"state_hash"`
	Events    struct {
		Count    uint64 `json:"count"`
		LastHash string `json:"last_hash"`
	} `json:"events"`
}

// Run replays the run in dir. The error is for a run that cannot be
// replayed at all (no events, no scenario, a world that cannot be built);
// everything else is in the report.
func Run(dir string, o Options) (*Report, error) {
	start := time.Now()
	lg, err := events.ReadLog(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", dir, err)
	}
	rep := &Report{}
	if lg.Bad != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%s (the log was changed or cut here: the run cannot be certified; the ticks before it were replayed)", lg.Bad))
	}
	open := func() (terrarium.RunInfo, world.World, error) { return openWorld(dir, lg.Records, o.World) }
	info, w, err := open()
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", dir, err)
	}
	rep.Run, rep.From = info.Run, info.From
	ckRoot := filepath.Join(dir, "checkpoints")
	cps, bad := checkpoint.List(ckRoot)
	for _, err := range bad {
		rep.Problems = append(rep.Problems, "a damaged checkpoint: "+err.Error())
	}
	byTick := map[world.Tick]*checkpoint.Checkpoint{}
	for _, c := range cps {
		byTick[c.Meta.Tick] = c
	}
	proj, err := events.Project(lg.Records)
	if err != nil {
		rep.Problems = append(rep.Problems, err.Error())
	}
	rep.Ticks, rep.Hash = rep.From, w.StateHash()
	for _, tp := range proj {
		if tp.Tick != rep.Ticks+1 {
			rep.Problems = append(rep.Problems, fmt.Sprintf("tick %d follows tick %d", tp.Tick, rep.Ticks))
			break
		}
		if d := step(w, info.Seed, tp); d != nil {
			rep.Divergence = d
			break
		}
		rep.Ticks, rep.Hash = tp.Tick, w.StateHash()
		if c := byTick[tp.Tick]; c != nil && tp.Tick != rep.From {
			rep.Checkpoints++
			if c.Meta.StateHash != rep.Hash {
				d := &Divergence{Tick: tp.Tick, What: "checkpoint", Expected: c.Meta.StateHash, Got: rep.Hash}
				if snap, err := c.World(); err == nil {
					if got, err := w.Snapshot(); err == nil {
						d.Diff, d.DiffOf = diffJSON(snap, got), "the checkpoint's snapshot -> the replayed state"
					}
				}
				rep.Divergence = d
				break
			}
		}
		if o.To > 0 && tp.Tick == o.To {
			if rep.State, err = w.Snapshot(); err != nil {
				return nil, fmt.Errorf("replay %s: snapshot at tick %d: %w", dir, o.To, err)
			}
			break
		}
	}
	if rep.Divergence != nil {
		d := rep.Divergence
		rep.Problems = append(rep.Problems, fmt.Sprintf("tick %d diverges: %s %s recorded, %s replayed", d.Tick, d.What, short(d.Expected), short(d.Got)))
		if c := byTick[d.Tick]; d.Diff == nil && c != nil && d.What == "state hash" {
			// The world stepped to the diverging state: compare it with
			// what the run saved at that tick.
			if snap, err := c.World(); err == nil {
				if got, err := w.Snapshot(); err == nil {
					d.Diff, d.DiffOf = diffJSON(snap, got), "the checkpoint's snapshot -> the replayed state"
				}
			}
		}
		if d.Diff == nil {
			d.Diff, d.DiffOf = diffTick(open, proj, d.Tick)
		}
	}
	rep.Elapsed = time.Since(start)
	if o.To > 0 {
		if rep.State == nil && rep.Divergence == nil {
			return rep, fmt.Errorf("replay %s to tick %d: %w (it has ticks %d to %d)", dir, o.To, ErrNoSuchTick, rep.From+1, rep.Ticks)
		}
		return rep, nil // a partial replay certifies nothing
	}
	rep.Problems = append(rep.Problems, checkEnd(dir, lg, rep)...)
	rep.Certified = len(rep.Problems) == 0
	return rep, nil
}

// openWorld builds the run's world as it stood before its first recorded
// tick: new and seeded, or, for a fork, restored from its checkpoint. The
// world is newWorld's when it is set, else the kind the scenario names.
func openWorld(dir string, recs []events.Record, newWorld func() world.World) (terrarium.RunInfo, world.World, error) {
	info, err := terrarium.ReadRunInfo(recs)
	if err != nil {
		return info, nil, err
	}
	var w world.World
	if newWorld != nil {
		if w = newWorld(); w == nil {
			return info, nil, errors.New("Options.World returned no world")
		}
		if s, ok := w.(world.Seeder); ok {
			if err := s.Seed(info.Seed); err != nil {
				return info, nil, fmt.Errorf("seed the world: %w", err)
			}
		}
	} else {
		if programWorld(recs) {
			return info, nil, ErrProgramWorld
		}
		sc, err := terrarium.LoadRunScenario(dir, info, true)
		if err != nil {
			return info, nil, err
		}
		if w, err = terrarium.NewRunWorld(sc, info.Seed); err != nil {
			return info, nil, err
		}
	}
	if info.From > 0 {
		c, err := checkpoint.At(filepath.Join(dir, "checkpoints"), info.From)
		if err != nil {
			return info, nil, fmt.Errorf("a forked run starts from its copy of the checkpoint: %w", err)
		}
		snap, err := c.World()
		if err == nil {
			err = w.Restore(snap)
		}
		if err != nil {
			return info, nil, fmt.Errorf("restore the checkpoint at tick %d: %w", info.From, err)
		}
	}
	return info, w, nil
}

// step applies one recorded tick, each action tagged with the tick it
// answered as the loop tagged it, and compares it with the record.
func step(w world.World, seed uint64, tp events.TickProjection) *Divergence {
	res, err := w.Step(tp.Tick, tp.WorldActions(), world.TickRNG(seed, tp.Tick))
	if err != nil {
		return &Divergence{Tick: tp.Tick, What: "step", Expected: "the recorded actions apply", Got: err.Error()}
	}
	if got := w.StateHash(); got != tp.Hash {
		return &Divergence{Tick: tp.Tick, What: "state hash", Expected: tp.Hash, Got: got}
	}
	want, got := eventsText(tp.Events), replayedEvents(res.Events)
	if want != got {
		return &Divergence{Tick: tp.Tick, What: "world events", Expected: want, Got: got}
	}
	return nil
}

func eventsText(es []events.ProjectedEvent) string {
	var b strings.Builder
	for _, e := range es {
		var c bytes.Buffer
		_ = json.Compact(&c, e.Data)
		fmt.Fprintf(&b, "%s %s %s\n", e.Kind, e.Agent, c.String())
	}
	return b.String()
}

func replayedEvents(es []world.Event) string {
	var b strings.Builder
	for _, e := range es {
		kind := e.Kind
		if !strings.Contains(kind, ".") {
			kind = "world." + kind
		}
		data := ""
		if len(e.Fields) > 0 {
			d, _ := json.Marshal(e.Fields)
			data = string(d)
		}
		fmt.Fprintf(&b, "%s %s %s\n", kind, e.Agent, data)
	}
	return b.String()
}

// diffTick replays again to the tick before t and diffs the state there
// with the replayed state at t: what the recorded actions of tick t did.
func diffTick(open func() (terrarium.RunInfo, world.World, error), proj []events.TickProjection, t world.Tick) ([]string, string) {
	info, w, err := open()
	if err != nil {
		return nil, ""
	}
	for _, tp := range proj {
		var before []byte
		if tp.Tick == t {
			before, _ = w.Snapshot()
		}
		if _, err := w.Step(tp.Tick, tp.WorldActions(), world.TickRNG(info.Seed, tp.Tick)); err != nil {
			return nil, ""
		}
		if tp.Tick == t {
			after, _ := w.Snapshot()
			return diffJSON(before, after), fmt.Sprintf("the replayed state after tick %d -> after tick %d (no checkpoint at tick %d to compare with)", t-1, t, t)
		}
	}
	return nil, ""
}

// programWorld says whether the program that ran the run supplied its
// world (run.started's embedded_world; before that field, a run with no
// world kind).
func programWorld(recs []events.Record) bool {
	var d struct {
		World         string `json:"world"`
		EmbeddedWorld bool   `json:"embedded_world"`
	}
	if len(recs) == 0 || json.Unmarshal(recs[0].Data, &d) != nil {
		return false
	}
	return d.EmbeddedWorld || d.World == ""
}

// checkEnd compares the end of the log with result.json and the replay.
func checkEnd(dir string, lg *events.Log, rep *Report) []string {
	var problems []string
	recs := lg.Records
	if lg.Bad == nil && (len(recs) == 0 || recs[len(recs)-1].Kind != events.RunFinished) {
		last := "nothing"
		if len(recs) > 0 {
			last = fmt.Sprintf("%s (line %d)", recs[len(recs)-1].Kind, len(recs))
		}
		problems = append(problems, fmt.Sprintf("events.jsonl ends with %s, not run.finished: the log is cut short, or the run has not ended (terrarium resume goes on with a stopped run)", last))
	}
	b, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		return append(problems, "no result.json: the run has not ended")
	}
	var res result
	if err := json.Unmarshal(b, &res); err != nil {
		return append(problems, "result.json: "+err.Error())
	}
	if lg.Bad == nil && len(recs) > 0 {
		last := recs[len(recs)-1]
		if last.Seq != res.Events.Count || last.Hash != res.Events.LastHash {
			problems = append(problems, fmt.Sprintf("events.jsonl ends at event %d (hash %s); result.json says %d (hash %s): lines are missing or were re-sealed", last.Seq, short(last.Hash), res.Events.Count, short(res.Events.LastHash)))
		}
	}
	if rep.Divergence == nil && lg.Bad == nil {
		if res.Ticks != rep.Ticks {
			problems = append(problems, fmt.Sprintf("result.json says %d ticks, the log has %d", res.Ticks, rep.Ticks))
		}
		if res.StateHash != rep.Hash {
			problems = append(problems, fmt.Sprintf("result.json's state hash %s, the replay's %s", short(res.StateHash), short(rep.Hash)))
		}
	}
	return problems
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

// diffJSON lists the leaves of two JSON documents that differ, at most 20.
func diffJSON(a, b []byte) []string {
	fa, fb := map[string]string{}, map[string]string{}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return []string{"(the snapshots are not JSON: they differ)"}
	}
	flatten("", va, fa)
	flatten("", vb, fb)
	keys := map[string]bool{}
	for k := range fa {
		keys[k] = true
	}
	for k := range fb {
		keys[k] = true
	}
	var ks []string
	for k := range keys {
		if fa[k] != fb[k] {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	var out []string
	for i, k := range ks {
		if i == 20 {
			out = append(out, fmt.Sprintf("... and %d more", len(ks)-20))
			break
		}
		out = append(out, fmt.Sprintf("%s: %s -> %s", k, orNone(fa, k), orNone(fb, k)))
	}
	return out
}

func orNone(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return "(none)"
}

func flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			flatten(prefix+"."+k, e, out)
		}
	case []any:
		for i, e := range x {
			flatten(fmt.Sprintf("%s[%d]", prefix, i), e, out)
		}
	default:
		b, _ := json.Marshal(x)
		s := string(b)
		if len(s) > 80 {
			s = s[:38] + "…" + s[len(s)-38:]
		}
		out[strings.TrimPrefix(prefix, ".")] = s
	}
}
