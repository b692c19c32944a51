package game

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"github.com/terrarium-sim/terrarium/world"
)

// KindName is the world kind this package registers.
const KindName = "repeated_game"

func init() {
	world.Register(world.Kind{
		Name:      KindName,
		Doc:       "repeated N-player game (prisoner's dilemma round-robin tournaments); one round per tick",
		NewConfig: func() any { return NewConfig() },
		New: func(config any, seats []world.Seat) (world.World, error) {
			c, err := world.ConfigAs[Config](KindName, config)
			if err != nil {
				return nil, err
			}
			return New(c, seats)
		},
	})
}

// World is a repeated game between groups of seats. Create it with New.
// Like every world.World it is owned by one goroutine.
type World struct {
	s       *settings
	seats   []seatState
	seatIdx map[world.AgentID]int
	groups  []string // group names, sorted
	ranked  []int    // per group: index into seats of its index-1 seat
	twin    []int    // per group, with self_play: index into seats of its index-2 seat
	matches []match
	byID    map[string]int // match id -> index in matches
	round   int            // rounds played; the next tick is round+1

	// scratch for Step, reused
	pending [][]byte
	out     []float64
	given   []bool
}

type seatState struct {
	seat  world.Seat
	plays []play // the matches this seat plays, in match order
}

type play struct {
	match int
	side  int
}

type match struct {
	id    string
	self  bool
	seats []int     // index into World.seats, one per side
	hist  [][]byte  // per side: its moves so far, oldest first
	score []float64 // per side: its payoff so far
}

// New checks the config and the seats and builds the world at round 0.
//
// Seats: one per agent; each group (agent block) is one player. Without
// self_play every group must have exactly one seat; with self_play exactly
// two: index 1 is the ranked player, index 2 its twin, which plays only the
// self-match against index 1.
func New(c Config, seats []world.Seat) (*World, error) {
	s, err := resolve(c)
	if s == nil {
		return nil, err
	}
	w := &World{s: s, seatIdx: make(map[world.AgentID]int, len(seats))}
	if err := errors.Join(err, w.placeSeats(seats)); err != nil {
		return nil, err
	}
	w.pairUp()
	w.pending = make([][]byte, len(w.matches))
	for i := range w.pending {
		w.pending[i] = make([]byte, s.rules.players)
	}
	w.out = make([]float64, s.rules.players)
	w.given = make([]bool, len(w.seats))
	return w, nil
}

