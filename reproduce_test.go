package terrarium_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/checkpoint"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/replay"
	"github.com/terrarium-sim/terrarium/world"
)

// tournamentWithRandom is a small round-robin with the random strategy,
// seeded by a variable so one file serves every seed.
func tournamentWithRandom(rounds, every int) string {
	return fmt.Sprintf(`
variable "seed" { default = 1 }
scenario "repro" {
  seed             = var.seed
  ticks            = %d
  checkpoint_every = %d
}
world "repeated_game" {
  rounds    = %d
  self_play = true
}
agent "random" {
  runtime = "builtin"
  command = "random"
  count   = 2
}
agent "tit_for_tat" {
  runtime = "builtin"
  command = "tit_for_tat"
  count   = 2
}
agent "pavlov" {
  runtime = "builtin"
  command = "pavlov"
  count   = 2
}
`, rounds, every, rounds)
}

func runWithSeed(t *testing.T, src string, seed uint64) (*terrarium.Result, []events.Record) {
	t.Helper()
	sc := writeScenario(t, src)
	sc.Seed = seed
	res, recs, err := runScenario(t, sc)
	if err != nil {
		t.Fatalf("run with seed %d: %v", seed, err)
	}
	return res, recs
}

func worldJSON(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		World json.RawMessage `json:"world"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return string(r.World)
}

// Case 1 of the issue: the tournament with random, twice with one seed:
// identical projection, result and hash; another seed: another hash; each
// run replays to its own hashes and is certified.
func TestSameSeedSameRun(t *testing.T) {
	src := tournamentWithRandom(60, 25)
	a, ra := runWithSeed(t, src, 7)
	b, rb := runWithSeed(t, src, 7)
	c, rc := runWithSeed(t, src, 8)
	pa, err := events.Project(ra)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := events.Project(rb)
	pc, _ := events.Project(rc)
	if len(pa) != 60 {
		t.Fatalf("projection has %d ticks, want 60", len(pa))
	}
	if !reflect.DeepEqual(pa, pb) || events.Digest(pa) != events.Digest(pb) {
		t.Errorf("same seed, different projections (digests %s, %s)", events.Digest(pa), events.Digest(pb))
	}
	if a.StateHash != b.StateHash || worldJSON(t, a.Dir) != worldJSON(t, b.Dir) {
		t.Errorf("same seed, different results: %s vs %s", a.StateHash, b.StateHash)
	}
	if c.StateHash == a.StateHash || events.Digest(pc) == events.Digest(pa) {
		t.Errorf("seeds 7 and 8 gave the same run (hash %s)", a.StateHash)
	}
	for _, res := range []*terrarium.Result{a, b, c} {
		rep, err := replay.Run(res.Dir, replay.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Certified || rep.Hash != res.StateHash || rep.Ticks != 60 || rep.Checkpoints != 2 {
			t.Errorf("replay of %s: certified %v, hash %s (run %s), %d ticks, %d checkpoints checked; problems %v",
				res.Dir, rep.Certified, rep.Hash, res.StateHash, rep.Ticks, rep.Checkpoints, rep.Problems)
		}
	}
	// The projection leaves out what is not deterministic.
	if bytes.Contains([]byte(fmt.Sprint(pa)), []byte("wall_us")) {
		t.Error("the projection carries wall_us")
	}
}

// copyRun copies a run directory so that a test can damage the copy.
// killedCopy is a copy of the finished run whole cut as its host left it
// when killed right after tick at closed: no result.json, events.jsonl up
// to that tick (the checkpoints and the rest as they were).
func killedCopy(t *testing.T, whole *terrarium.Result, at world.Tick) string {
	t.Helper()
	dir := copyRun(t, whole.Dir)
	os.Chmod(filepath.Dir(dir), 0o755) // agents as their own users reach it
	os.Remove(filepath.Join(dir, "result.json"))
	lines := eventLines(t, dir)
	writeLines(t, dir, lines[:lineOf(t, lines, at)])
	return dir
}

func copyRun(t *testing.T, dir string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(dst, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func eventLines(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
}

func writeLines(t *testing.T, dir string, lines []string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "events.jsonl"), []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// lineOf returns the 1-based line of the first tick.closed of tick t.
func lineOf(t *testing.T, lines []string, tick world.Tick) int {
	t.Helper()
	for i, l := range lines {
		var r events.Record
		if json.Unmarshal([]byte(l), &r) == nil && r.Kind == world.EventTickClosed && r.Tick == tick {
			return i + 1
		}
	}
	t.Fatalf("no tick.closed for tick %d", tick)
	return 0
}

// Case 3 of the issue, replay's half: a changed line, a cut tail and a
// line cut in half are named, and the run is not certified. A log re-sealed
// after a changed action has an intact chain, and replay finds the tick
// where it diverges, with the differing state.
func TestReplayRefusesDamagedLogs(t *testing.T) {
	res, _ := runWithSeed(t, tournamentWithRandom(30, 12), 3) // a checkpoint at tick 12
	check := func(name string, damage func(lines []string) []string, want ...string) {
		t.Run(name, func(t *testing.T) {
			dir := copyRun(t, res.Dir)
			writeLines(t, dir, damage(eventLines(t, dir)))
			rep, err := replay.Run(dir, replay.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Certified {
				t.Fatal("a damaged run was certified")
			}
			text := strings.Join(rep.Problems, "\n")
			if d := rep.Divergence; d != nil {
				text += fmt.Sprintf("\ndiverges at %d: %s\n%s\n%s", d.Tick, d.What, d.DiffOf, strings.Join(d.Diff, "\n"))
			}
			for _, w := range want {
				if !strings.Contains(text, w) {
					t.Errorf("report lacks %q:\n%s", w, text)
				}
			}
		})
	}
	lines := eventLines(t, res.Dir)
	l12 := lineOf(t, lines, 12)
	check("changed line", func(ls []string) []string {
		ls[l12-1] = strings.Replace(ls[l12-1], `"C"`, `"D"`, 1)
		return ls
	}, fmt.Sprintf("events.jsonl:%d: hash mismatch", l12))
	check("cut tail", func(ls []string) []string { return ls[:len(ls)-3] }, "not run.finished", "result.json says")
	check("half a line", func(ls []string) []string {
		last := ls[len(ls)-1]
		return append(ls[:len(ls)-1], last[:len(last)/2])
	}, fmt.Sprintf("events.jsonl:%d: the last line is cut short", len(lines)))
	check("re-sealed after a changed action", func(ls []string) []string {
		return reseal(t, ls, l12, flipFirstMove)
	}, "tick 12 diverges: state hash", "the checkpoint's snapshot -> the replayed state", "matches[0].moves")
	l13 := lineOf(t, lines, 13)
	check("re-sealed, no checkpoint at that tick", func(ls []string) []string {
		return reseal(t, ls, l13, flipFirstMove)
	}, "tick 13 diverges: state hash", "after tick 12 -> after tick 13 (no checkpoint at tick 13", "matches[0].moves")
}

// flipFirstMove flips the first agent's move in match m01.
func flipFirstMove(r *events.Record) {
	d, c := string(r.Data), `"data":{"moves":{"m01":"C"`
	if strings.Contains(d, c) {
		d = strings.Replace(d, c, `"data":{"moves":{"m01":"D"`, 1)
	} else {
		d = strings.Replace(d, `"data":{"moves":{"m01":"D"`, c, 1)
	}
	r.Data = json.RawMessage(d)
}

// reseal changes line n (1-based) and re-seals the chain from there on,
// as a forger who can write the run directory could.
func reseal(t *testing.T, lines []string, n int, change func(*events.Record)) []string {
	t.Helper()
	prev := ""
	out := make([]string, len(lines))
	for i, l := range lines {
		var r events.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if i+1 == n {
			before := string(r.Data)
			change(&r)
			if string(r.Data) == before {
				t.Fatalf("line %d: the change changed nothing", n)
			}
		}
		if i+1 >= n {
			r.Prev = prev
			b, err := events.Seal(&r)
			if err != nil {
				t.Fatal(err)
			}
			l = string(b) + "\n"
		}
		prev = r.Hash
		out[i] = l
	}
	return out
}

// An orderly stop writes a checkpoint; Resume goes on from it, moves the
// events after it aside, and the final result equals an uninterrupted
// run's. Every tick is closed exactly once in events.jsonl.
func TestResumeAfterOrderlyStop(t *testing.T) {
	src := tournamentWithRandom(80, 30)
	whole, _ := runWithSeed(t, src, 5)

	sc := writeScenario(t, src)
	sc.Seed = 5
	dir := filepath.Join(openTempDir(t), "run")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	part := &notePart{}
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: testLogger(t), Dir: dir, Env: raceEnv, CheckpointParts: []checkpoint.Part{part},
		Progress: func(p terrarium.Progress) {
			part.note = fmt.Sprint("after tick ", p.Tick)
			if p.Tick == 45 {
				cancel()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Run(ctx)
	h.Close()
	if !errors.Is(err, context.Canceled) || res.Status != terrarium.StatusInterrupted {
		t.Fatalf("stopped run: %v, status %s", err, res.Status)
	}
	recs, _ := events.ReadFile(filepath.Join(dir, "events.jsonl"))
	assertNoAgentsLeft(t, recs)

	res2, rep := resume(t, dir, part)
	if rep.Tick < 45 || rep.Superseded.Count == 0 {
		t.Errorf("resumed after tick %d (want the stop checkpoint, >= 45), %d events superseded", rep.Tick, rep.Superseded.Count)
	}
	// The host's parts seam: what the part saved at the checkpoint came back.
	if want := fmt.Sprint("after tick ", rep.Tick); part.restored != want {
		t.Errorf("the extra checkpoint part restored %q, want %q", part.restored, want)
	}
	assertSameResult(t, whole, res2)
	assertTicksOnce(t, dir, 80)
}

// notePart is an extra checkpoint part: it saves a note and records what
// it is given back.
type notePart struct{ note, restored string }

func (p *notePart) Name() string { return "note" }
func (p *notePart) Save(dir string) error {
	return os.WriteFile(filepath.Join(dir, "note.txt"), []byte(p.note), 0o644)
}
func (p *notePart) Restore(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "note.txt"))
	p.restored = string(b)
	return err
}

func resume(t *testing.T, dir string, parts ...checkpoint.Part) (*terrarium.Result, *terrarium.ResumeReport) {
	t.Helper()
	h, rep, err := terrarium.Resume(dir, terrarium.Config{Logger: testLogger(t), Env: raceEnv, CheckpointParts: parts})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := h.Run(ctx)
	h.Close()
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	recs, _ := events.ReadFile(filepath.Join(dir, "events.jsonl"))
	assertNoAgentsLeft(t, recs)
	if len(kinds(recs, events.RunResumed)) == 0 {
		t.Error("no run.resumed event")
	}
	assertCheckpointsMatchLog(t, dir)
	return res, rep
}

// assertCheckpointsMatchLog checks that every checkpoint in checkpoints/
// belongs to the run's own timeline: the event it records is in
// events.jsonl with that hash, and the checkpoint.written event of its
// tick names that event (none is left over from a superseded timeline).
func assertCheckpointsMatchLog(t *testing.T, dir string) {
	t.Helper()
	recs := mustRead(t, dir)
	info, _ := terrarium.ReadRunInfo(recs)
	written := map[world.Tick]uint64{}
	for _, r := range kinds(recs, events.CheckpointWritten) {
		var d struct {
			EventSeq uint64 `json:"event_seq"`
		}
		json.Unmarshal(r.Data, &d)
		written[r.Tick] = d.EventSeq
	}
	cps, bad := checkpoint.List(filepath.Join(dir, "checkpoints"))
	if len(bad) > 0 {
		t.Errorf("damaged checkpoints in the run: %v", bad)
	}
	for _, c := range cps {
		if info.From > 0 && c.Meta.Tick == info.From {
			continue // the fork's copy of the other run's checkpoint
		}
		m := c.Meta
		if m.EventSeq == 0 || m.EventSeq > uint64(len(recs)) || recs[m.EventSeq-1].Hash != m.EventHash {
			t.Errorf("the checkpoint at tick %d records event %d (%.12s), which events.jsonl does not hold: left over from a superseded timeline", m.Tick, m.EventSeq, m.EventHash)
		}
		if seq, ok := written[m.Tick]; ok && seq != m.EventSeq && m.Reason != "rebuilt" {
			t.Errorf("checkpoint.written of tick %d names event %d, the checkpoint on disk event %d", m.Tick, seq, m.EventSeq)
		}
	}
}

// treeDigest lists every file under dir with its size and SHA-256 (and
// every directory), to tell whether anything changed.
func treeDigest(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out[rel] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = fmt.Sprintf("%d %x", len(b), sha256.Sum256(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A damaged line before every checkpoint's event: no checkpoint is
// usable, resume rebuilds one at the last intact tick, moves the later
// checkpoints aside (not deleted) and goes on; the rebuilt checkpoint
// survives pruning. A resume that fails on a bad setting changes nothing.
func TestResumeDamagedBeforeCheckpoints(t *testing.T) {
	src := tournamentWithRandom(60, 10)
	whole, _ := runWithSeed(t, src, 6)
	dir := copyRun(t, whole.Dir)
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Remove(filepath.Join(dir, "result.json"))
	lines := eventLines(t, dir)
	lines = lines[:lineOf(t, lines, 55)] // killed at tick 55
	l25 := lineOf(t, lines, 25)
	lines[l25-1] = strings.Replace(lines[l25-1], `"tick":25`, `"tick":26`, 1)
	writeLines(t, dir, lines)
	before, _ := checkpoint.List(filepath.Join(dir, "checkpoints"))
	if len(before) != 3 || before[0].Meta.Tick != 40 {
		t.Fatalf("checkpoints of the whole run: %v, want 40, 50, 60", before)
	}

	// A bad setting is refused before anything in the directory changes.
	was := treeDigest(t, dir)
	if _, _, err := terrarium.Resume(dir, terrarium.Config{AgentUsers: "bogus"}); err == nil {
		t.Fatal("resume with agent users \"bogus\" went ahead")
	}
	if now := treeDigest(t, dir); !reflect.DeepEqual(was, now) {
		t.Fatalf("a failed resume changed the run directory")
	}

	res, rep := resume(t, dir)
	if rep.Tick != 24 || !strings.Contains(strings.Join(rep.Notes, "\n"), "rebuilt one at tick 24") {
		t.Errorf("resumed after tick %d, notes %q; want a checkpoint rebuilt at tick 24", rep.Tick, rep.Notes)
	}
	for _, c := range before {
		aside, err := checkpoint.At(filepath.Join(dir, "checkpoints.superseded-1"), c.Meta.Tick)
		if err != nil || aside.Meta.EventHash != c.Meta.EventHash {
			t.Errorf("the old checkpoint at tick %d was not kept aside intact: %v", c.Meta.Tick, err)
		}
	}
	if _, err := checkpoint.At(filepath.Join(dir, "checkpoints"), 24); err != nil {
		t.Errorf("the rebuilt checkpoint is gone: %v", err)
	}
	assertSameResult(t, whole, res)
	assertTicksOnce(t, dir, 60)
}

func assertSameResult(t *testing.T, want, got *terrarium.Result) {
	t.Helper()
	if got.StateHash != want.StateHash || got.Ticks != want.Ticks || worldJSON(t, got.Dir) != worldJSON(t, want.Dir) {
		t.Errorf("resumed run: %d ticks, state %s; uninterrupted: %d ticks, state %s", got.Ticks, got.StateHash, want.Ticks, want.StateHash)
	}
	if _, err := terrarium.VerifyRun(got.Dir); err != nil {
		t.Errorf("verify the resumed run: %v", err)
	}
	rep, err := replay.Run(got.Dir, replay.Options{})
	if err != nil || !rep.Certified {
		t.Errorf("replay of the resumed run: %v %+v", err, rep)
	}
}

// assertTicksOnce checks that events.jsonl closes ticks 1..n once each.
func assertTicksOnce(t *testing.T, dir string, n int) {
	t.Helper()
	recs, err := events.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[world.Tick]int{}
	for _, r := range kinds(recs, world.EventTickClosed) {
		seen[r.Tick]++
	}
	for i := 1; i <= n; i++ {
		if seen[world.Tick(i)] != 1 {
			t.Errorf("tick %d closed %d times in events.jsonl", i, seen[world.Tick(i)])
		}
	}
	if len(seen) != n {
		t.Errorf("%d ticks closed, want %d", len(seen), n)
	}
}

// Case 3 of the issue, resume's half: a line damaged after the last good
// checkpoint; resume goes on from that checkpoint, moves the damaged rest
// aside, and says so.
func TestResumeDamagedLog(t *testing.T) {
	src := tournamentWithRandom(60, 20)
	whole, _ := runWithSeed(t, src, 9)
	// A run killed at tick 50: make it from the whole one by cutting its
	// end and damaging a line after the checkpoint at tick 40.
	dir := copyRun(t, whole.Dir)
	os.Remove(filepath.Join(dir, "result.json"))
	lines := eventLines(t, dir)
	l50 := lineOf(t, lines, 50)
	lines = lines[:l50]
	l45 := lineOf(t, lines, 45)
	lines[l45-1] = strings.Replace(lines[l45-1], `"tick":45`, `"tick":46`, 1)
	writeLines(t, dir, lines)
	os.Chmod(filepath.Dir(dir), 0o755)

	res, rep := resume(t, dir)
	if rep.Tick != 40 || !strings.Contains(rep.BadLine, fmt.Sprintf("events.jsonl:%d", l45)) {
		t.Errorf("resumed after tick %d (want 40), bad line %q (want line %d)", rep.Tick, rep.BadLine, l45)
	}
	b, err := os.ReadFile(filepath.Join(dir, rep.Superseded.File))
	if err != nil || !bytes.Contains(b, []byte(`"tick":46`)) {
		t.Errorf("the damaged line was not kept in %s: %v", rep.Superseded.File, err)
	}
	assertSameResult(t, whole, res)
	assertTicksOnce(t, dir, 60)
}

// A fork starts from another run's checkpoint with a changed scenario: it
// plays only the ticks after it, replays from its copy of the checkpoint,
// and ends elsewhere than the original.
func TestFork(t *testing.T) {
	src := tournamentWithRandom(40, 20)
	orig, _ := runWithSeed(t, src, 2)
	changed := writeScenario(t, strings.Replace(src, `command = "tit_for_tat"`, `command = "defector"`, 1))
	changed.Seed = 2
	dir := filepath.Join(openTempDir(t), "fork")
	h, err := terrarium.New(terrarium.Config{Scenario: changed, Logger: testLogger(t), Dir: dir, Env: raceEnv, Fork: &terrarium.Fork{Dir: orig.Dir, Tick: 20}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Run(context.Background())
	h.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.Ticks != 40 || res.StateHash == orig.StateHash {
		t.Errorf("fork: %d ticks, state %s (original %s)", res.Ticks, res.StateHash, orig.StateHash)
	}
	if _, err := terrarium.VerifyRun(dir); err != nil {
		t.Errorf("verify the fork: %v", err)
	}
	recs, _ := events.ReadFile(filepath.Join(dir, "events.jsonl"))
	closed := kinds(recs, world.EventTickClosed)
	if len(closed) != 20 || closed[0].Tick != 21 {
		t.Errorf("the fork closed %d ticks from %d, want 20 from 21", len(closed), closed[0].Tick)
	}
	// Ticks 1..20 are the original's: the fork's matches start with them.
	po, _ := events.Project(mustRead(t, orig.Dir))
	var o struct {
		Matches []struct{ Moves []string } `json:"matches"`
	}
	rep, err := replay.Run(dir, replay.Options{})
	if err != nil || !rep.Certified || rep.From != 20 {
		t.Fatalf("replay of the fork: %v %+v", err, rep)
	}
	at, err := replay.Run(dir, replay.Options{To: 21})
	if err != nil || json.Unmarshal(at.State, &o) != nil {
		t.Fatalf("replay --to 21: %v", err)
	}
	origAt, _ := replay.Run(orig.Dir, replay.Options{To: 20})
	var o20 struct {
		Matches []struct{ Moves []string } `json:"matches"`
	}
	json.Unmarshal(origAt.State, &o20)
	if len(po) != 40 || !strings.HasPrefix(o.Matches[0].Moves[0], o20.Matches[0].Moves[0]) || len(o.Matches[0].Moves[0]) != 21 {
		t.Errorf("the fork's history does not start with the original's first 20 rounds: %v vs %v", o.Matches[0].Moves, o20.Matches[0].Moves)
	}

	// A fork killed at tick 30 (before any checkpoint of its own): resume
	// rebuilds from the checkpoint it started from and the log.
	killed := copyRun(t, dir)
	os.Chmod(filepath.Dir(killed), 0o755)
	os.Remove(filepath.Join(killed, "result.json"))
	lines := eventLines(t, killed)
	writeLines(t, killed, lines[:lineOf(t, lines, 30)])
	res2, rep2 := resume(t, killed)
	if rep2.Tick != 30 {
		t.Errorf("the killed fork resumed after tick %d, want 30", rep2.Tick)
	}
	assertSameResult(t, res, res2)
}

func mustRead(t *testing.T, dir string) []events.Record {
	t.Helper()
	recs, err := events.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// Resume refuses a run whose host is still running, and a finished run.
func TestResumeRefusesLiveAndFinishedRuns(t *testing.T) {
	src := tournamentWithRandom(5, 0)
	done, _ := runWithSeed(t, src, 1)
	if _, _, err := terrarium.Resume(done.Dir, terrarium.Config{}); !errors.Is(err, terrarium.ErrNothingToResume) {
		t.Errorf("resume a finished run: %v", err)
	}
	// A run cut short whose recorded host is alive (a sleeping child
	// stands in for a host still at work).
	dir := copyRun(t, done.Dir)
	os.Remove(filepath.Join(dir, "result.json"))
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	lines := eventLines(t, dir)
	lines = reseal(t, lines[:lineOf(t, lines, 3)], 1, func(r *events.Record) {
		var d map[string]any
		json.Unmarshal(r.Data, &d)
		d["host_pid"] = sleeper.Process.Pid
		r.Data, _ = json.Marshal(d)
	})
	writeLines(t, dir, lines)
	if _, _, err := terrarium.Resume(dir, terrarium.Config{}); !errors.Is(err, terrarium.ErrRunning) {
		t.Errorf("resume a run whose host is alive: %v", err)
	}
}

// Without any checkpoint, resume rebuilds one from the event log (the world
// replayed to the last tick closed) and says so.
func TestResumeWithoutCheckpoint(t *testing.T) {
	whole, _ := runWithSeed(t, tournamentWithRandom(20, 0), 4)
	dir := killedCopy(t, whole, 12)
	res, rep := resume(t, dir)
	if rep.Tick != 12 || rep.Checkpoint == "" || !strings.Contains(strings.Join(rep.Notes, "\n"), "rebuilt one at tick 12 by replaying events.jsonl") {
		t.Errorf("report %+v", rep)
	}
	assertSameResult(t, whole, res)
	assertTicksOnce(t, dir, 20)
}

func TestParseFork(t *testing.T) {
	f, err := terrarium.ParseFork("runs/a@b@100")
	if err != nil || f.Dir != "runs/a@b" || f.Tick != 100 {
		t.Errorf("runs/a@b@100: %+v %v", f, err)
	}
	for _, bad := range []string{"runs/a", "runs/a@", "runs/a@0", "runs/a@x", "@5"} {
		if _, err := terrarium.ParseFork(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// checkpoint_keep: the default keeps the last 3, so a fork from an
// earlier tick is refused before its run directory exists; with
// checkpoint_keep = 0 every checkpoint stays and the fork runs. A fork
// keeps its copy of the checkpoint it started from however many it
// writes after it (replay starts there).
func TestCheckpointKeepAndEarlyFork(t *testing.T) {
	src := tournamentWithRandom(60, 10)
	dflt, _ := runWithSeed(t, src, 12)
	cps, _ := checkpoint.List(filepath.Join(dflt.Dir, "checkpoints"))
	if len(cps) != 3 || cps[0].Meta.Tick != 40 {
		t.Fatalf("default retention: %d checkpoints from tick %d, want 3 from 40", len(cps), cps[0].Meta.Tick)
	}
	sc := writeScenario(t, src)
	sc.Seed = 12
	forkDir := filepath.Join(openTempDir(t), "fork")
	_, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: testLogger(t), Dir: forkDir, Env: raceEnv, Fork: &terrarium.Fork{Dir: dflt.Dir, Tick: 10}})
	if err == nil || !strings.Contains(err.Error(), "no usable checkpoint at tick 10") || !strings.Contains(err.Error(), "checkpoint_keep") {
		t.Fatalf("fork from a pruned checkpoint: %v", err)
	}
	if _, err := os.Stat(forkDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused fork left its run directory behind: %v", err)
	}

	all, _ := runWithSeed(t, strings.Replace(src, "checkpoint_every = 10", "checkpoint_every = 10\n  checkpoint_keep = 0", 1), 12)
	cps, _ = checkpoint.List(filepath.Join(all.Dir, "checkpoints"))
	if len(cps) != 6 {
		t.Fatalf("checkpoint_keep = 0: %d checkpoints, want 6 (ticks 10 to 60)", len(cps))
	}
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: testLogger(t), Dir: forkDir, Env: raceEnv, Fork: &terrarium.Fork{Dir: all.Dir, Tick: 10}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Run(context.Background())
	h.Close()
	if err != nil || res.Ticks != 60 {
		t.Fatalf("fork from tick 10: %v, %d ticks", err, res.Ticks)
	}
	cps, _ = checkpoint.List(filepath.Join(forkDir, "checkpoints"))
	var ticks []world.Tick
	for _, c := range cps {
		ticks = append(ticks, c.Meta.Tick)
	}
	if !reflect.DeepEqual(ticks, []world.Tick{10, 40, 50, 60}) {
		t.Errorf("the fork's checkpoints: %v, want its start (10) and the last 3", ticks)
	}
	rep, err := replay.Run(forkDir, replay.Options{})
	if err != nil || !rep.Certified || rep.From != 10 || rep.Hash != res.StateHash {
		t.Errorf("replay of the fork: %v %+v", err, rep)
	}
}

// Stopped in order on a tick that just got its checkpoint_every
// checkpoint: the stop does not write a second one at that tick (nor
// report a failure); resume goes on from it.
func TestStopOnACheckpointTick(t *testing.T) {
	sc := writeScenario(t, tournamentWithRandom(40, 10))
	dir := filepath.Join(openTempDir(t), "run")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: testLogger(t), Dir: dir, Env: raceEnv,
		Progress: func(p terrarium.Progress) {
			if p.Tick == 20 {
				cancel() // before the loop writes tick 20's checkpoint
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := h.Run(ctx)
	h.Close()
	if res.Status != terrarium.StatusInterrupted {
		t.Fatalf("status %s", res.Status)
	}
	recs := mustRead(t, dir)
	if f := kinds(recs, events.CheckpointFailed); len(f) > 0 {
		t.Errorf("checkpoint.failed: %s", f[0].Data)
	}
	written := map[world.Tick]int{}
	for _, r := range kinds(recs, events.CheckpointWritten) {
		written[r.Tick]++
	}
	for tick, n := range written {
		if n != 1 {
			t.Errorf("checkpoint.written %d times for tick %d", n, tick)
		}
	}
	_, rep := resume(t, dir)
	if rep.Tick < 20 {
		t.Errorf("resumed after tick %d, want >= 20", rep.Tick)
	}
	assertTicksOnce(t, dir, 40)
}
