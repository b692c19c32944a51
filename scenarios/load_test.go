package scenarios_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

// wantDiag is one expected error: its line and a substring of
// "summary; detail".
type wantDiag struct {
	line int
	text string
}

func message(d *hcl.Diagnostic) string { return d.Summary + "; " + d.Detail }

// checkDiags asserts that diags holds exactly the wanted errors, in order.
func checkDiags(t *testing.T, diags hcl.Diagnostics, want []wantDiag) {
	t.Helper()
	var errs hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs = append(errs, d)
		}
	}
	for i := range max(len(errs), len(want)) {
		switch {
		case i >= len(errs):
			t.Errorf("missing diagnostic %d: line %d, %q", i, want[i].line, want[i].text)
		case i >= len(want):
			t.Errorf("unexpected diagnostic %d: %s: %s", i, errs[i].Subject, message(errs[i]))
		default:
			d, w := errs[i], want[i]
			if d.Subject == nil {
				t.Errorf("diagnostic %d (%q) has no Subject", i, message(d))
				continue
			}
			if d.Subject.Start.Line != w.line || !strings.Contains(message(d), w.text) {
				t.Errorf("diagnostic %d = line %d %q; want line %d containing %q", i, d.Subject.Start.Line, message(d), w.line, w.text)
			}
		}
	}
}

