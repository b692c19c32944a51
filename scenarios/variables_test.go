package scenarios_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world/game"
)

const varScenario = `variable "rounds" { default = 10 }
variable "seed" { default = 3 }
variable "opening" { default = "C" }

scenario "vars" {
  seed             = var.seed
  ticks            = var.rounds
  checkpoint_every = 5
}

world "repeated_game" {
  rounds       = var.rounds
  default_move = var.opening
  payoffs      = { R = var.rounds > 5 ? 4 : 3 }
}

agent "a" {
  runtime = "builtin"
  command = "cooperator"
}

agent "b" {
  runtime = "builtin"
  command = "defector"
}
`

func writeVarScenario(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vars.hcl")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVariables(t *testing.T) {
	p := writeVarScenario(t, varScenario)
	sc, diags := scenarios.Load(p)
	if diags.HasErrors() {
		t.Fatalf("defaults: %v", diags)
	}
	cfg := sc.World.Config.(*game.Config)
	if sc.Seed != 3 || sc.Ticks != 10 || cfg.Rounds != 10 || cfg.DefaultMove != "C" || cfg.Payoffs["R"] != 4 || sc.CheckpointEvery != 5 {
		t.Errorf("defaults: seed %d ticks %d rounds %d move %q R %v every %d", sc.Seed, sc.Ticks, cfg.Rounds, cfg.DefaultMove, cfg.Payoffs["R"], sc.CheckpointEvery)
	}
	sc, diags = scenarios.LoadWith(p, scenarios.LoadOptions{Vars: map[string]string{"rounds": "4", "opening": "D"}})
	if diags.HasErrors() {
		t.Fatalf("overrides: %v", diags)
	}
	cfg = sc.World.Config.(*game.Config)
	if sc.Ticks != 4 || cfg.Rounds != 4 || cfg.DefaultMove != "D" || cfg.Payoffs["R"] != 3 {
		t.Errorf("overrides: ticks %d rounds %d move %q R %v", sc.Ticks, cfg.Rounds, cfg.DefaultMove, cfg.Payoffs["R"])
	}
	if len(sc.Variables) != 3 || sc.Variables[0].Name != "rounds" || sc.Variables[0].String() != "4" || !sc.Variables[0].Set || sc.Variables[1].Set {
		t.Errorf("variables %+v", sc.Variables)
	}
}

func TestVariableErrors(t *testing.T) {
	p := writeVarScenario(t, varScenario)
	for _, c := range []struct {
		name string
		vars map[string]string
		src  string
		want []string // in the report, each with its line
	}{
		{"unknown --var", map[string]string{"roundz": "3"}, varScenario, []string{`declares no variable "roundz"`}},
		{"not a number", map[string]string{"rounds": "many"}, varScenario, []string{"vars.hcl:1", "want a number", "from the command line"}},
		{"bad value for the world", map[string]string{"rounds": "0"}, varScenario, []string{"vars.hcl:12", "rounds"}},
		{"no default", nil, "variable \"x\" {}\n" + varScenario, []string{"vars.hcl:1", "no default"}},
		{"no default, used", nil, "variable \"x\" {}\n" + strings.Replace(varScenario, "var.opening", "var.x", 1), []string{"vars.hcl:1", "no default"}},
		{"undeclared", nil, strings.Replace(varScenario, "var.opening", "var.openin", 1), []string{"vars.hcl:13", `Undeclared variable`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.src != varScenario {
				p = writeVarScenario(t, c.src)
			}
			_, diags := scenarios.LoadWith(p, scenarios.LoadOptions{Vars: c.vars})
			if !diags.HasErrors() {
				t.Fatal("loaded")
			}
			var b strings.Builder
			scenarios.FormatDiagnostics(&b, diags)
			for _, w := range c.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, b.String())
				}
			}
			// A refused --var or a missing default is said once: its uses
			// are not reported again as undeclared.
			if strings.Contains(b.String(), "Undeclared variable") && c.name != "undeclared" {
				t.Errorf("a declared variable reported as undeclared:\n%s", b.String())
			}
		})
	}
}

// checkpoint_keep: absent is the default (0 here), 0 in the file keeps
// every checkpoint (negative here), N keeps N; a negative or fractional
// value is refused with the setting named. HCL() writes it back.
func TestCheckpointKeep(t *testing.T) {
	for _, c := range []struct {
		line string
		want int
		err  string
	}{
		{"", 0, ""},
		{"checkpoint_keep = 0", -1, ""},
		{"checkpoint_keep = 10", 10, ""},
		{"checkpoint_keep = -1", 0, "checkpoint_keep = 10"},
		{"checkpoint_keep = 1.5", 0, "checkpoint_keep = 10"},
	} {
		src := strings.Replace(varScenario, "checkpoint_every = 5", "checkpoint_every = 5\n  "+c.line, 1)
		sc, diags := scenarios.Load(writeVarScenario(t, src))
		if c.err != "" {
			if !diags.HasErrors() || !strings.Contains(diags.Error(), c.err) {
				t.Errorf("%q: %v, want an error mentioning %q", c.line, diags, c.err)
			}
			continue
		}
		if diags.HasErrors() {
			t.Errorf("%q: %v", c.line, diags)
			continue
		}
		if sc.CheckpointKeep != c.want {
			t.Errorf("%q: CheckpointKeep %d, want %d", c.line, sc.CheckpointKeep, c.want)
		}
		again, diags := scenarios.Parse(sc.HCL(), "again.hcl")
		if diags.HasErrors() || again.CheckpointKeep != c.want {
			t.Errorf("%q: HCL() round trip: %d, %v", c.line, again.CheckpointKeep, diags)
		}
	}
}
