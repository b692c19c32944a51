package scenarios_test

import (
	"reflect"
	"testing"

	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world/game"
)

// The repeated_game world kind's settings, as a scenario file sees them:
// defaults, and every problem reported at its own setting.

const (
	pdAgentA = `agent "a" {` + "\n" + `  runtime = "builtin"` + "\n" + `  command = "test_prog"` + "\n" + `}`
	pdAgentB = `agent "b" {` + "\n" + `  runtime = "builtin"` + "\n" + `  command = "test_prog"` + "\n" + `}`
)

func TestRepeatedGameDefaults(t *testing.T) {
	for _, src := range []string{
		lines(okScenario, `world "repeated_game" {}`, pdAgentA, pdAgentB),
		lines(okScenario, `world "repeated_game" {`, `  payoffs = {}`, `}`, pdAgentA, pdAgentB),
	} {
		s, diags := scenarios.Parse([]byte(src), "test.hcl")
		if diags.HasErrors() {
			t.Fatalf("Parse: %s", diags)
		}
		got := *s.World.Config.(*game.Config)
		got.Payoffs = nil
		if want := *game.NewConfig(); !reflect.DeepEqual(got, want) {
			t.Errorf("Config = %+v, want the defaults %+v", got, want)
		}
	}
}

func TestRepeatedGameSettingErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []wantDiag
	}{
		{"payoff of the wrong type points at its key",
			lines(okScenario, `world "repeated_game" {`, `  payoffs = {`, `    R = 3`, `    T = "x"`, `  }`, `}`, pdAgentA, pdAgentB),
			[]wantDiag{{5, `Invalid payoffs; world "repeated_game" setting "payoffs", key "T": a number is required; got "x".`}}},
		{"every setting's problem, each at its line",
			lines(okScenario, `world "repeated_game" {`, `  game         = "chess"`, `  rounds       = 0`, `  pairing      = "swiss"`, `}`, pdAgentA, pdAgentB),
			[]wantDiag{
				{3, `Invalid game; world "repeated_game": game = "chess": unknown game (known: prisoners_dilemma).`},
				{4, `Invalid rounds; world "repeated_game": rounds = 0: a match needs at least 1 round.`},
				{5, `Invalid pairing; world "repeated_game": pairing = "swiss": unknown pairing (known: round_robin).`},
			}},
		{"one setting failing to decode hides none of the others",
			lines(okScenario, `world "repeated_game" {`, `  game         = ["prisoners_dilemma"]`, `  rounds       = -1`, `  payoffs      = { T = "x", Q = 1 }`, `  default_move = "Z"`, `}`, pdAgentA, pdAgentB),
			[]wantDiag{
				{3, `Invalid game; world "repeated_game" setting "game": string required; got a tuple.`},
				{4, `Invalid rounds; world "repeated_game": rounds = -1: a match needs at least 1 round.`},
				{5, `Invalid payoffs; world "repeated_game" setting "payoffs", key "T": a number is required; got "x".`},
				{5, `Invalid payoffs; world "repeated_game": payoffs: unknown key "Q" (the prisoners_dilemma payoffs are R, S, T, P).`},
				{6, `Invalid default_move; world "repeated_game": default_move = "Z": not a move of prisoners_dilemma (want "C" or "D").`},
			}},
		{"payoffs that are no prisoner's dilemma",
			lines(okScenario, `world "repeated_game" {`, `  payoffs = { T = 2 }`, `}`, pdAgentA, pdAgentB),
			[]wantDiag{{3, `Invalid payoffs; world "repeated_game": payoffs: a prisoner's dilemma needs T > R > P > S and 2R > T + S; got R=3 S=0 T=2 P=1 (fails: T > R).`}}},
		{"misspelled setting, and the default applies",
			lines(okScenario, `world "repeated_game" {`, `  roundz = 10`, `}`, pdAgentA, pdAgentB),
			[]wantDiag{{3, `An argument named "roundz" is not expected here. Did you mean "rounds"?`}}},
		{"seat rules, one error per agent block",
			lines(okScenario, `world "repeated_game" {}`,
				`agent "a" {`, `  runtime = "builtin"`, `  command = "test_prog"`, `  count   = 2`, `}`,
				`agent "b" {`, `  runtime = "builtin"`, `  command = "test_prog"`, `  count   = 3`, `}`),
			[]wantDiag{
				{2, `group "a" has 2`},
				{2, `group "b" has 3`},
			}},
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