// testdataBot is the absolute path of testdata/bot, the program the
// testdata scenarios name as "./bot".
func testdataBot(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "bot"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadValid(t *testing.T) {
	path := filepath.Join("testdata", "valid.hcl")
	s, diags := scenarios.Load(path)
	if len(diags) != 0 {
		t.Fatalf("Load: %s", diags)
	}
	if s.Path != path || len(s.Source) == 0 || !strings.HasPrefix(string(s.Source), "# Every setting given.") {
		t.Errorf("Path = %q, Source starts %.20q", s.Path, s.Source)
	}
	if s.World.Impl.Name != "test_kind" {
		t.Errorf("World.Impl.Name = %q", s.World.Impl.Name)
	}
	got := *s
	got.Path, got.Source, got.Dir, got.World.Impl = "", nil, "", world.Kind{}
	want := scenarios.Scenario{
		Name:           "full-run_1",
		Seed:           1980,
		Stepping:       scenarios.SteppingLockstep,
		Ticks:          200,
		ActionDeadline: 2 * time.Second,
		MissingAction:  scenarios.MissingRepeat,
		ReadyTimeout:   90 * time.Second,
		World: scenarios.World{
			Kind: "test_kind",
			Config: &testConfig{
				Rounds: 3, Players: 4, Label: "none", Weights: []float64{0.5, 1, 2},
				Payoff: &testPayoff{Win: 5},
				Zones:  []testZone{{Name: "north", Size: 2}, {Name: "south", Size: 7}},
			},
		},
		Agents: []scenarios.Agent{
			{Name: "tit_for_tat", Count: 1, Runtime: scenarios.RuntimeBuiltin, Command: "test_prog", Restart: scenarios.RestartNever, MaxRestarts: scenarios.DefaultMaxRestarts, RestartWindow: scenarios.DefaultRestartWindow, RestartDelay: scenarios.DefaultRestartDelay},
			{Name: "bot", Count: 3, Runtime: scenarios.RuntimeNATS, Command: "./bot", Path: testdataBot(t), Args: []string{"--fast", "-v"},
				Env: []string{"PATH", "HOME", "_X1"}, Restart: scenarios.RestartNever, MaxRestarts: scenarios.DefaultMaxRestarts, RestartWindow: scenarios.DefaultRestartWindow, RestartDelay: scenarios.DefaultRestartDelay},
		},
		Workspace: scenarios.Workspace{Enforcement: scenarios.EnforcementAuto, LeaseTTL: scenarios.DefaultLeaseTTL, LockDelay: scenarios.DefaultLockDelay},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load =\n%#v\nwant\n%#v", got, want)
	}
	if c := s.World.Config.(*testConfig); !reflect.DeepEqual(c, want.World.Config) {
		t.Errorf("World.Config = %+v", c)
	}
}

func TestLoadDefaults(t *testing.T) {
	s, diags := scenarios.Load(filepath.Join("testdata", "minimal.hcl"))
	if len(diags) != 0 {
		t.Fatalf("Load: %s", diags)
	}
	got := *s
	got.Path, got.Source, got.Dir, got.World.Impl = "", nil, "", world.Kind{}
	want := scenarios.Scenario{
		Name:           "minimal",
		Seed:           scenarios.DefaultSeed,
		Stepping:       scenarios.SteppingLockstep,
		ActionDeadline: scenarios.DefaultActionDeadline,
		MissingAction:  scenarios.MissingDefault,
		ReadyTimeout:   scenarios.DefaultReadyTimeout,
		World:          scenarios.World{Kind: "test_kind", Config: &testConfig{Rounds: 10, Label: "none"}},
		Agents: []scenarios.Agent{
			{Name: "solo", Count: 1, Runtime: scenarios.RuntimeNATS, Command: "./bot", Path: testdataBot(t), Restart: scenarios.RestartNever, MaxRestarts: scenarios.DefaultMaxRestarts, RestartWindow: scenarios.DefaultRestartWindow, RestartDelay: scenarios.DefaultRestartDelay},
		},
		Workspace: scenarios.Workspace{Enforcement: scenarios.EnforcementAuto, LeaseTTL: scenarios.DefaultLeaseTTL, LockDelay: scenarios.DefaultLockDelay},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load =\n%#v\nwant\n%#v", got, want)
	}
	if !reflect.DeepEqual(s.Seats(), []world.Seat{{ID: "solo", Group: "solo", Index: 1}}) {
		t.Errorf("Seats = %v", s.Seats())
	}
}

// TestLoadManyMistakes checks that one load reports every mistake in a file.
func TestLoadManyMistakes(t *testing.T) {
	s, diags := scenarios.Load(filepath.Join("testdata", "mistakes.hcl"))
	if s != nil {
		t.Errorf("Load returned a scenario despite errors")
	}
	checkDiags(t, diags, []wantDiag{
		{1, `scenario name "bad name" may use only letters`},
		{2, "seed must be a whole number >= 0, like seed = 1980; got -3"},
		{3, `stepping must be one of "lockstep", "realtime", "turn_based"; got "sometimes"`},
		{4, `action_deadline must be a Go duration greater than zero, like "2s", "500ms" or "1m30s"; got "soon"`},
		{5, `missing_action must be one of "default", "repeat", "abort"; got "skip"`},
		{6, `An argument named "colour" is not expected here`},
		{10, `Invalid rounds; world "test_kind" setting "rounds": a number is required; got "many".`},
		{11, `An argument named "speed" is not expected here`},
		{16, `No builtin agent is named "no_such_prog". Known builtin agents: ` + knownPrograms() + "."},
		{17, "count must be a whole number from 1 to 10000"},
		{18, `env[0] is "PATH=/bin"`},
		{21, `Missing command; agent "b" has no command: add command = "..."`},
		{22, `restart must be one of "never", "on-failure", "always"; got "sometimes"`},
		{23, "args[1] must be a string; got 7"},
		{26, `An agent block named "b" is already defined at testdata/mistakes.hcl:21`},
		{30, `Blocks of type "gizmo" are not expected here`},
	})
	for _, d := range diags {
		if d.Subject == nil || d.Subject.Filename != filepath.Join("testdata", "mistakes.hcl") || d.Subject.Start.Column < 1 {
			t.Errorf("diagnostic %q has Subject %v, want a position in the file", message(d), d.Subject)
		}
	}
}

func TestLoadSyntaxError(t *testing.T) {
	s, diags := scenarios.Load(filepath.Join("testdata", "syntax.hcl"))
	if s != nil || !diags.HasErrors() {
		t.Fatalf("Load = %v, %v; want syntax errors", s, diags)
	}
	for _, d := range diags {
		if d.Subject == nil || d.Subject.Filename != filepath.Join("testdata", "syntax.hcl") {
			t.Errorf("diagnostic %q has Subject %v", message(d), d.Subject)
		}
		if strings.Contains(message(d), "Missing agent block") {
			t.Errorf("validation ran on a file with syntax errors: %q", message(d))
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	s, diags := scenarios.Load(filepath.Join(t.TempDir(), "nope.hcl"))
	if s != nil || len(diags) != 1 || !strings.Contains(message(diags[0]), "Cannot read scenario file") ||
		!strings.Contains(diags[0].Detail, "nope.hcl") {
		t.Fatalf("Load = %v, %v", s, diags)
	}
}

// A path that is not a scenario file, such as /dev/zero, is refused
// without reading it all.
func TestLoadRefusesHugeFile(t *testing.T) {
	s, diags := scenarios.Load("/dev/zero")
	if s != nil || len(diags) != 1 || !strings.Contains(diags[0].Detail, "is over 4 MiB") {
		t.Fatalf("Load(/dev/zero) = %v, %v", s, diags)
	}
}

// knownKinds and knownPrograms render the registries as messages list them.
// Other packages register kinds and programs too, so the tests do not fix
// the lists; they check that test_kind and test_prog are in them.
func knownKinds() string    { return quoteAll(world.KindNames(), "test_kind") }
func knownPrograms() string { return quoteAll(builtin.Names(), "test_prog") }

func quoteAll(names []string, mustHave string) string {
	if !slices.Contains(names, mustHave) {
		panic(mustHave + " is not registered")
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// inProgramDir makes the current directory, for the rest of the test, a
// temporary one holding the executables "a" and "b" that the inline
// scenarios name (command = "./a"): Parse resolves relative commands
// against the current directory.
func inProgramDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	return dir
}

// lines joins source lines; a case's line numbers count from its first.
func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

const (
	okScenario = `scenario "s" {}`
	okWorld    = `world "test_kind" {}`
	okAgent    = `agent "a" { command = "./a" }`
)

// TestParseChecks has one case per check.
func TestParseChecks(t *testing.T) {
	inProgramDir(t)
	tests := []struct {
		name string
		src  string
		want []wantDiag
	}{
		// The file's blocks.
		{"unknown block", lines(okScenario, okWorld, okAgent, `thing "x" {}`),
			[]wantDiag{{4, `Unsupported block type; Blocks of type "thing" are not expected here`}}},
		{"top-level attribute", lines(`seed = 1`, okScenario, okWorld, okAgent),
			[]wantDiag{{1, `An argument named "seed" is not expected here`}}},
		{"no scenario block", lines(okWorld, okAgent),
			[]wantDiag{{1, `Missing scenario block`}}},
		{"two scenario blocks", lines(okScenario, `scenario "t" {}`, okWorld, okAgent),
			[]wantDiag{{2, `Duplicate scenario block; A scenario file has exactly one scenario block; the first is at test.hcl:1`}}},
		{"scenario without label", lines(`scenario {}`, okWorld, okAgent),
			[]wantDiag{{1, `Missing name for scenario`}}},
		{"agent without label", lines(okScenario, okWorld, `agent { command = "./a" }`),
			[]wantDiag{{3, `Missing name for agent`}}},
		{"too many agent processes", lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  count = 6000`, `}`, `agent "b" {`, `  command = "./a"`, `  count = 6000`, `}`),
			[]wantDiag{{7, `Too many agent processes; the agent blocks make 12000 agent processes, at most 10000 can run (one OS process each); use runtime = "pool" for crowds.`}}},
		{"no world block", lines(okScenario, okAgent),
			[]wantDiag{{1, `Missing world block; A scenario file needs one world block naming a registered world kind (` + knownKinds() + `)`}}},
		{"two world blocks", lines(okScenario, okWorld, okWorld, okAgent),
			[]wantDiag{{3, `Duplicate world block; A scenario file has exactly one world block; the first is at test.hcl:2`}}},
		{"no agent block", lines(okScenario, okWorld),
			[]wantDiag{{1, `Missing agent block`}}},
		{"undeclared variable", lines(`scenario "s" { seed = var.seed }`, okWorld, okAgent),
			[]wantDiag{{1, `Undeclared variable`}}},
		{"variables not allowed", lines(`scenario "s" { seed = other.seed }`, okWorld, okAgent),
			[]wantDiag{{1, `Variables not allowed`}}},
		{"functions not allowed", lines(`scenario "s" { seed = max(1, 2) }`, okWorld, okAgent),
			[]wantDiag{{1, `Function calls not allowed`}}},

		// Misspelled and misplaced names.
		{"misspelled scenario setting", lines(`scenario "s" {`, `  tiks = 3`, `}`, okWorld, okAgent),
			[]wantDiag{{2, `Unsupported argument; An argument named "tiks" is not expected here. Did you mean "ticks"?`}}},
		{"misspelled setting that is also set", lines(`scenario "s" {`, `  ticks = 3`, `  tick  = 3`, `}`, okWorld, okAgent),
			[]wantDiag{{3, `An argument named "tick" is not expected here. Did you mean "ticks"? It is already set at test.hcl:2; remove one of the two.`}}},
		{"world setting in the scenario block", lines(`scenario "s" {`, `  rounds = 3`, `}`, okWorld, okAgent),
			[]wantDiag{{2, `"rounds" is a setting of the world "test_kind" block, not of the scenario block; move it there.`}}},
		{"misspelled world setting in the scenario block", lines(`scenario "s" {`, `  roundz = 3`, `}`, okWorld, okAgent),
			[]wantDiag{{2, `Did you mean "rounds"? That is a setting of the world "test_kind" block, not of the scenario block.`}}},
		{"scenario setting in the world block", lines(okScenario, `world "test_kind" {`, `  ticks = 3`, `}`, okAgent),
			[]wantDiag{{3, `"ticks" is a setting of the scenario block, not of the world "test_kind" block; move it there.`}}},
		{"misspelled world setting", lines(okScenario, `world "test_kind" {`, `  roundz = 3`, `}`, okAgent),
			[]wantDiag{{3, `An argument named "roundz" is not expected here. Did you mean "rounds"?`}}},
		{"misspelled world setting that is also set", lines(okScenario, `world "test_kind" {`, `  rounds = 3`, `  roundz = 3`, `}`, okAgent),
			[]wantDiag{{4, `Did you mean "rounds"? It is already set at test.hcl:3`}}},
		{"unknown world setting lists the settings", lines(okScenario, `world "test_kind" {`, `  xyzzy = 3`, `}`, okAgent),
			[]wantDiag{{3, `An argument named "xyzzy" is not expected here. The settings of the world "test_kind" block are "label", "players", "rounds", "weights".`}}},
		{"world block written as a setting", lines(okScenario, `world "test_kind" {`, `  payof = { win = 1 }`, `}`, okAgent),
			[]wantDiag{{3, `Did you mean to define a block of type "payoff"? If so, write payoff { ... } without the equals sign.`}}},
		{"misspelled world block", lines(okScenario, `world "test_kind" {`, `  zon "n" { size = 1 }`, `}`, okAgent),
			[]wantDiag{{3, `Blocks of type "zon" are not expected here. Did you mean "zone"?`}}},
		{"misspelled setting in a nested world block", lines(okScenario, `world "test_kind" {`, `  payoff {`, `    wn = 1`, `  }`, `}`, okAgent),
			[]wantDiag{{3, `The argument "win" is required`}, {4, `An argument named "wn" is not expected here. Did you mean "win"?`}}},
		{"misspelled agent setting", lines(okScenario, okWorld, `agent "a" {`, `  comand = "./a"`, `}`),
			[]wantDiag{{3, `Missing command`}, {4, `An argument named "comand" is not expected here. Did you mean "command"?`}}},
		{"scenario setting in an agent block", lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  tiks = 3`, `}`),
			[]wantDiag{{5, `Did you mean "ticks"? That is a setting of the scenario block, not of an agent block.`}}},
		{"setting at the top level", lines(`ticks = 3`, okScenario, okWorld, okAgent),
			[]wantDiag{{1, `"ticks" is a setting of the scenario block, not of the top level of the file; move it there.`}}},
		{"misspelled top-level block", lines(okScenario, okWorld, `agnet "a" { command = "./a" }`),
			[]wantDiag{{1, `Missing agent block`}, {3, `Blocks of type "agnet" are not expected here. Did you mean "agent"?`}}},
		{"setting written as a block", lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  count {}`, `}`),
			[]wantDiag{{5, `Blocks of type "count" are not expected here. Did you mean to set "count"? If so, use the equals sign`}}},
		{"block in a block without blocks", lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  limits {}`, `}`),
			[]wantDiag{{5, `Blocks of type "limits" are not expected here. An agent block takes no blocks.`}}},

		// The scenario block.
		{"bad scenario name", lines(`scenario "a.b" {}`, okWorld, okAgent),
			[]wantDiag{{1, `Invalid scenario name; The scenario name "a.b" may use only letters, digits, "_" and "-"`}}},
		{"unknown scenario setting", lines(`scenario "s" {`, `  sed = 2`, `}`, okWorld, okAgent),
			[]wantDiag{{2, `An argument named "sed" is not expected here. Did you mean "seed"?`}}},
		{"block in scenario", lines(`scenario "s" {`, `  limits {}`, `}`, okWorld, okAgent),
			[]wantDiag{{2, `Blocks of type "limits" are not expected here`}}},
		{"negative seed", lines(`scenario "s" { seed = -1 }`, okWorld, okAgent),
			[]wantDiag{{1, `Invalid seed; seed must be a whole number >= 0, like seed = 1980; got -1.`}}},
		{"fractional seed", lines(`scenario "s" { seed = 1.5 }`, okWorld, okAgent),
			[]wantDiag{{1, `seed must be a whole number >= 0, like seed = 1980; got 1.5.`}}},
		{"seed too large", lines(`scenario "s" { seed = 18446744073709551616 }`, okWorld, okAgent),
			[]wantDiag{{1, `seed must be a whole number >= 0, like seed = 1980; got 18446744073709551616.`}}},
		{"seed tiny fraction", lines(`scenario "s" { seed = 0.000001 }`, okWorld, okAgent),
			[]wantDiag{{1, `seed must be a whole number >= 0, like seed = 1980; got 0.000001.`}}},
		{"string seed", lines(`scenario "s" { seed = "7" }`, okWorld, okAgent),
			[]wantDiag{{1, `seed must be a whole number >= 0, like seed = 1980; got "7".`}}},
		{"realtime with abort", lines(`scenario "s" {
  stepping = "realtime"
  missing_action = "abort"
}`, okWorld, okAgent),
			[]wantDiag{{3, `missing_action = "abort" does not go with stepping = "realtime"`}}},
		{"tick_rate zero", lines(`scenario "s" {
  stepping = "realtime"
  tick_rate = 0
}`, okWorld, okAgent),
			[]wantDiag{{3, `tick_rate must be a number of ticks per second above 0 and at most 1000, like tick_rate = 60; got 0.`}}},
		{"tick_rate too high", lines(`scenario "s" {
  stepping = "realtime"
  tick_rate = 5000
}`, okWorld, okAgent),
			[]wantDiag{{3, `tick_rate must be a number of ticks per second above 0 and at most 1000`}}},
		{"max_catch_up zero", lines(`scenario "s" {
  stepping = "realtime"
  max_catch_up = 0
}`, okWorld, okAgent),
			[]wantDiag{{3, `max_catch_up must be a whole number from 1 to 1000`}}},
		{"stepping turn_based without a turn order", lines(`scenario "s" { stepping = "turn_based" }`, okWorld, okAgent),
			[]wantDiag{{2, `stepping = "turn_based" needs a world that declares whose turn each tick is; world kind "test_kind" does not`}}},
		{"stepping unknown", lines(`scenario "s" { stepping = "fast" }`, okWorld, okAgent),
			[]wantDiag{{1, `Invalid stepping; stepping must be one of "lockstep", "realtime", "turn_based"; got "fast".`}}},
		{"stepping not a string", lines(`scenario "s" { stepping = ["lockstep"] }`, okWorld, okAgent),
			[]wantDiag{{1, `stepping must be one of "lockstep", "realtime", "turn_based"; got a tuple.`}}},
		{"negative ticks", lines(`scenario "s" { ticks = -5 }`, okWorld, okAgent),
			[]wantDiag{{1, `Invalid ticks; ticks must be a whole number >= 1 (or 0 to run until the world is done), like ticks = 200; got -5.`}}},
		{"action_deadline without unit", lines(`scenario "s" { action_deadline = "2" }`, okWorld, okAgent),
			[]wantDiag{{1, `Invalid action_deadline; action_deadline must be a Go duration greater than zero, like "2s", "500ms" or "1m30s"; got "2".`}}},
		{"action_deadline zero", lines(`scenario "s" { action_deadline = "0s" }`, okWorld, okAgent),
			[]wantDiag{{1, `action_deadline must be a Go duration greater than zero`}}},
		{"action_deadline number", lines(`scenario "s" { action_deadline = 2 }`, okWorld, okAgent),
			[]wantDiag{{1, `action_deadline must be a Go duration greater than zero, like "2s", "500ms" or "1m30s"; got 2.`}}},
		{"missing_action unknown", lines(`scenario "s" { missing_action = "skip" }`, okWorld, okAgent),
			[]wantDiag{{1, `Invalid missing_action; missing_action must be one of "default", "repeat", "abort"; got "skip".`}}},
		{"ready_timeout negative", lines(`scenario "s" { ready_timeout = "-1s" }`, okWorld, okAgent),
			[]wantDiag{{1, `Invalid ready_timeout; ready_timeout must be a Go duration greater than zero`}}},

		// The world block.
		{"unknown world kind", lines(okScenario, `world "nope" {}`, okAgent),
			[]wantDiag{{2, `Unknown world kind; No world kind is named "nope". Registered kinds: ` + knownKinds() + "."}}},
		{"world without label", lines(okScenario, `world {}`, okAgent),
			[]wantDiag{{2, `Missing kind for world`}}},
		{"unknown world setting", lines(okScenario, `world "test_kind" {`, `  colour = 1`, `}`, okAgent),
			[]wantDiag{{3, `Unsupported argument; An argument named "colour" is not expected here.`}}},
		{"world setting wrong type", lines(okScenario, `world "test_kind" {`, `  rounds = "many"`, `}`, okAgent),
			[]wantDiag{{3, `Invalid rounds; world "test_kind" setting "rounds": a number is required; got "many".`}}},
		{"world setting fractional", lines(okScenario, `world "test_kind" {`, `  rounds = 1.5`, `}`, okAgent),
			[]wantDiag{{3, `Invalid rounds; world "test_kind" setting "rounds": value must be a whole number, between -9223372036854775808 and 9223372036854775807; got 1.5.`}}},
		{"world setting null", lines(okScenario, `world "test_kind" { rounds = null }`, okAgent),
			[]wantDiag{{2, `Invalid rounds; world "test_kind" setting "rounds": null value is not allowed; got null.`}}},
		{"world map wrong type", lines(okScenario, `world "test_kind" {`, `  weights = { a = 1 }`, `}`, okAgent),
			[]wantDiag{{3, `setting "weights": list of number required; got an object.`}}},
		{"world list element wrong type", lines(okScenario, `world "test_kind" {`, `  weights = [`, `    1,`, `    "x",`, `  ]`, `}`, okAgent),
			[]wantDiag{{5, `Invalid weights; world "test_kind" setting "weights", element 1: a number is required; got "x".`}}},
		{"world required setting missing", lines(okScenario, `world "test_required" {`, `}`, okAgent),
			[]wantDiag{{2, `Missing required argument; The argument "size" is required`}, {2, `Missing rule block; A rule block is required.`}}},
		{"world required block given", lines(okScenario, `world "test_required" {`, `  size = 1`, `  rule { win = 1 }`, `  rule { win = 2 }`, `}`, okAgent),
			[]wantDiag{{5, `Duplicate rule block`}}},
		{"world kind with a bad config tag", lines(okScenario, `world "test_badtag" {}`, okAgent),
			[]wantDiag{{2, `Broken world kind; World kind "test_badtag" cannot decode its settings (*scenarios_test.badTagConfig): invalid hcl field tag kind "bogus" on int "Rest"; this is a bug in the kind`}}},
		{"world nested block setting", lines(okScenario, `world "test_kind" {`, `  payoff { lose = 1 }`, `}`, okAgent),
			[]wantDiag{{3, `The argument "win" is required`}}},
		{"world nested block wrong type", lines(okScenario, `world "test_kind" {`, `  zone "n" { size = "big" }`, `}`, okAgent),
			[]wantDiag{{3, `Invalid size; world "test_kind" block zone "n" setting "size": a number is required; got "big".`}}},
		{"world duplicate nested block", lines(okScenario, `world "test_kind" {`, `  payoff { win = 1 }`, `  payoff { win = 2 }`, `}`, okAgent),
			[]wantDiag{{4, `Duplicate payoff block; Only one payoff block is allowed. Another was defined at test.hcl:3`}}},
		{"world nested block label missing", lines(okScenario, `world "test_kind" {`, `  zone { size = 1 }`, `}`, okAgent),
			[]wantDiag{{3, `Missing name for zone`}}},
		{"world map: a bad value and a bad key", lines(okScenario, `world "test_multi" {`, `  weights = {`, `    x = "heavy"`, `    q = 1`, `  }`, `}`, okAgent),
			[]wantDiag{
				{4, `Invalid weights; world "test_multi" setting "weights", key "x": a number is required; got "heavy".`},
				{5, `Invalid weights; world "test_multi": weights: unknown key "q".`},
			}},
		{"world: every problem, each at its setting", lines(okScenario, `world "test_multi" {`, `  mode    = "medium"`, `  size    = 0`, `  weights = { x = 6, y = 5 }`, `}`, okAgent, `agent "b" { command = "./b" }`, `agent "c" {`, `  command = "./a"`, `  count   = 2`, `}`),
			[]wantDiag{
				{2, `Invalid world settings; world "test_multi": at most 2 agents; got 4.`},
				{2, `Invalid world settings; world "test_multi": and really, more than 3 is far too many.`},
				{3, `Invalid mode; world "test_multi": mode = "medium": want "fast" or "slow".`},
				{4, `Invalid size; world "test_multi": size = 0: want at least 1.`},
				{5, `Invalid weights; world "test_multi": weights: the sum is 11, more than 10.`},
			}},
		{"world: a setting that fails to decode hides only its own objections", lines(okScenario, `world "test_multi" {`, `  mode    = ["x"]`, `  size    = "big"`, `  weights = { x = "a", y = 20, z = 1 }`, `}`, okAgent),
			[]wantDiag{
				{3, `Invalid mode; world "test_multi" setting "mode": string required; got a tuple.`},
				{4, `Invalid size; world "test_multi" setting "size": a number is required; got "big".`},
				{5, `Invalid weights; world "test_multi" setting "weights", key "x": a number is required; got "a".`},
				{5, `Invalid weights; world "test_multi": weights: unknown key "z".`},
			}},
		{"world kind rejects settings", lines(okScenario, `world "test_kind" {`, `  rounds = -1`, `}`, okAgent),
			[]wantDiag{{2, `Invalid world settings; world "test_kind": rounds must be >= 0, got -1`}}},
		{"world kind rejects agents", lines(okScenario, `world "test_kind" { players = 3 }`, `agent "a" {`, `  command = "./a"`, `  count = 2`, `}`),
			[]wantDiag{{2, `world "test_kind": players = 3 but the scenario has 2 agents`}}},
		{"world kind not asked when agents are wrong", lines(okScenario, `world "test_kind" { rounds = -1 }`, `agent "a" {`, `  command = "./a"`, `  count = 0`, `}`),
			[]wantDiag{{5, `count must be a whole number from 1 to 10000`}}},
		{"broken world kind", lines(okScenario, `world "test_broken" {}`, okAgent),
			[]wantDiag{{2, `Broken world kind; World kind "test_broken" returned scenarios_test.requiredConfig from NewConfig, not a pointer to a struct`}}},

		// Agent blocks.
		{"bad agent name", lines(okScenario, okWorld, `agent "a b" { command = "./a" }`),
			[]wantDiag{{3, `Invalid agent name; The agent name "a b" may use only letters, digits, "_" and "-"`}}},
		{"agent with two labels", lines(okScenario, okWorld, `agent "a" "b" { command = "./a" }`, okAgent),
			[]wantDiag{{3, `Extraneous label for agent`}}},
		{"unknown agent setting", lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  cmd = "x"`, `}`),
			[]wantDiag{{5, `An argument named "cmd" is not expected here`}}},
		{"command missing", lines(okScenario, okWorld, `agent "a" {`, `  count = 2`, `}`),
			[]wantDiag{{3, `Missing command; agent "a" has no command: add command = "..." with the program to run (for runtime "builtin", the reference agent's name, one of ` + knownPrograms() + ")."}}},
		{"command empty", lines(okScenario, okWorld, `agent "a" { command = "" }`),
			[]wantDiag{{3, `Invalid command; command must not be empty`}}},
		{"command not a string", lines(okScenario, okWorld, `agent "a" { command = ["./a"] }`),
			[]wantDiag{{3, `command must be a non-empty string, like command = "./player"; got a tuple.`}}},
		{"command null", lines(okScenario, okWorld, `agent "a" { command = null }`),
			[]wantDiag{{3, `command must be a non-empty string, like command = "./player"; got null.`}}},
		{"claude setting on a nats agent", lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  model = "claude-sonnet-4-5"`, `}`),
			[]wantDiag{{5, `Unexpected model; model is a setting of runtime = "claude"; agent "a" has runtime = "nats".`}}},
		{"claude permission mode unknown", lines(okScenario, okWorld, `agent "a" {`, `  runtime = "claude"`, `  command = "./a"`, `  permission_mode = "yolo"`, `}`),
			[]wantDiag{{6, `Invalid permission_mode; permission_mode must be one of "dontAsk", "acceptEdits", "auto", "manual", "plan", "bypassPermissions"; got "yolo".`}}},
		{"claude budget negative", lines(okScenario, okWorld, `agent "a" {`, `  runtime = "claude"`, `  command = "./a"`, `  max_cost_usd = -1`, `}`),
			[]wantDiag{{6, `max_cost_usd must be >= 0; got -1.`}}},
		{"claude allowed tool malformed", lines(okScenario, okWorld, `agent "a" {`, `  runtime = "claude"`, `  command = "./a"`, `  allowed_tools = ["Edit", "rm -rf"]`, `}`),
			[]wantDiag{{6, `allowed_tools[1] is "rm -rf"`}}},
		{"runtime unknown", lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  runtime = "docker"`, `}`),
			[]wantDiag{{5, `Invalid runtime; runtime must be one of "nats", "stdio", "builtin", "inproc", "claude", "mcp", "pool"; got "docker".`}}},
		{"builtin unknown", lines(okScenario, okWorld, `agent "a" {`, `  runtime = "builtin"`, `  command = "no_such_agent"`, `}`),
			[]wantDiag{{5, `Unknown builtin agent; No builtin agent is named "no_such_agent". Known builtin agents: ` + knownPrograms() + "."}}},
		{"args not a list", lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  args = "-v"`, `}`),
			[]wantDiag{{5, `Invalid args; args must be a list of strings, like args = ["--verbose"]; got "-v".`}}},
		{"args element not a string", lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  args = [`, `    "-v",`, `    true,`, `  ]`, `}`),
			[]wantDiag{{7, `Invalid args[1]; args[1] must be a string; got true.`}}},
		{"count zero", lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  count = 0`, `}`),
			[]wantDiag{{5, `Invalid count; count must be a whole number from 1 to 10000 (how many agents this block makes), like count = 2; got 0.`}}},
		{"count too large", lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  count = 10001`, `}`),
			[]wantDiag{{5, `count must be a whole number from 1 to 10000`}}},
		{"count huge", lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  count = 1e20`, `}`),
			[]wantDiag{{5, `like count = 2; got 100000000000000000000.`}}},
		{"count not a number", lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  count = "two"`, `}`),
			[]wantDiag{{5, `count must be a whole number from 1 to 10000 (how many agents this block makes), like count = 2; got "two".`}}},
		{"env not a list", lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  env = "PATH"`, `}`),
			[]wantDiag{{5, `Invalid env; env must be a list of environment variable names, like env = ["PATH", "HOME"]; got "PATH".`}}},
		{"env bad names", lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  env = ["HOME",`, `    "PATH=/bin", "1X", 3]`, `}`),
			[]wantDiag{
				{6, `Invalid env entry; env[1] is "PATH=/bin": env lists the NAMES of host variables to pass through, each matching [A-Za-z_][A-Za-z0-9_]*`},
				{6, `env[2] is "1X"`},
				{6, `Invalid env[3]; env[3] must be a variable name, like "PATH"; got 3.`},
			}},
		{"restart unknown", lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  restart = "sometimes"`, `}`),
			[]wantDiag{{5, `Invalid restart; restart must be one of "never", "on-failure", "always"; got "sometimes".`}}},
		{"duplicate agent name", lines(okScenario, okWorld, okAgent, `agent "b" { command = "./b" }`, okAgent),
			[]wantDiag{{5, `Duplicate agent name; An agent block named "a" is already defined at test.hcl:3; agent names must be unique.`}}},
		{"agent id collision", lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  count = 2`, `}`, `agent "a-2" { command = "./a" }`),
			[]wantDiag{{7, `Agent id collision; agent "a-2" (count = 1) makes the id "a-2", which agent "a" (count = 2) at test.hcl:3 also makes; rename one of the blocks.`}}},
		{"agent id collision, later block counted", lines(okScenario, okWorld, `agent "b-3" { command = "./b" }`, `agent "b" {`, `  command = "./b"`, `  count = 3`, `}`),
			[]wantDiag{{4, `agent "b" (count = 3) makes the id "b-3", which agent "b-3" (count = 1) at test.hcl:3 also makes`}}},
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

