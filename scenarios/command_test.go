package scenarios_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/terrarium-sim/terrarium/scenarios"
)

// TestNATSCommandChecked covers the checks of a runtime "nats" agent's
// command: each problem is an error at the command, naming the agent and
// saying what to do.
func TestNATSCommandChecked(t *testing.T) {
	dir := inProgramDir(t)
	if err := os.WriteFile(filepath.Join(dir, "noexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)

	agent := func(command string) string {
		return lines(okScenario, okWorld, `agent "p" {`, `  runtime = "nats"`, `  command = "`+command+`"`, `}`)
	}
	tests := []struct {
		name string
		src  string
		want []wantDiag
	}{
		{"relative path missing", agent("./missing"),
			[]wantDiag{{5, `Invalid command; agent "p": command "./missing": ` + filepath.Join(dir, "missing") + ` does not exist`}}},
		{"relative path missing says where it looked", agent("bin/missing"),
			[]wantDiag{{5, `check the path, or build the program first; a relative path is taken from ` + dir + `, the scenario file's directory.`}}},
		{"absolute path missing", agent("/nonexistent/agent"),
			[]wantDiag{{5, `agent "p": command "/nonexistent/agent": /nonexistent/agent does not exist`}}},
		{"not executable", agent("./noexec"),
			[]wantDiag{{5, `is not executable (mode -rw-r--r--); make it executable (chmod +x ` + filepath.Join(dir, "noexec") + `).`}}},
		{"a directory", agent("./sub"),
			[]wantDiag{{5, `is a directory, not a program; give the path of the program inside that directory.`}}},
		{"bare name not on PATH", agent("no-such-program"),
			[]wantDiag{{5, `agent "p": command "no-such-program" not found in PATH ("` + dir + `"); install "no-such-program" or add its directory to PATH`}}},
		{"bare name of a builtin agent", agent("test_prog"),
			[]wantDiag{{5, `"test_prog" is the name of a builtin agent: add runtime = "builtin" to run it`}}},
		{"runtime defaults to nats", lines(okScenario, okWorld, `agent "p" {`, `  command = "./missing"`, `}`),
			[]wantDiag{{4, `agent "p": command "./missing"`}}},
		{"every agent is checked", lines(okScenario, okWorld, `agent "p" { command = "./x" }`, `agent "q" { command = "./y" }`),
			[]wantDiag{{3, `agent "p": command "./x"`}, {4, `agent "q": command "./y"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, diags := scenarios.Parse([]byte(tt.src), "test.hcl")
			if s != nil {
				t.Errorf("Parse returned a scenario despite errors")
			}
			checkDiags(t, diags, tt.want)
		})
	}
}

func TestNATSCommandResolved(t *testing.T) {
	dir := inProgramDir(t)
	t.Setenv("PATH", "/nonexistent:"+dir)

	src := lines(okScenario, okWorld,
		`agent "rel" { command = "./a" }`,
		`agent "bare" { command = "b" }`,
		`agent "abs" { command = "`+filepath.Join(dir, "a")+`" }`,
		`agent "ref" {`, `  runtime = "builtin"`, `  command = "test_prog"`, `}`)
	s, diags := scenarios.Parse([]byte(src), "test.hcl")
	if diags.HasErrors() {
		t.Fatalf("Parse: %s", diags)
	}
	want := map[string]string{"rel": filepath.Join(dir, "a"), "bare": filepath.Join(dir, "b"), "abs": filepath.Join(dir, "a"), "ref": ""}
	for _, a := range s.Agents {
		if a.Path != want[a.Name] {
			t.Errorf("agent %s: Path = %q, want %q", a.Name, a.Path, want[a.Name])
		}
	}
}

// TestLoadResolvesAgainstTheFile checks that Load takes a relative command
// from the scenario file's directory, not from the current one.
func TestLoadResolvesAgainstTheFile(t *testing.T) {
	inProgramDir(t) // holds ./a, which must not be found
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(dir, "bin", "player")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "s.hcl")
	src := lines(okScenario, okWorld, `agent "p" { command = "./bin/player" }`, `agent "q" { command = "./a" }`)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags := scenarios.Load(path)
	checkDiags(t, diags, []wantDiag{{4, `agent "q": command "./a": ` + filepath.Join(dir, "a") + " does not exist"}})

	src = lines(okScenario, okWorld, `agent "p" { command = "./bin/player" }`)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	s, diags := scenarios.Load(path)
	if diags.HasErrors() {
		t.Fatalf("Load: %s", diags)
	}
	if s.Agents[0].Path != prog || s.Agents[0].Command != "./bin/player" {
		t.Errorf("Agent = %+v, want Path %q", s.Agents[0], prog)
	}
}
