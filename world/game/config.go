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
	// Game is the game played in every match: "prisoners_dilemma" (default).
	Game string `hcl:"game,optional"`
	// Rounds is the number of rounds of every match (>= 1, default 200);
	// tick t is round t.
	Rounds int `hcl:"rounds,optional"`
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

// settingError is a problem with one setting of the world block (and, for
// a map setting, one key of it). WorldSetting names them, so that the
// scenarios package can report the error at that setting's line.
type settingError struct {
	setting, key string
	err          error
}

func (e *settingError) Error() string                  { return e.err.Error() }
func (e *settingError) Unwrap() error                  { return e.err }
func (e *settingError) WorldSetting() (string, string) { return e.setting, e.key }

func settingErrorf(setting, key, format string, args ...any) error {
	return &settingError{setting: setting, key: key, err: fmt.Errorf(format, args...)}
}

// resolve checks c and fills in the defaults. It reports every problem at
// once (errors.Join), each its own error naming the setting to fix (see
// settingError). Unless the game is unknown it also returns the settings,
// so that the seats can be checked too.
func resolve(c Config) (*settings, error) {
	var errs []error
	if c.Rounds < 1 {
		errs = append(errs, settingErrorf("rounds", "", "rounds = %d: a match needs at least 1 round", c.Rounds))
	}
	pairing := c.Pairing
	if pairing == "" {
		pairing = PairingRoundRobin
	}
	if pairing != PairingRoundRobin {
		errs = append(errs, settingErrorf("pairing", "", "pairing = %q: unknown pairing (known: %s)", c.Pairing, PairingRoundRobin))
	}
	r, ok := games[c.Game]
	if !ok {
		// The payoffs and the moves depend on the game: not checked.
		errs = append(errs, settingErrorf("game", "", "game = %q: unknown game (known: %s)", c.Game, strings.Join(GameNames(), ", ")))
		return nil, errors.Join(errs...)
	}
	s := &settings{rules: r, rounds: c.Rounds, pairing: pairing, selfPlay: c.SelfPlay}

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
			errs = append(errs, settingErrorf("payoffs", k, "payoffs: unknown key %q (the %s payoffs are %s)", k, r.name, strings.Join(r.params, ", ")))
			payoffsOK = false
		case math.IsNaN(v) || math.IsInf(v, 0):
			errs = append(errs, settingErrorf("payoffs", k, "payoffs: %s = %g is not a finite number", k, v))
			payoffsOK = false
		default:
			s.params[i] = v
		}
	}
	if payoffsOK {
		if err := r.check(s.params); err != nil {
			errs = append(errs, settingErrorf("payoffs", "", "payoffs: %w", err))
		}
	}

	dm := c.DefaultMove
	if dm == "" {
		dm = r.moves[:1]
	}
	if len(dm) != 1 || strings.IndexByte(r.moves, dm[0]) < 0 {
		errs = append(errs, settingErrorf("default_move", "", "default_move = %q: not a move of %s (want %s)", c.DefaultMove, r.name, r.movesList()))
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