// TestParseAccepts covers values at the edges of what is allowed.
func TestParseAccepts(t *testing.T) {
	inProgramDir(t)
	tests := []struct {
		name  string
		src   string
		check func(*scenarios.Scenario) bool
	}{
		{"ticks zero runs until done", lines(`scenario "s" { ticks = 0 }`, okWorld, okAgent),
			func(s *scenarios.Scenario) bool { return s.Ticks == 0 }},
		{"seed zero", lines(`scenario "s" { seed = 0 }`, okWorld, okAgent),
			func(s *scenarios.Scenario) bool { return s.Seed == 0 }},
		{"largest seed", lines(`scenario "s" { seed = 18446744073709551615 }`, okWorld, okAgent),
			func(s *scenarios.Scenario) bool { return s.Seed == 1<<64-1 }},
		{"null keeps the default", lines(`scenario "s" {`, `  seed = null`, `  action_deadline = null`, `}`, okWorld, `agent "a" {`, `  command = "./a"`, `  count = null`, `}`),
			func(s *scenarios.Scenario) bool {
				return s.Seed == scenarios.DefaultSeed && s.ActionDeadline == scenarios.DefaultActionDeadline && s.Agents[0].Count == 1
			}},
		{"missing_action abort", lines(`scenario "s" { missing_action = "abort" }`, okWorld, okAgent),
			func(s *scenarios.Scenario) bool { return s.MissingAction == scenarios.MissingAbort }},
		{"restart never, empty lists", lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  restart = "never"`, `  args = []`, `  env = []`, `}`),
			func(s *scenarios.Scenario) bool {
				a := s.Agents[0]
				return a.Restart == scenarios.RestartNever && len(a.Args) == 0 && len(a.Env) == 0
			}},
		{"count one names the agent after its block", lines(okScenario, okWorld, `agent "a-1" { command = "./a" }`, `agent "a" { command = "./a" }`),
			func(s *scenarios.Scenario) bool { return len(s.Seats()) == 2 }},
		{"world kind accepts agents", lines(okScenario, `world "test_kind" { players = 2 }`, okAgent, `agent "b" { command = "./b" }`),
			func(s *scenarios.Scenario) bool { return s.World.Config.(*testConfig).Players == 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, diags := scenarios.Parse([]byte(tt.src), "test.hcl")
			if diags.HasErrors() {
				t.Fatalf("Parse: %s", diags)
			}
			if !tt.check(s) {
				t.Errorf("Parse = %+v", s)
			}
		})
	}
}

func TestParseListFromForExpression(t *testing.T) {
	inProgramDir(t)
	src := lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  args = [for s in ["x", "y"] : s]`, `  env = [for s in ["OK", "B-AD"] : s]`, `}`)
	_, diags := scenarios.Parse([]byte(src), "test.hcl")
	checkDiags(t, diags, []wantDiag{{6, `env[1] is "B-AD"`}})

	src = lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  args = [for s in ["x", "y"] : s]`, `}`)
	s, diags := scenarios.Parse([]byte(src), "test.hcl")
	if diags.HasErrors() {
		t.Fatalf("Parse: %s", diags)
	}
	if !reflect.DeepEqual(s.Agents[0].Args, []string{"x", "y"}) {
		t.Errorf("Args = %q", s.Agents[0].Args)
	}
}

func TestParseIsRepeatable(t *testing.T) {
	inProgramDir(t)
	// The order of diagnostics must not depend on map iteration.
	src := lines(`scenario "s" {`, `  a = 1`, `  b = 2`, `  c = 3`, `  d = 4`, `}`, okWorld, okAgent)
	var first string
	for i := range 20 {
		_, diags := scenarios.Parse([]byte(src), "test.hcl")
		var b strings.Builder
		if err := scenarios.FormatDiagnostics(&b, diags); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = b.String()
		} else if b.String() != first {
			t.Fatalf("run %d gave\n%s\nrun 0 gave\n%s", i, b.String(), first)
		}
	}
}

// restart_unhealthy without unhealthy_after loads, with a warning at its line.
func TestRestartUnhealthyAloneWarns(t *testing.T) {
	inProgramDir(t)
	src := lines(okScenario, okWorld, `agent "a" {`, `  command = "./a"`, `  restart_unhealthy = true`, `}`)
	sc, diags := scenarios.Parse([]byte(src), "w.hcl")
	if diags.HasErrors() || sc == nil {
		t.Fatalf("Parse: %v", diags)
	}
	if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || diags[0].Subject.Start.Line != 5 || !strings.Contains(diags[0].Summary, "no effect") {
		t.Fatalf("diagnostics %v, want one warning at line 5", diags)
	}
}

// A claude CLI that is not installed is a warning whose hint fits the
// command: a path needs the pinned install (or another CLI's path), a
// bare name a CLI in PATH.
func TestMissingClaudeCLIHint(t *testing.T) {
	for cmd, want := range map[string]string{
		"./no/such/claude":              "bash .ci/deps/claude.sh installs the pinned CLI",
		"claude-not-installed-anywhere": "is looked up in PATH: npm install -g @anthropic-ai/claude-code puts claude there",
	} {
		src := fmt.Sprintf(`
scenario "s" {}
world "town" {}
agent "a" {
  runtime = "claude"
  command = %q
}
`, cmd)
		_, diags := scenarios.Parse([]byte(src), "s.hcl")
		found := false
		for _, d := range diags {
			if d.Summary == "claude CLI not found" {
				found = true
				if d.Severity != hcl.DiagWarning || !strings.Contains(d.Detail, want) {
					t.Errorf("%s: %v %q, want a warning saying %q", cmd, d.Severity, d.Detail, want)
				}
				if strings.Contains(cmd, "/") && strings.Contains(d.Detail, "npm install -g") {
					t.Errorf("%s: %q suggests npm -g, which does not put a CLI at that path", cmd, d.Detail)
				}
			}
		}
		if !found {
			t.Errorf("%s: no warning: %v", cmd, diags)
		}
	}
}
