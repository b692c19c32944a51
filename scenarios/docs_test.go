package scenarios_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/scenarios"
	_ "github.com/terrarium-sim/terrarium/world/game"  // the repeated_game kind the docs use
	_ "github.com/terrarium-sim/terrarium/world/town"  // the town kind of scenarios/town.hcl
	_ "github.com/terrarium-sim/terrarium/world/turns" // the turns kind of shared-notebook.hcl
)

// Marks, on the line before a ```hcl fence in docs/scenarios.md: a
// fragment is not a complete file (not loaded); an errors example is a
// complete file with mistakes, followed by a plain ``` block with the
// report terrarium validate gives for it.
const (
	fragmentMark = "<!-- fragment -->"
	errorsMark   = "<!-- errors -->"
)

// fence is one fenced block of a Markdown file.
type fence struct {
	line int    // of the opening fence
	lang string // "hcl", "" ...
	mark string // the line before the opening fence, trimmed
	body string
}

func fences(t *testing.T, path string) []fence {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out  []fence
		cur  *fence
		prev string
		body strings.Builder
	)
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			cur = &fence{line: i + 1, lang: strings.TrimPrefix(trimmed, "```"), mark: strings.TrimSpace(prev)}
			body.Reset()
		case cur != nil && trimmed == "```":
			cur.body = body.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(line + "\n")
		}
		prev = line
	}
	if cur != nil {
		t.Fatalf("%s:%d: unclosed ``` block", path, cur.line)
	}
	return out
}

// relativeCommand finds the relative program paths an example names.
var relativeCommand = regexp.MustCompile(`command\s*=\s*"(\.\.?/[^"]+)"`)

// loadExample writes src as my.hcl into a temporary directory (with, when
// makePrograms is set, the programs it names by relative path) and loads
// it. It returns the report with the directory taken out of paths.
func loadExample(t *testing.T, src string, makePrograms bool) (ok bool, report string) {
	t.Helper()
	dir := t.TempDir()
	if makePrograms {
		for _, m := range relativeCommand.FindAllStringSubmatch(src, -1) {
			p := filepath.Join(dir, m[1])
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	path := filepath.Join(dir, "my.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags := scenarios.Load(path)
	var b strings.Builder
	if err := scenarios.FormatDiagnostics(&b, diags); err != nil {
		t.Fatal(err)
	}
	return !diags.HasErrors(), strings.ReplaceAll(b.String(), dir+string(filepath.Separator), "")
}

// reportHeads cuts each line of a report to "file:line:col: error: Summary",
// the part that does not depend on the machine (directories, the builtin
// agents registered).
func reportHeads(report string) []string {
	var heads []string
	for _, line := range strings.Split(strings.TrimSpace(report), "\n") {
		head, _, _ := strings.Cut(line, ";")
		heads = append(heads, head)
	}
	return heads
}

// TestDocsExamplesLoad loads every complete ```hcl example of
// docs/scenarios.md from a temporary directory holding the programs it
// names by relative path, and checks the errors examples report what the
// docs say, line for line.
func TestDocsExamplesLoad(t *testing.T) {
	doc := filepath.Join("..", "docs", "scenarios.md")
	fs := fences(t, doc)
	loaded, withErrors := 0, 0
	for i, f := range fs {
		if f.lang != "hcl" || f.mark == fragmentMark {
			continue
		}
		if f.mark == errorsMark {
			withErrors++
			if i+1 >= len(fs) || fs[i+1].lang != "" {
				t.Errorf("%s:%d: an errors example must be followed by a plain ``` block with its report", doc, f.line)
				continue
			}
			ok, report := loadExample(t, f.body, false)
			if ok {
				t.Errorf("%s:%d: the errors example loads without errors", doc, f.line)
			}
			if got, want := reportHeads(report), reportHeads(fs[i+1].body); !slices.Equal(got, want) {
				t.Errorf("%s:%d: the errors example reports\n%s\nbut the docs (line %d) say\n%s", doc, f.line, report, fs[i+1].line, fs[i+1].body)
			}
			continue
		}
		loaded++
		if ok, report := loadExample(t, f.body, true); !ok {
			t.Errorf("%s:%d: the example does not load (mark it %s if it is not a complete file):\n%s", doc, f.line, fragmentMark, report)
		}
	}
	if loaded == 0 || withErrors == 0 {
		t.Errorf("%s: %d complete and %d errors examples; the test must be reading it wrong", doc, loaded, withErrors)
	}
}

// TestShippedScenariosLoad loads the example scenarios of this package.
func TestShippedScenariosLoad(t *testing.T) {
	paths, err := filepath.Glob("*.hcl")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no shipped scenarios: %v", err)
	}
	for _, p := range paths {
		if _, diags := scenarios.Load(p); diags.HasErrors() {
			t.Errorf("%s: %s", p, diags)
		}
	}
}
