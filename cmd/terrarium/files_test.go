package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
}
