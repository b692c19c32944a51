package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/workspace"
)

func TestFilesCommand(t *testing.T) {
	run := t.TempDir()
	s, err := workspace.OpenStore(filepath.Join(run, "versions"))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []string{"one\n", "two\n"} {
		sum, n, err := s.Put(strings.NewReader(c))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Add(workspace.Version{Path: "notes/plan.md", SHA256: sum, Size: n, Agent: "a", Token: uint64(i + 1), Reason: "commit"}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	files := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(append([]string{"files", run}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, _ := files(); code != 0 || !strings.Contains(out, "notes/plan.md") || !strings.Contains(out, "2 ") {
		t.Errorf("list: %d %q", code, out)
	}
	if code, out, _ := files("log", "notes/plan.md"); code != 0 || strings.Count(out, "commit") != 2 {
		t.Errorf("log: %d %q", code, out)
	}
	for ref, want := range map[string]string{"notes/plan.md@1": "one\n", "notes/plan.md@2": "two\n", "notes/plan.md": "two\n", "notes/plan.md@latest": "two\n"} {
		if code, out, errs := files("show", ref); code != 0 || out != want {
			t.Errorf("show %s: %d %q %q", ref, code, out, errs)
		}
	}
	dest := t.TempDir()
	if code, _, errs := files("checkout", "notes/plan.md@1", dest); code != 0 {
		t.Fatalf("checkout: %d %s", code, errs)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "plan.md")); err != nil || string(b) != "one\n" {
		t.Errorf("checked out %q, %v", b, err)
	}
	if code, _, errs := files("show", "notes/plan.md@3"); code != exitFailed || !strings.Contains(errs, "versions 1 to 2") {
		t.Errorf("show @3: %d %q", code, errs)
	}
	if code, _, errs := files("show", "nope.md"); code != exitFailed || !strings.Contains(errs, "no versions") {
		t.Errorf("show missing: %d %q", code, errs)
	}
	if code, _, _ := files("frobnicate"); code != exitUsage {
		t.Errorf("unknown subcommand: %d", code)
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"files", t.TempDir()}, &out, &errb); code != exitFailed || !strings.Contains(errb.String(), "no version store") {
		t.Errorf("not a run: %d %q", code, errb.String())
	}

	// ./path is the path.
	if code, out, errs := files("log", "./notes/plan.md"); code != 0 || strings.Count(out, "commit") != 2 {
		t.Errorf("log ./notes/plan.md: %d %q %q", code, out, errs)
	}
	if code, out, errs := files("show", "./notes//plan.md@1"); code != 0 || out != "one\n" {
		t.Errorf("show ./notes//plan.md@1: %d %q %q", code, out, errs)
	}
	// checkout does not overwrite a file unless told to.
	if code, _, errs := files("checkout", "notes/plan.md@2", dest); code != exitFailed || !strings.Contains(errs, "exists") {
		t.Errorf("checkout over an existing file: %d %q, want it refused", code, errs)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "plan.md")); string(b) != "one\n" {
		t.Errorf("the refused checkout changed the file: %q", b)
	}
	if code, _, errs := files("checkout", "--force", "notes/plan.md@2", filepath.Join(dest, "plan.md")); code != 0 {
		t.Errorf("checkout --force: %d %q", code, errs)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "plan.md")); string(b) != "two\n" {
		t.Errorf("checkout --force wrote %q, want version 2", b)
	}

	// A violation's content is kept (not a version): log lists it, show
	// prints it by its hash.
	s, err = workspace.OpenStore(filepath.Join(run, "versions"))
	if err != nil {
		t.Fatal(err)
	}
	sum, _, err := s.Put(strings.NewReader("intruder\n"))
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.Create(filepath.Join(run, "events.jsonl"), "r", func(k string) string { return "sim.r.events." + k }, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev.Emit(events.Violation, 1, "rogue", map[string]any{"path": "notes/plan.md", "reason": "changed without a lease", "sha256": sum})
	ev.Emit(workspace.EventFileRestored, 1, "", map[string]any{"path": "notes/plan.md", "reason": "changed without a lease", "replaced_sha256": sum, "sha256": "x"})
	if err := ev.Close(); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := files("log", "notes/plan.md"); code != 0 || strings.Count(out, sum) != 1 || !strings.Contains(out, "rogue") {
		t.Errorf("log: %d %q %q, want the violation's kept content listed once", code, out, errs)
	}
	for _, ref := range []string{"sha256:" + sum, "sha256:" + sum[:8]} {
		if code, out, errs := files("show", ref); code != 0 || out != "intruder\n" {
			t.Errorf("show %s: %d %q %q", ref, code, out, errs)
		}
	}
	if code, _, errs := files("show", "sha256:"+strings.Repeat("0", 64)); code != exitFailed || !strings.Contains(errs, "no such content") {
		t.Errorf("show an unknown hash: %d %q", code, errs)
	}
}
