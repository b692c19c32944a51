package terrarium_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/checkpoint"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/replay"
	"github.com/terrarium-sim/terrarium/world"
	"github.com/terrarium-sim/terrarium/world/game"
)

// benchRun runs src to its end once, for the benchmarks below.
func benchRun(b *testing.B, src string) *terrarium.Result {
	b.Helper()
	sc := writeScenario(b, src)
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: benchLogger(b), Dir: filepath.Join(openTempDir(b), "run"), Env: raceEnv})
	if err != nil {
		b.Fatal(err)
	}
	res, err := h.Run(context.Background())
	h.Close()
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// Replay against the original run: the tournament with random, 6 agents,
// 300 ticks. ticks/s-run is the run's median tick; ticks/s-replay the whole
// replay, loading and every check included.
func BenchmarkReplay(b *testing.B) {
	res := benchRun(b, tournamentWithRandom(300, 100))
	b.ResetTimer()
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		rep, err := replay.Run(res.Dir, replay.Options{})
		if err != nil || !rep.Certified {
			b.Fatalf("replay: %v %v", err, rep.Problems)
		}
		elapsed += rep.Elapsed
	}
	b.ReportMetric(float64(res.Ticks)*float64(b.N)/elapsed.Seconds(), "ticks/s-replay")
	b.ReportMetric(1e6/float64(max(res.TickTime.MedianUS, 1)), "ticks/s-run")
}

// Checkpoints of a real run with 100 agents (the echo world: the world's
// snapshot is tiny, so this is the host's cost: 100 workspaces, the meta,
// the fsyncs), as the checkpoint.written events report them.
func BenchmarkCheckpointHost100(b *testing.B) {
	var ms, bytes []float64
	for i := 0; i < b.N; i++ {
		var src strings.Builder
		fmt.Fprintf(&src, "scenario \"ck\" {\n  ticks = 40\n  checkpoint_every = 10\n}\nworld %q { rounds = 40 }\n", benchEchoKind)
		fmt.Fprintf(&src, "agent \"a\" {\n  runtime = \"builtin\"\n  command = \"cooperator\"\n  count = 100\n}\n")
		res := benchRun(b, src.String())
		recs, err := events.ReadFile(filepath.Join(res.Dir, "events.jsonl"))
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range kinds(recs, events.CheckpointWritten) {
			var d struct{ Ms, Bytes float64 }
			_ = json.Unmarshal(r.Data, &d)
			ms, bytes = append(ms, d.Ms), append(bytes, d.Bytes)
		}
	}
	if len(ms) == 0 {
		b.Fatal("no checkpoint written")
	}
	b.ReportMetric(median(ms), "ms/checkpoint")
	b.ReportMetric(median(bytes), "bytes/checkpoint")
}

// The checkpoint write alone, with 100 agents in a round-robin
// repeated_game after 100 rounds (4,950 matches) and a 16 KiB file in each
// of their 100 workspaces.
func BenchmarkCheckpointWrite100(b *testing.B) {
	var seats []world.Seat
	for i := range 100 {
		seats = append(seats, world.Seat{ID: world.AgentID(fmt.Sprintf("a%03d", i)), Group: fmt.Sprintf("g%03d", i), Index: 1})
	}
	c := game.NewConfig()
	c.Rounds = 200
	w, err := game.New(*c, seats)
	if err != nil {
		b.Fatal(err)
	}
	for t := world.Tick(1); t <= 100; t++ {
		var acts []world.Action
		for _, s := range seats {
			acts = append(acts, world.Action{Agent: s.ID, Tick: t, Data: w.DefaultAction(s.ID, t)})
		}
		if _, err := w.Step(t, acts, nil); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	ws := filepath.Join(dir, "agents")
	for _, s := range seats {
		os.MkdirAll(filepath.Join(ws, string(s.ID)), 0o755)
		os.WriteFile(filepath.Join(ws, string(s.ID), "notes.md"), []byte(strings.Repeat("x", 16<<10)), 0o644)
	}
	cw := &checkpoint.Writer{Root: filepath.Join(dir, "checkpoints")}
	parts := []checkpoint.Part{checkpoint.DirPart{PartName: "workspace", Path: ws}}
	var size int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		snap, err := w.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		_, n, err := cw.Write(checkpoint.Meta{Run: "bench", Tick: world.Tick(i + 1), StateHash: w.StateHash()}, snap, parts)
		if err != nil {
			b.Fatal(err)
		}
		size = n
	}
	b.ReportMetric(float64(size), "bytes/checkpoint")
}

// Resume: from calling terrarium.Resume on a stopped run (6 agents, stopped
// at tick 100 of 300) to the first tick after the checkpoint closing.
func BenchmarkResume(b *testing.B) {
	src := tournamentWithRandom(300, 50)
	sc := writeScenario(b, src)
	stopped := filepath.Join(openTempDir(b), "stopped")
	ctx, cancel := context.WithCancel(context.Background())
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: benchLogger(b), Dir: stopped, Env: raceEnv,
		Progress: func(p terrarium.Progress) {
			if p.Tick == 100 {
				cancel()
			}
		}})
	if err != nil {
		b.Fatal(err)
	}
	h.Run(ctx)
	h.Close()
	var took []float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := filepath.Join(openTempDir(b), "run")
		if err := os.CopyFS(dir, os.DirFS(stopped)); err != nil {
			b.Fatal(err)
		}
		os.Chmod(dir, 0o755)
		b.StartTimer()
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		var first time.Duration
		h, _, err := terrarium.Resume(dir, terrarium.Config{Logger: benchLogger(b), Env: raceEnv, Progress: func(p terrarium.Progress) {
			if first == 0 {
				first = time.Since(start)
				cancel()
			}
		}})
		if err != nil {
			b.Fatal(err)
		}
		h.Run(ctx)
		h.Close()
		cancel()
		took = append(took, float64(first.Milliseconds()))
	}
	b.ReportMetric(median(took), "ms-to-first-tick")
}
