package game

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/terrarium-sim/terrarium/world"
)

// snapshotVersion is the version of the snapshot and state hash encodings.
const snapshotVersion = 1

// snapshot is the JSON of Snapshot. The state is the move histories; scores
// are recomputed from them on Restore. The other fields identify the world
// it belongs to.
type snapshot struct {
	Version     int                `json:"v"`
	Game        string             `json:"game"`
	Rounds      int                `json:"rounds"`
	Payoffs     map[string]float64 `json:"payoffs"`
	DefaultMove string             `json:"default_move"`
	Round       int                `json:"round"`
	Matches     []snapshotMatch    `json:"matches"`
}

type snapshotMatch struct {
	Match  string          `json:"match"`
	Agents []world.AgentID `json:"agents"`
	Moves  []string        `json:"moves"` // per side, as in the observation
}

// Snapshot encodes the state as JSON.
func (w *World) Snapshot() ([]byte, error) {
	s := snapshot{
		Version:     snapshotVersion,
		Game:        w.s.rules.name,
		Rounds:      w.s.rounds,
		Payoffs:     w.s.payoffMap(),
		DefaultMove: string(w.s.defaultMove),
		Round:       w.round,
		Matches:     make([]snapshotMatch, len(w.matches)),
	}
	for mi := range w.matches {
		m := &w.matches[mi]
		sm := snapshotMatch{Match: m.id, Agents: make([]world.AgentID, len(m.seats)), Moves: make([]string, len(m.seats))}
		for side, si := range m.seats {
			sm.Agents[side] = w.seats[si].seat.ID
			sm.Moves[side] = string(m.hist[side])
		}
		s.Matches[mi] = sm
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("repeated_game snapshot: %w", err)
	}
	return b, nil
}

// Restore replaces the state with a snapshot taken from a world built from
// the same config and seats. On error the world is unchanged.
func (w *World) Restore(b []byte) error {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("repeated_game restore: %w", err)
	}
	if err := w.checkSnapshot(&s); err != nil {
		return fmt.Errorf("repeated_game restore: %w", err)
	}
	hist := make([][][]byte, len(w.matches))
	score := make([][]float64, len(w.matches))
	mv := make([]byte, w.s.rules.players)
	for mi := range w.matches {
		sm := s.Matches[mi]
		hist[mi] = make([][]byte, len(sm.Moves))
		score[mi] = make([]float64, len(sm.Moves))
		for side, h := range sm.Moves {
			hist[mi][side] = append(make([]byte, 0, w.s.rounds), h...)
		}
		// Same order of additions as Step, so the same floats.
		for r := range s.Round {
			for side := range mv {
				mv[side] = hist[mi][side][r]
			}
			w.s.rules.score(w.s.params, mv, w.out)
			for side := range mv {
				score[mi][side] += w.out[side]
			}
		}
	}
	for mi := range w.matches {
		w.matches[mi].hist = hist[mi]
		w.matches[mi].score = score[mi]
	}
	w.round = s.Round
	return nil
}

func (w *World) checkSnapshot(s *snapshot) error {
	if s.Version != snapshotVersion {
		return fmt.Errorf("snapshot version %d, want %d", s.Version, snapshotVersion)
	}
	if s.Game != w.s.rules.name || s.Rounds != w.s.rounds || s.DefaultMove != string(w.s.defaultMove) {
		return fmt.Errorf("snapshot is of game %q, %d rounds, default move %q; this world is %q, %d rounds, default move %q",
			s.Game, s.Rounds, s.DefaultMove, w.s.rules.name, w.s.rounds, string(w.s.defaultMove))
	}
	want := w.s.payoffMap()
	if len(s.Payoffs) != len(want) {
		return fmt.Errorf("snapshot payoffs %v differ from this world's %v", s.Payoffs, want)
	}
	for k, v := range want {
		if got, ok := s.Payoffs[k]; !ok || got != v {
			return fmt.Errorf("snapshot payoffs %v differ from this world's %v", s.Payoffs, want)
		}
	}
	if s.Round < 0 || s.Round > w.s.rounds {
		return fmt.Errorf("snapshot round %d out of range 0..%d", s.Round, w.s.rounds)
	}
	if len(s.Matches) != len(w.matches) {
		return fmt.Errorf("snapshot has %d matches, this world %d", len(s.Matches), len(w.matches))
	}
	for mi := range w.matches {
		m, sm := &w.matches[mi], s.Matches[mi]
		if sm.Match != m.id || len(sm.Agents) != len(m.seats) || len(sm.Moves) != len(m.seats) {
			return fmt.Errorf("snapshot match %d is %q with %d agents; this world's is %q with %d", mi+1, sm.Match, len(sm.Agents), m.id, len(m.seats))
		}
		for side, si := range m.seats {
			if sm.Agents[side] != w.seats[si].seat.ID {
				return fmt.Errorf("snapshot match %s side %d is agent %q; this world's is %q", m.id, side+1, sm.Agents[side], w.seats[si].seat.ID)
			}
			h := sm.Moves[side]
			if len(h) != s.Round {
				return fmt.Errorf("snapshot match %s side %d has %d moves after round %d", m.id, side+1, len(h), s.Round)
			}
			for i := range len(h) {
				if strings.IndexByte(w.s.rules.moves, h[i]) < 0 {
					return fmt.Errorf("snapshot match %s side %d: bad move %q in round %d", m.id, side+1, h[i:i+1], i+1)
				}
			}
		}
	}
	return nil
}

// StateHash is the hex SHA-256 of a canonical text encoding of the state:
//
//	repeated_game/1
//	game=NAME rounds=N default_move=M round=R
//	payoff NAME=VALUE       (one line per payoff, in the game's order)
//	match ID AGENT AGENT    (then one line of moves per side)
//
// Agent ids and match ids hold no spaces or newlines, so it is unambiguous.
func (w *World) StateHash() string {
	h := sha256.New()
	w.writeCanonical(h)
	return hex.EncodeToString(h.Sum(nil))
}

func (w *World) writeCanonical(h hash.Hash) {
	b := make([]byte, 0, 256)
	b = append(b, "repeated_game/"...)
	b = strconv.AppendInt(b, snapshotVersion, 10)
	b = append(b, "\ngame="...)
	b = append(b, w.s.rules.name...)
	b = append(b, " rounds="...)
	b = strconv.AppendInt(b, int64(w.s.rounds), 10)
	b = append(b, " default_move="...)
	b = append(b, w.s.defaultMove)
	b = append(b, " round="...)
	b = strconv.AppendInt(b, int64(w.round), 10)
	b = append(b, '\n')
	for i, n := range w.s.rules.params {
		b = append(b, "payoff "...)
		b = append(b, n...)
		b = append(b, '=')
		b = strconv.AppendFloat(b, w.s.params[i], 'g', -1, 64)
		b = append(b, '\n')
	}
	h.Write(b)
	for mi := range w.matches {
		m := &w.matches[mi]
		b = append(b[:0], "match "...)
		b = append(b, m.id...)
		for _, si := range m.seats {
			b = append(b, ' ')
			b = append(b, w.seats[si].seat.ID...)
		}
		b = append(b, '\n')
		h.Write(b)
		for side := range m.seats {
			h.Write(m.hist[side])
			h.Write([]byte{'\n'})
		}
	}
}
