package game

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Config is the world block of a repeated_game scenario. The scenarios
// package decodes it with gohcl; NewConfig gives the defaults.
type Config struct {
	// Game is the game played in every match: "prisoners_dilemma".
	Game string `hcl:"game"`
	// Rounds is the number of rounds of every match (>= 1); tick t is round t.
	Rounds int `hcl:"rounds"`
	// Pairing says who meets whom: "round_robin" (default), every pair of
	// groups plays one match.
	Pairing string `hcl:"pairing,optional"`
	// SelfPlay adds, for every group, a match of its ranked seat (index 1)
	// against its twin (index 2).
	SelfPlay bool `hcl:"self_play,optional"`
	// Payoffs overrides the game's payoff values by name; the rest keep their
	// defaults. Prisoner's dilemma: R, S, T, P (defaults 3, 0, 5, 1), which
	// must satisfy T > R > P > S and 2R > T + S.
	Payoffs map[string]float64 `hcl:"payoffs,optional"`
	// DefaultMove is played for an agent that sent no action (default "C").
	DefaultMove string `hcl:"default_move,optional"`
}

// NewConfig returns a Config with its defaults set: the prisoner's dilemma,
// 200 rounds (Axelrod's tournament), round robin, default move "C".
func NewConfig() *Config {
	return &Config{
		Game:        PrisonersDilemma,
		Rounds:      200,
		Pairing:     PairingRoundRobin,
		DefaultMove: "C",
	}
}

// settings is a checked Config.
type settings struct {
	rules       *rules
	rounds      int
	pairing     string
	selfPlay    bool
	params      []float64 // in rules.params order
	defaultMove byte
}

// payoffMap returns the payoffs by name (a fresh map).
func (s *settings) payoffMap() map[string]float64 {
	m := make(map[string]float64, len(s.params))
	for i, n := range s.rules.params {
		m[n] = s.params[i]
	}
	return m
}

// resolve checks c and fills in the defaults. It reports every problem at
// once, each naming the setting to fix. Unless the game is unknown it also
// returns the settings, so that the seats can be checked too.
func resolve(c Config) (*settings, error) {
	var errs []error
	r, ok := games[c.Game]
	if !ok {
		return nil, fmt.Errorf("game = %q: unknown game (known: %s)", c.Game, strings.Join(GameNames(), ", "))
	}
	s := &settings{rules: r, rounds: c.Rounds, pairing: c.Pairing, selfPlay: c.SelfPlay}
	if c.Rounds < 1 {
		errs = append(errs, fmt.Errorf("rounds = %d: a match needs at least 1 round", c.Rounds))
	}
	if s.pairing == "" {
		s.pairing = PairingRoundRobin
	}
	if s.pairing != PairingRoundRobin {
		errs = append(errs, fmt.Errorf("pairing = %q: unknown pairing (known: %s)", c.Pairing, PairingRoundRobin))
	}

	s.params = append([]float64(nil), r.defaults...)
	keys := make([]string, 0, len(c.Payoffs))
	for k := range c.Payoffs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	payoffsOK := true
	for _, k := range keys {
		v := c.Payoffs[k]
		i := indexOf(r.params, k)
		switch {
		case i < 0:
			errs = append(errs, fmt.Errorf("payoffs: unknown key %q (the %s payoffs are %s)", k, r.name, strings.Join(r.params, ", ")))
			payoffsOK = false
		case math.IsNaN(v) || math.IsInf(v, 0):
			errs = append(errs, fmt.Errorf("payoffs: %s = %g is not a finite number", k, v))
			payoffsOK = false
		default:
			s.params[i] = v
		}
	}
	if payoffsOK {
		if err := r.check(s.params); err != nil {
			errs = append(errs, fmt.Errorf("payoffs: %w", err))
		}
	}

	dm := c.DefaultMove
	if dm == "" {
		dm = r.moves[:1]
	}
	if len(dm) != 1 || strings.IndexByte(r.moves, dm[0]) < 0 {
		errs = append(errs, fmt.Errorf("default_move = %q: not a move of %s (want %s)", c.DefaultMove, r.name, r.movesList()))
	} else {
		s.defaultMove = dm[0]
	}
	return s, errors.Join(errs...)
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