// placeSeats checks the seats against the pairing and records them.
func (w *World) placeSeats(seats []world.Seat) error {
	if len(seats) == 0 {
		return errors.New("repeated_game has no agents: add one agent block per strategy")
	}
	byGroup := map[string][]world.Seat{}
	var errs []error
	for _, st := range seats {
		if _, dup := w.seatIdx[st.ID]; dup {
			errs = append(errs, fmt.Errorf("agent id %q appears twice", st.ID))
			continue
		}
		if st.Group == "" {
			errs = append(errs, fmt.Errorf("agent %q has no group", st.ID))
			continue
		}
		w.seatIdx[st.ID] = len(w.seats)
		w.seats = append(w.seats, seatState{seat: st})
		byGroup[st.Group] = append(byGroup[st.Group], st)
	}
	for g := range byGroup {
		w.groups = append(w.groups, g)
	}
	sort.Strings(w.groups)
	want := 1
	if w.s.selfPlay {
		want = 2
	}
	for _, g := range w.groups {
		gs := byGroup[g]
		if len(gs) != want {
			if w.s.selfPlay {
				errs = append(errs, fmt.Errorf("self_play needs count = 2 on every agent block; group %q has %d", g, len(gs)))
			} else {
				errs = append(errs, fmt.Errorf("without self_play every agent block needs count = 1 (one player per strategy); group %q has %d (set count = 1, or self_play = true with count = 2)", g, len(gs)))
			}
			continue
		}
		seen := map[int]bool{}
		for _, st := range gs {
			if st.Index < 1 || st.Index > want || seen[st.Index] {
				errs = append(errs, fmt.Errorf("group %q: agent %q has index %d, want each of 1..%d once", g, st.ID, st.Index, want))
			}
			seen[st.Index] = true
		}
	}
	if len(errs) == 0 && len(w.groups) < 2 && !w.s.selfPlay {
		errs = append(errs, fmt.Errorf("round_robin needs at least 2 agent blocks (strategies); got %d (add another, or set self_play = true with count = 2)", len(w.groups)))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	w.ranked = make([]int, len(w.groups))
	w.twin = make([]int, len(w.groups))
	for gi, g := range w.groups {
		for _, st := range byGroup[g] {
			if st.Index == 1 {
				w.ranked[gi] = w.seatIdx[st.ID]
			} else {
				w.twin[gi] = w.seatIdx[st.ID]
			}
		}
	}
	return nil
}

// pairUp makes the matches: for every group i in name order, its self-match
// (with self_play) and then its match against every later group j. Match ids
// are "m" and the match's 1-based number, zero-padded to at least 2 digits.
func (w *World) pairUp() {
	type pair struct{ a, b int } // seat indices
	var pairs []pair
	var self []bool
	for i := range w.groups {
		if w.s.selfPlay {
			pairs = append(pairs, pair{w.ranked[i], w.twin[i]})
			self = append(self, true)
		}
		for j := i + 1; j < len(w.groups); j++ {
			pairs = append(pairs, pair{w.ranked[i], w.ranked[j]})
			self = append(self, false)
		}
	}
	width := max(2, len(strconv.Itoa(len(pairs))))
	w.matches = make([]match, len(pairs))
	w.byID = make(map[string]int, len(pairs))
	for mi, p := range pairs {
		m := &w.matches[mi]
		m.id = fmt.Sprintf("m%0*d", width, mi+1)
		m.self = self[mi]
		m.seats = []int{p.a, p.b}
		m.hist = make([][]byte, len(m.seats))
		m.score = make([]float64, len(m.seats))
		for side, si := range m.seats {
			m.hist[side] = make([]byte, 0, w.s.rounds)
			w.seats[si].plays = append(w.seats[si].plays, play{match: mi, side: side})
		}
		w.byID[m.id] = mi
	}
}

// nextTick is the tick the world will step next.
func (w *World) nextTick() world.Tick { return world.Tick(w.round + 1) }

func (w *World) seat(id world.AgentID) (*seatState, error) {
	i, ok := w.seatIdx[id]
	if !ok {
		return nil, fmt.Errorf("unknown agent %q", id)
	}
	return &w.seats[i], nil
}

// Observe returns id's observation for tick t (see the package doc for its
// JSON). ok is false once every round has been played.
func (w *World) Observe(id world.AgentID, t world.Tick) (json.RawMessage, bool, error) {
	st, err := w.seat(id)
	if err != nil {
		return nil, false, fmt.Errorf("observe: %w", err)
	}
	if w.Done() || len(st.plays) == 0 {
		return nil, false, nil
	}
	if t != w.nextTick() {
		return nil, false, fmt.Errorf("observe %s at tick %d: the world is at tick %d", id, t, w.nextTick())
	}
	return w.encodeObservation(st), true, nil
}

// Validate accepts exactly {"moves":{MATCH:MOVE,...}} with one legal move for
// every match the agent plays, tagged with the tick about to be stepped.
func (w *World) Validate(a world.Action) error {
	st, err := w.seat(a.Agent)
	if err != nil {
		return err
	}
	if a.Tick != w.nextTick() {
		return fmt.Errorf("wrong tick %d: the world is at tick %d", a.Tick, w.nextTick())
	}
	_, err = w.parseAction(st, a.Data)
	return err
}

// DefaultAction plays the default move in every match of id.
func (w *World) DefaultAction(id world.AgentID, _ world.Tick) json.RawMessage {
	var plays []play
	if i, ok := w.seatIdx[id]; ok {
		plays = w.seats[i].plays
	}
	b := append([]byte(nil), `{"moves":{`...)
	for k, p := range plays {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, w.matches[p.match].id...)
		b = append(b, `":"`...)
		b = append(b, w.s.defaultMove, '"')
	}
	b = append(b, "}}"...)
	return b
}

