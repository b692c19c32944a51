package game

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/terrarium-sim/terrarium/world"
)

// Result is the world's final summary (World.Result), written into result.json.
type Result struct {
	Game         string             `json:"game"`
	Pairing      string             `json:"pairing"`
	SelfPlay     bool               `json:"self_play"`
	Rounds       int                `json:"rounds"`        // rounds per match
	RoundsPlayed int                `json:"rounds_played"` // = Rounds once the world is done
	Payoffs      map[string]float64 `json:"payoffs"`
	Standings    []Standing         `json:"standings"` // by rank, ties by group name
	Matches      []MatchResult      `json:"matches"`   // in match id order
}

// Standing is one group's place in the ranking.
type Standing struct {
	// Rank is 1 for the best score; equal scores share a rank and the next
	// rank skips ("1224" ranking).
	Rank  int           `json:"rank"`
	Group string        `json:"group"`
	Agent world.AgentID `json:"agent"` // the ranked seat (index 1)
	// Score is the sum of the ranked seat's payoffs over all its matches (the
	// self-match once; a twin's payoffs never count).
	Score        float64 `json:"score"`
	Matches      int     `json:"matches"`
	MeanPerRound float64 `json:"mean_per_round"` // Score / (Matches * RoundsPlayed)
}

// MatchResult is one match's outcome.
type MatchResult struct {
	Match string `json:"match"`
	Self  bool   `json:"self,omitempty"` // a group's seat 1 against its twin
	Sides []Side `json:"sides"`
}

// Side is one player of a match.
type Side struct {
	Group string         `json:"group"`
	Agent world.AgentID  `json:"agent"`
	Score float64        `json:"score"`
	Moves map[string]int `json:"moves"` // how often it played each move
}

// Result returns the standings and match scores of the rounds played so far.
func (w *World) Result() any { return w.result() }

func (w *World) result() Result {
	r := Result{
		Game:         w.s.rules.name,
		Pairing:      w.s.pairing,
		SelfPlay:     w.s.selfPlay,
		Rounds:       w.s.rounds,
		RoundsPlayed: w.round,
		Payoffs:      w.s.payoffMap(),
		Matches:      make([]MatchResult, len(w.matches)),
	}
	score := make([]float64, len(w.seats)) // per seat; only ranked seats are read
	count := make([]int, len(w.seats))
	for mi := range w.matches {
		m := &w.matches[mi]
		mr := MatchResult{Match: m.id, Self: m.self, Sides: make([]Side, len(m.seats))}
		for side, si := range m.seats {
			st := w.seats[si].seat
			moves := make(map[string]int, len(w.s.rules.moves))
			for i := range w.s.rules.moves {
				moves[w.s.rules.moves[i:i+1]] = 0
			}
			for _, mv := range m.hist[side] {
				moves[string(mv)]++
			}
			mr.Sides[side] = Side{Group: st.Group, Agent: st.ID, Score: m.score[side], Moves: moves}
			score[si] += m.score[side]
			count[si]++
		}
		r.Matches[mi] = mr
	}
	r.Standings = make([]Standing, len(w.groups))
	for gi, g := range w.groups {
		si := w.ranked[gi]
		r.Standings[gi] = Standing{
			Group:        g,
			Agent:        w.seats[si].seat.ID,
			Score:        score[si],
			Matches:      count[si],
			MeanPerRound: ratio(score[si], count[si]*w.round),
		}
	}
	rank(r.Standings)
	return r
}

// rank orders standings by score, best first, equal scores by group name,
// and sets their ranks: equal scores share a rank, the next one skips.
func rank(st []Standing) {
	sort.Slice(st, func(i, j int) bool {
		if st[i].Score != st[j].Score {
			return st[i].Score > st[j].Score
		}
		return st[i].Group < st[j].Group
	})
	for i := range st {
		if i > 0 && st[i].Score == st[i-1].Score {
			st[i].Rank = st[i-1].Rank
		} else {
			st[i].Rank = i + 1
		}
	}
}

// Table is the ranking: rank, strategy (group), score, matches, mean payoff per round.
func (w *World) Table() world.Table {
	r := w.result()
	title := fmt.Sprintf("%s, %s, %d of %d rounds per match", r.Game, r.Pairing, r.RoundsPlayed, r.Rounds)
	if r.SelfPlay {
		title += ", with self-play"
	}
	t := world.Table{
		Title:   title,
		Columns: []string{"rank", "strategy", "score", "matches", "per round"},
		Rows:    make([][]string, len(r.Standings)),
	}
	for i, s := range r.Standings {
		t.Rows[i] = []string{
			strconv.Itoa(s.Rank),
			s.Group,
			strconv.FormatFloat(s.Score, 'f', -1, 64),
			strconv.Itoa(s.Matches),
			strconv.FormatFloat(s.MeanPerRound, 'f', 3, 64),
		}
	}
	return t
}

// viewMoves is how many of a match's latest moves the dashboard shows.
const viewMoves = 16

// View is the ranking so far and the match table: each match's sides,
// scores and latest moves.
func (w *World) View() world.View {
	mt := world.Table{Title: fmt.Sprintf("matches after round %d", w.round),
		Columns: []string{"match", "side 1", "side 2", "score", "latest moves"}}
	for mi := range w.matches {
		m := &w.matches[mi]
		row := []string{m.id}
		var scores, moves []string
		for side, si := range m.seats {
			if side < 2 {
				row = append(row, string(w.seats[si].seat.ID))
			}
			scores = append(scores, strconv.FormatFloat(m.score[side], 'f', -1, 64))
			h := m.hist[side]
			moves = append(moves, string(h[max(0, len(h)-viewMoves):]))
		}
		for len(row) < 3 {
			row = append(row, "")
		}
		row = append(row, strings.Join(scores, " : "), strings.Join(moves, " / "))
		mt.Rows = append(mt.Rows, row)
	}
	return world.View{Tables: []world.Table{w.Table(), mt}}
}
