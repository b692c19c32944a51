package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/terrarium-sim/terrarium/checkpoint"
	"github.com/terrarium-sim/terrarium/events"
)

// The shared notebook, shortened: 30 ticks, a checkpoint every 10.
const notebookScenario = `
scenario "notebook-kill9" {
  seed             = 7
  ticks            = 30
  action_deadline  = "20s"
  checkpoint_every = 10
}
world "turns" { rounds = 30 }
workspace {
  enforcement = "auto"
  seed        = "shared-notebook"
  lease_ttl   = "5s"
  lock_delay  = "200ms"
}
agent "writer" {
  runtime = "builtin"
  command = "notebook_writer"
  count   = 4
}
agent "rogue" {
  runtime = "builtin"
  command = "notebook_rogue"
}
`

var tickLine = regexp.MustCompile(`^- tick (\d+):`)

// upTo keeps the lines of content that are not a "- tick N:" line with N > t.
func upTo(content string, t uint64) []string {
	var out []string
	for _, l := range strings.SplitAfter(content, "\n") {
		if m := tickLine.FindStringSubmatch(l); m != nil {
			if n, _ := strconv.ParseUint(m[1], 10, 64); n > t {
				continue
			}
		}
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func sortedLines(s string) []string {
	ls := upTo(s, ^uint64(0))
	slices.Sort(ls)
	return ls
}

func maxGranted(t *testing.T, recs []events.Record) (lo, hi uint64) {
	t.Helper()
	for _, r := range recs {
		if r.Kind != "lease.granted" {
			continue
		}
		var d struct{ Token uint64 }
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		if lo == 0 || d.Token < lo {
			lo = d.Token
		}
		hi = max(hi, d.Token)
	}
	return lo, hi
}

// A shared-notebook run killed with kill -9 between checkpoints and
// resumed: the shared tree goes back to the checkpoint's versions (what
// the killed run appended after it is gone), the final shared files and
// state hash equal an uninterrupted run's, and every fencing token after
// the resume is greater than any before. The writers' lines within a tick
// race for the lease, so ideas.md is compared as a set of lines;
// notebook.md (one writer per tick, the rogue's writes undone) exactly.
func TestKillNineSharedNotebookResume(t *testing.T) {
	base := openDir(t)
	if err := checkpoint.CopyTree(filepath.Join("..", "..", "scenarios", "shared-notebook"), mkdir(t, filepath.Join(base, "shared-notebook"))); err != nil {
		t.Fatal(err)
	}
	scenario := filepath.Join(base, "notebook.hcl")
	if err := os.WriteFile(scenario, []byte(notebookScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(base, "reference")
	runOK(t, "run", "--quiet", "--out", ref, scenario)
	want := readFinal(t, ref)

	dir := filepath.Join(base, "run")
	cmd, _, stderr := cli(t, "run", "--quiet", "--out", dir, scenario)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitUntil(t, "tick 14", func() bool { return closedTick(dir, 14) || cmd.ProcessState != nil })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if closedTick(dir, 30) {
		t.Fatalf("the run ended before it was killed; stderr:\n%s", stderr)
	}
	before, _ := events.ReadFile(filepath.Join(dir, "events.jsonl"))
	_, hiBefore := maxGranted(t, before)
	cps, _ := checkpoint.List(filepath.Join(dir, "checkpoints"))
	if len(cps) == 0 {
		t.Fatal("no checkpoint before the kill")
	}
	from := cps[len(cps)-1]

	runOK(t, "resume", "--quiet", dir)
	got := readFinal(t, dir)
	if got.Status != "finished" || got.Ticks != want.Ticks || got.StateHash != want.StateHash {
		t.Fatalf("resumed %+v, uninterrupted %+v", got, want)
	}

	// Right after the resume the tree held exactly the checkpoint's
	// versions, and those are the uninterrupted run's files at that tick.
	var sc struct {
		State struct {
			LastToken uint64 `json:"last_token"`
			Files     []struct {
				Path   string
				SHA256 string
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(from.Dir, "shared", "state.json"))
	if err == nil {
		err = json.Unmarshal(b, &sc)
	}
	if err != nil || len(sc.State.Files) != 2 {
		t.Fatalf("checkpoint's shared state: %v %s", err, b)
	}
	atResume := map[string]string{} // path -> sha256 of its first version after the resume, or at the checkpoint
	resumed := false
	log, _ := os.ReadFile(filepath.Join(dir, "versions", "log.jsonl"))
	for _, l := range strings.Split(strings.TrimSpace(string(log)), "\n") {
		var v struct{ Path, SHA256, Reason string }
		_ = json.Unmarshal([]byte(l), &v)
		if v.Reason == "resume" {
			atResume[v.Path], resumed = v.SHA256, true
		}
	}
	if !resumed {
		t.Fatalf("no version went back to the checkpoint at tick %d (killed after tick 14)", from.Meta.Tick)
	}
	for _, f := range sc.State.Files {
		if s, ok := atResume[f.Path]; ok && s != f.SHA256 {
			t.Errorf("%s went back to %s, the checkpoint has %s", f.Path, s, f.SHA256)
		}
		blob, err := os.ReadFile(filepath.Join(dir, "versions", "blobs", f.SHA256[:2], f.SHA256))
		if err != nil {
			t.Fatal(err)
		}
		final, _ := os.ReadFile(filepath.Join(ref, "workspace", "shared", f.Path))
		w, g := upTo(string(final), uint64(from.Meta.Tick)), upTo(string(blob), uint64(from.Meta.Tick))
		if f.Path == "ideas.md" {
			slices.Sort(w)
			slices.Sort(g)
		}
		if !slices.Equal(w, g) {
			t.Errorf("%s at the checkpoint of tick %d:\n%s\nthe uninterrupted run's at that tick:\n%s", f.Path, from.Meta.Tick, strings.Join(g, ""), strings.Join(w, ""))
		}
	}

	for _, name := range []string{"notebook.md", "ideas.md"} {
		w, _ := os.ReadFile(filepath.Join(ref, "workspace", "shared", name))
		g, _ := os.ReadFile(filepath.Join(dir, "workspace", "shared", name))
		if name == "notebook.md" && string(w) != string(g) || !slices.Equal(sortedLines(string(w)), sortedLines(string(g))) {
			t.Errorf("final %s:\n%s\nuninterrupted:\n%s", name, g, w)
		}
	}

	recs, _ := events.ReadFile(filepath.Join(dir, "events.jsonl"))
	i := slices.IndexFunc(recs, func(r events.Record) bool { return r.Kind == events.RunResumed })
	if i < 0 {
		t.Fatal("no run.resumed")
	}
	loAfter, _ := maxGranted(t, recs[i:])
	if loAfter <= hiBefore || loAfter <= sc.State.LastToken {
		t.Errorf("first token after the resume %d, before it up to %d (checkpoint: %d)", loAfter, hiBefore, sc.State.LastToken)
	}
}

func mkdir(t *testing.T, d string) string {
	t.Helper()
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}