// parseAction decodes an action of st into one move per play, in play order.
func (w *World) parseAction(st *seatState, data json.RawMessage) ([]byte, error) {
	act, err := decodeAction(data)
	if err != nil {
		return nil, err
	}
	moves := make([]byte, len(st.plays))
	keys := make([]string, 0, len(act.Moves))
	for k := range act.Moves {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var problems []string
	for _, k := range keys {
		v := act.Moves[k]
		pi := -1
		if mi, ok := w.byID[k]; ok {
			for i, p := range st.plays {
				if p.match == mi {
					pi = i
					break
				}
			}
		}
		if pi < 0 {
			problems = append(problems, fmt.Sprintf("unknown match %q (you play %s)", k, w.matchList(st)))
			continue
		}
		if len(v) != 1 || strings.IndexByte(w.s.rules.moves, v[0]) < 0 {
			problems = append(problems, fmt.Sprintf("match %q: bad move %q (want %s)", k, v, w.s.rules.movesList()))
			continue
		}
		moves[pi] = v[0]
	}
	for _, p := range st.plays {
		if _, ok := act.Moves[w.matches[p.match].id]; !ok {
			problems = append(problems, fmt.Sprintf("missing move for match %q", w.matches[p.match].id))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("invalid action: %s", strings.Join(problems, "; "))
	}
	return moves, nil
}

func (w *World) matchList(st *seatState) string {
	ids := make([]string, len(st.plays))
	for i, p := range st.plays {
		ids[i] = w.matches[p.match].id
	}
	return strings.Join(ids, ", ")
}

// Step plays round t of every match. Each agent's action must be valid (as
// Validate checks); an agent without an action plays the default move. On
// error the world is unchanged.
func (w *World) Step(t world.Tick, actions []world.Action, _ *rand.Rand) (world.StepResult, error) {
	if w.Done() {
		return world.StepResult{}, fmt.Errorf("step tick %d: all %d rounds have been played", t, w.s.rounds)
	}
	if t != w.nextTick() {
		return world.StepResult{}, fmt.Errorf("step tick %d: the world is at tick %d", t, w.nextTick())
	}
	for mi := range w.pending {
		for side := range w.pending[mi] {
			w.pending[mi][side] = w.s.defaultMove
		}
	}
	clear(w.given)
	for _, a := range actions {
		i, ok := w.seatIdx[a.Agent]
		if !ok {
			return world.StepResult{}, fmt.Errorf("step tick %d: action from unknown agent %q", t, a.Agent)
		}
		if w.given[i] {
			return world.StepResult{}, fmt.Errorf("step tick %d: two actions from agent %q", t, a.Agent)
		}
		w.given[i] = true
		if a.Tick != t {
			return world.StepResult{}, fmt.Errorf("step tick %d: action from %q is tagged tick %d", t, a.Agent, a.Tick)
		}
		st := &w.seats[i]
		moves, err := w.parseAction(st, a.Data)
		if err != nil {
			return world.StepResult{}, fmt.Errorf("step tick %d: agent %s: %w", t, a.Agent, err)
		}
		for k, p := range st.plays {
			w.pending[p.match][p.side] = moves[k]
		}
	}

	first := w.s.rules.moves[0]
	var plays, firsts int
	var total float64
	for mi := range w.matches {
		m := &w.matches[mi]
		mv := w.pending[mi]
		w.s.rules.score(w.s.params, mv, w.out)
		for side := range m.seats {
			m.hist[side] = append(m.hist[side], mv[side])
			m.score[side] += w.out[side]
			total += w.out[side]
			plays++
			if mv[side] == first {
				firsts++
			}
		}
	}
	w.round++

	res := world.StepResult{Metrics: map[string]float64{
		w.s.rules.shareMetric: ratio(float64(firsts), plays),
		"mean_payoff":         ratio(total, plays),
	}}
	if w.Done() {
		for mi := range w.matches {
			m := &w.matches[mi]
			groups := make([]string, len(m.seats))
			agents := make([]string, len(m.seats))
			for side, si := range m.seats {
				groups[side] = w.seats[si].seat.Group
				agents[side] = string(w.seats[si].seat.ID)
			}
			res.Events = append(res.Events, world.Event{Kind: "match_finished", Fields: map[string]any{
				"match":  m.id,
				"groups": groups,
				"agents": agents,
				"scores": append([]float64(nil), m.score...),
			}})
		}
	}
	return res, nil
}

func ratio(x float64, n int) float64 {
	if n == 0 {
		return 0
	}
	return x / float64(n)
}

// Done reports that every round has been played.
func (w *World) Done() bool { return w.round >= w.s.rounds }

// Metrics names the per-tick metrics: the share of the game's first move
// ("cooperation_rate" for the prisoner's dilemma) among all moves of the
// round, and the mean payoff of a move in the round. Twins count.
func (w *World) Metrics() []string {
	return []string{w.s.rules.shareMetric, "mean_payoff"}
}
