package scenarios_test

import (
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

func TestParseMemory(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"256MiB", 256 << 20, true},
		{"1.5GiB", 3 << 29, true},
		{"512MB", 512e6, true},
		{"4096B", 4096, true},
		{"1 GiB", 1 << 30, true},
		{"256", 0, false},    // no unit
		{"256mib", 0, false}, // units are case-sensitive
		{"lots", 0, false},
		{"-1MiB", 0, false},
		{"99999999TiB", 0, false},
	} {
		got, err := scenarios.ParseMemory(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestAgentLimits(t *testing.T) {
	inProgramDir(t)
	src := lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  memory = "256MiB"`, `  pids = 64`, `  cpu = 0.5`, `}`)
	s, diags := scenarios.Parse([]byte(src), "l.hcl")
	if diags.HasErrors() {
		t.Fatalf("Parse: %s", diags)
	}
	if a := s.Agents[0]; a.Memory != 256<<20 || a.Pids != 64 || a.CPU != 0.5 {
		t.Errorf("limits = %d, %d, %g; want 256MiB, 64, 0.5", a.Memory, a.Pids, a.CPU)
	}

	// Every bad limit is reported at its line, all at once.
	src = lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  memory = "256"`, `  pids = 0`, `  cpu = 0.001`, `}`,
		`agent "b" {`, `  command = "./b"`, `  memory = "1MiB"`, `  pids = "many"`, `  cpu = "half"`, `}`)
	_, diags = scenarios.Parse([]byte(src), "l.hcl")
	checkDiags(t, diags, []wantDiag{
		{5, `memory must be a size with a unit`},
		{6, `pids must be a whole number from 1 to`},
		{7, `cpu must be a number from 0.01`},
		{11, `too little for any process`},
		{12, `got "many"`},
		{13, `got "half"`},
	})
}

// In-process agents have no process of their own to limit.
func TestInProcAgentsTakeNoLimits(t *testing.T) {
	src := lines(okScenario, okWorld, `agent "a" {`, `  runtime = "inproc"`, `  command = "x"`, `  pids = 8`, `  memory = "8MiB"`, `}`)
	_, diags := scenarios.Parse([]byte(src), "l.hcl")
	checkDiags(t, diags, []wantDiag{{6, `pids cannot be limited for runtime "inproc"`}, {7, `memory cannot be limited`}})
}

// max_line sets a stdio agent's longest stdout line; it is checked at its
// line, refused for other runtimes, and survives a Go-built scenario's
// rendering.
func TestStdioMaxLine(t *testing.T) {
	inProgramDir(t)
	src := lines(okScenario, okWorld, `agent "a" {`, `  runtime = "stdio"`, `  command = "./a"`, `  max_line = "64KiB"`, `}`, `agent "b" { command = "./b" }`)
	s, diags := scenarios.Parse([]byte(src), "l.hcl")
	if diags.HasErrors() {
		t.Fatalf("Parse: %s", diags)
	}
	if s.Agents[0].MaxLine != 64<<10 || s.Agents[1].MaxLine != 0 {
		t.Errorf("max_line = %d, %d; want 65536 and 0 (the default)", s.Agents[0].MaxLine, s.Agents[1].MaxLine)
	}

	src = lines(okScenario, okWorld,
		`agent "a" {`, `  runtime = "stdio"`, `  command = "./a"`, `  max_line = "100B"`, `}`,
		`agent "b" {`, `  runtime = "stdio"`, `  command = "./b"`, `  max_line = "4MiB"`, `}`,
		`agent "c" {`, `  runtime = "stdio"`, `  command = "./a"`, `  max_line = 4096`, `}`,
		`agent "d" {`, `  runtime = "stdio"`, `  command = "./a"`, `  max_line = "4k"`, `}`,
		`agent "e" {`, `  command = "./a"`, `  max_line = "64KiB"`, `}`)
	_, diags = scenarios.Parse([]byte(src), "l.hcl")
	checkDiags(t, diags, []wantDiag{
		{6, `too short for an action line`},
		{11, `could never be delivered`},
		{16, `max_line must be a size with a unit`},
		{21, `unknown unit "k"`},
		{25, `max_line is a setting of runtime = "stdio"`},
	})

	built := scenarios.New("b")
	kind, _ := world.LookupKind("test_kind")
	built.World = scenarios.World{Impl: kind}
	a := scenarios.NewAgent("a", scenarios.RuntimeStdio, "/bin/true")
	a.MaxLine = 4096
	built.Add(a)
	if err := built.Check(); err != nil {
		t.Fatal(err)
	}
	back, diags := scenarios.Parse(built.Source, "b.hcl")
	if diags.HasErrors() || back.Agents[0].MaxLine != 4096 {
		t.Fatalf("rendered max_line did not load back (%v):\n%s", diags, built.Source)
	}
	a.MaxLine, a.Runtime = 4096, scenarios.RuntimeBuiltin
	wrong := scenarios.New("w")
	wrong.World = scenarios.World{Impl: kind}
	wrong.Add(a)
	if err := wrong.Check(); err == nil || !strings.Contains(err.Error(), "max_line is a setting of runtime stdio") {
		t.Errorf("Check of a builtin agent with max_line: %v", err)
	}
}
