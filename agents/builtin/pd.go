package builtin

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"

	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/world/game"
)

// A pdStrategy picks the next move of one prisoner's dilemma match from the
// history so far: you holds its own moves, them the opponent's, oldest
// first, one 'C' or 'D' per round. It returns 'C' or 'D'. Strategies are pure
// functions of the history, so a restarted agent plays on correctly.
type pdStrategy func(you, them string) byte

// pdStrategies are the tournament strategies, registered as builtin programs
// under these names. They play the repeated_game world (world/game).
var pdStrategies = map[string]pdStrategy{
	"cooperator":             cooperator,
	"defector":               defector,
	"tit_for_tat":            titForTat,
	"grudger":                grudger,
	"tit_for_two_tats":       titForTwoTats,
	"suspicious_tit_for_tat": suspiciousTitForTat,
	"alternator":             alternator,
	"pavlov":                 pavlov,
}

func init() {
	for name, s := range pdStrategies {
		Register(name, Respond(pdHandler(s)))
	}
}

// cooperator always cooperates.
func cooperator(_, _ string) byte { return 'C' }

// defector always defects.
func defector(_, _ string) byte { return 'D' }

// titForTat cooperates first, then copies the opponent's last move.
func titForTat(_, them string) byte {
	if them == "" {
		return 'C'
	}
	return them[len(them)-1]
}

// grudger cooperates until the opponent defects once, then always defects.
func grudger(_, them string) byte {
	if strings.IndexByte(them, 'D') >= 0 {
		return 'D'
	}
	return 'C'
}

// titForTwoTats defects only after two consecutive opponent defections.
func titForTwoTats(_, them string) byte {
	if n := len(them); n >= 2 && them[n-1] == 'D' && them[n-2] == 'D' {
		return 'D'
	}
	return 'C'
}

// suspiciousTitForTat defects first, then copies the opponent's last move.
func suspiciousTitForTat(_, them string) byte {
	if them == "" {
		return 'D'
	}
	return them[len(them)-1]
}

// alternator plays C, D, C, D, ...
func alternator(you, _ string) byte {
	if len(you)%2 == 0 {
		return 'C'
	}
	return 'D'
}

// pavlov (win-stay, lose-shift) cooperates first; then it repeats its last
// move after a payoff of R or T (the opponent cooperated) and switches after
// S or P (the opponent defected).
func pavlov(you, them string) byte {
	if you == "" || them == "" {
		return 'C'
	}
	mine := you[len(you)-1]
	if them[len(them)-1] == 'C' {
		return mine
	}
	if mine == 'C' {
		return 'D'
	}
	return 'C'
}

// pdHandler answers a repeated_game observation with s's move in every match.
func pdHandler(s pdStrategy) sdk.Handler {
	return func(_ context.Context, obs sdk.Observation) (any, error) {
		var o game.Observation
		if err := json.Unmarshal(obs.Data, &o); err != nil {
			return nil, fmt.Errorf("decode observation of tick %d: %w", obs.Tick, err)
		}
		act := game.Action{Moves: make(map[string]string, len(o.Matches))}
		for _, m := range o.Matches {
			if len(m.You) != len(m.Them) {
				return nil, fmt.Errorf("tick %d match %s: histories of %d and %d moves", obs.Tick, m.Match, len(m.You), len(m.Them))
			}
			act.Moves[m.Match] = string(s(m.You, m.Them))
		}
		return act, nil
	}
}

func init() {
	Register("random", func(ctx context.Context, a *sdk.Agent) error {
		return a.Run(ctx, randomHandler(a.Seed()))
	})
}

// randomMove is the random strategy's move in one match at one round: C or
// D with equal odds, drawn from the agent's seed (TERRARIUM_SEED), the match
// and the round. It depends on nothing else, so the same seed plays the
// same moves, and a restarted or resumed agent plays on exactly as if it
// had never stopped.
func randomMove(seed uint64, match string, round int) byte {
	h := fnv.New64a()
	h.Write([]byte(match))
	r := rand.New(rand.NewPCG(seed, h.Sum64()^uint64(round)<<1))
	if r.IntN(2) == 0 {
		return 'C'
	}
	return 'D'
}

// randomHandler answers with randomMove in every match, at the round its
// history says is next.
func randomHandler(seed uint64) sdk.Handler {
	return func(_ context.Context, obs sdk.Observation) (any, error) {
		var o game.Observation
		if err := json.Unmarshal(obs.Data, &o); err != nil {
			return nil, fmt.Errorf("decode observation of tick %d: %w", obs.Tick, err)
		}
		act := game.Action{Moves: make(map[string]string, len(o.Matches))}
		for _, m := range o.Matches {
			act.Moves[m.Match] = string(randomMove(seed, m.Match, len(m.You)+1))
		}
		return act, nil
	}
}
