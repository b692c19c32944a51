package game

import (
	"fmt"
	"sort"
	"strings"
)

// Game names (the world block's game setting).
const (
	PrisonersDilemma = "prisoners_dilemma"
)

// Pairings (the world block's pairing setting).
const (
	PairingRoundRobin = "round_robin"
)

// rules is one game of the table: its moves, its payoff parameters and its
// payoff function. Adding a game is adding an entry to games.
type rules struct {
	name    string
	players int    // players per match
	moves   string // the legal moves, one byte each
	// params names the payoff settings, in the order score receives them;
	// defaults holds their default values.
	params   []string
	defaults []float64
	// check reports payoff values that do not make this game (p in params order).
	check func(p []float64) error
	// score writes each player's payoff for one round's moves into out.
	score func(p []float64, moves []byte, out []float64)
	// shareMetric names the per-tick metric giving the share of moves[0] plays.
	shareMetric string
}

var games = map[string]*rules{
	PrisonersDilemma: &prisonersDilemma,
}

// GameNames lists the games a repeated_game world can play, sorted.
func GameNames() []string {
	n := make([]string, 0, len(games))
	for k := range games {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// movesList formats a game's moves for error messages: "C" or "D".
func (r *rules) movesList() string {
	q := make([]string, len(r.moves))
	for i := range r.moves {
		q[i] = fmt.Sprintf("%q", r.moves[i:i+1])
	}
	if len(q) == 2 {
		return q[0] + " or " + q[1]
	}
	return strings.Join(q, ", ")
}

// The prisoner's dilemma. Payoffs: R reward (both cooperate), S sucker (you
// cooperate, they defect), T temptation (you defect, they cooperate), P
// punishment (both defect).
var prisonersDilemma = rules{
	name:        PrisonersDilemma,
	players:     2,
	moves:       "CD",
	params:      []string{"R", "S", "T", "P"},
	defaults:    []float64{3, 0, 5, 1},
	check:       checkPD,
	score:       scorePD,
	shareMetric: "cooperation_rate",
}

func checkPD(p []float64) error {
	r, s, t, pu := p[0], p[1], p[2], p[3]
	var failed []string
	if !(t > r) {
		failed = append(failed, "T > R")
	}
	if !(r > pu) {
		failed = append(failed, "R > P")
	}
	if !(pu > s) {
		failed = append(failed, "P > S")
	}
	if !(2*r > t+s) {
		failed = append(failed, "2R > T + S")
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("a prisoner's dilemma needs T > R > P > S and 2R > T + S; got R=%g S=%g T=%g P=%g (fails: %s)",
		r, s, t, pu, strings.Join(failed, ", "))
}

func scorePD(p []float64, moves []byte, out []float64) {
	r, s, t, pu := p[0], p[1], p[2], p[3]
	a, b := moves[0] == 'C', moves[1] == 'C'
	switch {
	case a && b:
		out[0], out[1] = r, r
	case a && !b:
		out[0], out[1] = s, t
	case !a && b:
		out[0], out[1] = t, s
	default:
		out[0], out[1] = pu, pu
	}
}
