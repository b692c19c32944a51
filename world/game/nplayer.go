package game

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/terrarium-sim/terrarium/world"
)

// NPlayerKindName is the N-player game kind: every seat plays one game
// together each round (El Farol, the minority game). The repeated_game
// kind's pairwise matches between one-seat strategies do not fit a game
// whose payoff depends on what all N players did, so it is a kind of its own.
const NPlayerKindName = "nplayer_game"

// N-player games (the nplayer_game world's game setting).
const (
	ElFarol  = "el_farol"
	Minority = "minority"
)

func init() {
	world.Register(world.Kind{
		Name:      NPlayerKindName,
		Doc:       "repeated N-player game (El Farol bar, minority game); every agent plays one round per tick",
		NewConfig: func() any { return NewNPlayerConfig() },
		New: func(config any, seats []world.Seat) (world.World, error) {
			c, err := world.ConfigAs[NPlayerConfig](NPlayerKindName, config)
			if err != nil {
				return nil, err
			}
			return NewNPlayer(c, seats)
		},
	})
}

// NPlayerConfig is the world block of an nplayer_game scenario.
type NPlayerConfig struct {
	// Game is "el_farol" or "minority". Required.
	Game string `hcl:"game"`
	// Rounds is the number of rounds, one per tick (default 1000).
	Rounds int `hcl:"rounds,optional"`
	// Threshold (el_farol): the bar is crowded when more than Threshold
	// go (default 60).
	Threshold int `hcl:"threshold,optional"`
	// History is how many past rounds the observation shows (default 32, at most 1024).
	History int `hcl:"history,optional"`
	// MeasureFrom is the first round the result's statistics count (default 1).
	MeasureFrom int `hcl:"measure_from,optional"`
	// DefaultMove is played for an agent that sent no action (default: the
	// game's second move, "S" stay or "B").
	DefaultMove string `hcl:"default_move,optional"`
}

// NewNPlayerConfig returns the defaults.
func NewNPlayerConfig() *NPlayerConfig {
	return &NPlayerConfig{Rounds: 1000, Threshold: 60, History: 32, MeasureFrom: 1}
}

var nplayerMoves = map[string]string{ElFarol: "GS", Minority: "AB"}

// NPlayerObservation is what every seat gets each round.
type NPlayerObservation struct {
	Game      string `json:"game"`
	Round     int    `json:"round"` // the round to play now (= the tick)
	Rounds    int    `json:"rounds"`
	Players   int    `json:"players"`
	Threshold int    `json:"threshold,omitempty"` // el_farol
	// History holds the attendance (how many played the game's first move,
	// "G" or "A") of the last rounds, oldest first; You the agent's own moves
	// in the same rounds.
	History []int  `json:"history"`
	You     string `json:"you"`
}

// NPlayerAction is one move: "G" (go) or "S" (stay) at El Farol, "A" or "B"
// in the minority game.
type NPlayerAction struct {
	Move string `json:"move"`
}

// NPlayer is an nplayer_game world. Create it with NewNPlayer.
type NPlayer struct {
	c       NPlayerConfig
	moves   string
	seats   []world.Seat
	idx     map[world.AgentID]int
	hist    [][]byte // per seat: its moves, one per round played
	attend  []int    // per round played: attendance
	score   []float64
	pending []byte
}

// NewNPlayer checks the config and the seats.
func NewNPlayer(c NPlayerConfig, seats []world.Seat) (*NPlayer, error) {
	var errs []error
	mv, ok := nplayerMoves[c.Game]
	if !ok {
		errs = append(errs, settingErrorf("game", "", "game = %q: unknown N-player game (known: %s, %s)", c.Game, ElFarol, Minority))
	}
	if c.Rounds < 1 {
		errs = append(errs, settingErrorf("rounds", "", "rounds = %d: want at least 1", c.Rounds))
	}
	if c.History < 0 || c.History > 1024 {
		errs = append(errs, settingErrorf("history", "", "history = %d: want 0 to 1024 rounds", c.History))
	}
	if c.MeasureFrom < 1 {
		errs = append(errs, settingErrorf("measure_from", "", "measure_from = %d: rounds start at 1", c.MeasureFrom))
	}
	if len(seats) == 0 {
		errs = append(errs, errors.New("nplayer_game has no agents: add an agent block"))
	}
	if c.Game == ElFarol && (c.Threshold < 0 || c.Threshold > len(seats)) {
		errs = append(errs, settingErrorf("threshold", "", "threshold = %d: want 0 to the number of agents (%d)", c.Threshold, len(seats)))
	}
	if c.Game == Minority && len(seats)%2 == 0 {
		errs = append(errs, fmt.Errorf("the minority game needs an odd number of agents, so that there is always a minority; got %d", len(seats)))
	}
	if c.Game != ElFarol && c.Threshold != NewNPlayerConfig().Threshold {
		errs = append(errs, settingErrorf("threshold", "", "threshold is a setting of game = %q only", ElFarol))
	}
	if ok {
		if c.DefaultMove == "" {
			c.DefaultMove = mv[1:]
		}
		if len(c.DefaultMove) != 1 || !strings.Contains(mv, c.DefaultMove) {
			errs = append(errs, settingErrorf("default_move", "", "default_move = %q: not a move of %s (want %q or %q)", c.DefaultMove, c.Game, mv[:1], mv[1:]))
		}
	}
	w := &NPlayer{c: c, moves: mv, idx: map[world.AgentID]int{}}
	for _, s := range seats {
		if _, dup := w.idx[s.ID]; dup {
			errs = append(errs, fmt.Errorf("agent id %q appears twice", s.ID))
			continue
		}
		w.idx[s.ID] = len(w.seats)
		w.seats = append(w.seats, s)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	w.hist = make([][]byte, len(w.seats))
	w.score = make([]float64, len(w.seats))
	w.pending = make([]byte, len(w.seats))
	return w, nil
}

func (w *NPlayer) round() int { return len(w.attend) }

// Observe returns the round's observation; ok is false once done.
func (w *NPlayer) Observe(id world.AgentID, t world.Tick) (json.RawMessage, bool, error) {
	i, ok := w.idx[id]
	if !ok {
		return nil, false, fmt.Errorf("observe: unknown agent %q", id)
	}
	if w.Done() {
		return nil, false, nil
	}
	if int(t) != w.round()+1 {
		return nil, false, fmt.Errorf("observe %s at tick %d: the world is at tick %d", id, t, w.round()+1)
	}
	from := max(0, w.round()-w.c.History)
	o := NPlayerObservation{Game: w.c.Game, Round: w.round() + 1, Rounds: w.c.Rounds, Players: len(w.seats),
		History: append([]int{}, w.attend[from:]...), You: string(w.hist[i][from:])}
	if w.c.Game == ElFarol {
		o.Threshold = w.c.Threshold
	}
	b, err := json.Marshal(o)
	return b, err == nil, err
}

func (w *NPlayer) parse(data json.RawMessage) (byte, error) {
	var a NPlayerAction
	if err := decodeStrictInto(data, &a); err != nil {
		return 0, fmt.Errorf(`malformed action (want {"move":"%s"}): %w`, w.moves[:1], err)
	}
	if len(a.Move) != 1 || !strings.Contains(w.moves, a.Move) {
		return 0, fmt.Errorf("bad move %q (want %q or %q)", a.Move, w.moves[:1], w.moves[1:])
	}
	return a.Move[0], nil
}

// Validate accepts {"move":M} with one of the game's moves, for this round.
func (w *NPlayer) Validate(a world.Action) error {
	if _, ok := w.idx[a.Agent]; !ok {
		return fmt.Errorf("unknown agent %q", a.Agent)
	}
	if int(a.Tick) != w.round()+1 {
		return fmt.Errorf("wrong tick %d: the world is at tick %d", a.Tick, w.round()+1)
	}
	_, err := w.parse(a.Data)
	return err
}

// DefaultAction plays default_move.
func (w *NPlayer) DefaultAction(world.AgentID, world.Tick) json.RawMessage {
	return json.RawMessage(`{"move":"` + w.c.DefaultMove + `"}`)
}

// payoff is the payoff of move m in a round of attendance a.
func (w *NPlayer) payoff(m byte, a int) float64 {
	n := len(w.seats)
	switch w.c.Game {
	case ElFarol:
		if m != w.moves[0] {
			return 0
		}
		if a > w.c.Threshold {
			return -1
		}
		return 1
	default: // minority: the side fewer chose wins
		mine := a
		if m != w.moves[0] {
			mine = n - a
		}
		if 2*mine < n {
			return 1
		}
		return -1
	}
}

// Step plays one round with every seat's move (the default for a missing one).
func (w *NPlayer) Step(t world.Tick, actions []world.Action, _ *rand.Rand) (world.StepResult, error) {
	if w.Done() {
		return world.StepResult{}, fmt.Errorf("step tick %d: all %d rounds have been played", t, w.c.Rounds)
	}
	if int(t) != w.round()+1 {
		return world.StepResult{}, fmt.Errorf("step tick %d: the world is at tick %d", t, w.round()+1)
	}
	for i := range w.pending {
		w.pending[i] = w.c.DefaultMove[0]
	}
	seen := make([]bool, len(w.seats))
	for _, a := range actions {
		i, ok := w.idx[a.Agent]
		if !ok {
			return world.StepResult{}, fmt.Errorf("step tick %d: action from unknown agent %q", t, a.Agent)
		}
		if seen[i] {
			return world.StepResult{}, fmt.Errorf("step tick %d: two actions from agent %q", t, a.Agent)
		}
		seen[i] = true
		m, err := w.parse(a.Data)
		if err != nil {
			return world.StepResult{}, fmt.Errorf("step tick %d: agent %s: %w", t, a.Agent, err)
		}
		w.pending[i] = m
	}
	w.apply(w.pending)
	return world.StepResult{Metrics: w.metricsOf(w.round() - 1)}, nil
}

// apply plays one round of moves (one per seat).
func (w *NPlayer) apply(moves []byte) {
	a := 0
	for _, m := range moves {
		if m == w.moves[0] {
			a++
		}
	}
	for i, m := range moves {
		w.hist[i] = append(w.hist[i], m)
		w.score[i] += w.payoff(m, a)
	}
	w.attend = append(w.attend, a)
}

func (w *NPlayer) metricsOf(r int) map[string]float64 {
	a := w.attend[r]
	n := len(w.seats)
	m := map[string]float64{"attendance": float64(a)}
	if w.c.Game == ElFarol {
		m["crowded"] = 0
		if a > w.c.Threshold {
			m["crowded"] = 1
		}
	} else {
		m["excess"] = float64(2*a - n)
	}
	return m
}

// Done reports that every round has been played.
func (w *NPlayer) Done() bool { return w.round() >= w.c.Rounds }

// Metrics: "attendance" (how many played "G" or "A"), then "crowded" (El
// Farol: 1 when attendance > threshold) or "excess" (minority: #A - #B).
func (w *NPlayer) Metrics() []string {
	if w.c.Game == ElFarol {
		return []string{"attendance", "crowded"}
	}
	return []string{"attendance", "excess"}
}

// NPlayerResult is the nplayer_game's summary in result.json.
type NPlayerResult struct {
	Game         string `json:"game"`
	Players      int    `json:"players"`
	Rounds       int    `json:"rounds"`
	RoundsPlayed int    `json:"rounds_played"`
	Threshold    int    `json:"threshold,omitempty"`
	MeasureFrom  int    `json:"measure_from"`
	Measured     int    `json:"measured"` // rounds counted in the statistics below
	// Attendance over the measured rounds: mean and (population) standard deviation.
	MeanAttendance float64 `json:"mean_attendance"`
	SDAttendance   float64 `json:"sd_attendance"`
	// Volatility is the variance of #A - #B over the measured rounds divided
	// by the number of players (σ²/N; minority game; 1 for random play).
	Volatility   float64 `json:"volatility,omitempty"`
	CrowdedShare float64 `json:"crowded_share,omitempty"` // el_farol: share of measured rounds crowded
	// Groups gives each agent block's mean score per agent and round.
	Groups []NPlayerGroup `json:"groups"`
}

// NPlayerGroup is one agent block's score.
type NPlayerGroup struct {
	Group     string  `json:"group"`
	Agents    int     `json:"agents"`
	MeanScore float64 `json:"mean_score_per_round"`
}

// Result summarises the rounds played so far.
func (w *NPlayer) Result() any {
	n := len(w.seats)
	r := NPlayerResult{Game: w.c.Game, Players: n, Rounds: w.c.Rounds, RoundsPlayed: w.round(), MeasureFrom: w.c.MeasureFrom}
	if w.c.Game == ElFarol {
		r.Threshold = w.c.Threshold
	}
	var s, ss, es, ess float64
	crowded := 0
	for k := w.c.MeasureFrom - 1; k < w.round(); k++ {
		a := float64(w.attend[k])
		e := float64(2*w.attend[k] - n)
		s, ss, es, ess = s+a, ss+a*a, es+e, ess+e*e
		if w.attend[k] > w.c.Threshold {
			crowded++
		}
		r.Measured++
	}
	if m := float64(r.Measured); m > 0 {
		r.MeanAttendance = s / m
		r.SDAttendance = math.Sqrt(math.Max(0, ss/m-r.MeanAttendance*r.MeanAttendance))
		if w.c.Game == Minority {
			em := es / m
			r.Volatility = math.Max(0, ess/m-em*em) / float64(n)
		} else {
			r.CrowdedShare = float64(crowded) / m
		}
	}
	by := map[string]*NPlayerGroup{}
	var names []string
	for i, st := range w.seats {
		g := by[st.Group]
		if g == nil {
			g = &NPlayerGroup{Group: st.Group}
			by[st.Group] = g
			names = append(names, st.Group)
		}
		g.Agents++
		g.MeanScore += w.score[i]
	}
	sort.Strings(names)
	for _, name := range names {
		g := by[name]
		if w.round() > 0 {
			g.MeanScore /= float64(g.Agents * w.round())
		}
		r.Groups = append(r.Groups, *g)
	}
	return r
}

// Table prints the result's key figures.
func (w *NPlayer) Table() world.Table {
	r := w.Result().(NPlayerResult)
	t := world.Table{Title: fmt.Sprintf("%s, %d players, %d rounds (statistics over rounds %d-%d)", r.Game, r.Players, r.RoundsPlayed, r.MeasureFrom, r.RoundsPlayed),
		Columns: []string{"figure", "value"}}
	t.Rows = append(t.Rows, []string{"mean attendance", fmt.Sprintf("%.3f", r.MeanAttendance)}, []string{"sd attendance", fmt.Sprintf("%.3f", r.SDAttendance)})
	if r.Game == Minority {
		t.Rows = append(t.Rows, []string{"volatility σ²/N", fmt.Sprintf("%.3f", r.Volatility)})
	} else {
		t.Rows = append(t.Rows, []string{"crowded share", fmt.Sprintf("%.3f", r.CrowdedShare)})
	}
	for _, g := range r.Groups {
		t.Rows = append(t.Rows, []string{"score/round " + g.Group, fmt.Sprintf("%.3f", g.MeanScore)})
	}
	return t
}

type nplayerSnapshot struct {
	V      int             `json:"v"`
	Game   string          `json:"game"`
	Rounds int             `json:"rounds"`
	Agents []world.AgentID `json:"agents"`
	Moves  []string        `json:"moves"` // per agent, one move per round played
}

// Snapshot is JSON of every seat's moves; everything else follows from them.
func (w *NPlayer) Snapshot() ([]byte, error) {
	s := nplayerSnapshot{V: 1, Game: w.c.Game, Rounds: w.c.Rounds}
	for i, st := range w.seats {
		s.Agents = append(s.Agents, st.ID)
		s.Moves = append(s.Moves, string(w.hist[i]))
	}
	return json.Marshal(s)
}

// Restore replays a snapshot's moves onto a fresh state. On error the
// world is unchanged.
func (w *NPlayer) Restore(b []byte) error {
	var s nplayerSnapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("nplayer_game restore: %w", err)
	}
	if s.V != 1 || s.Game != w.c.Game || s.Rounds != w.c.Rounds || len(s.Agents) != len(w.seats) {
		return fmt.Errorf("nplayer_game restore: snapshot of %s, %d rounds, %d agents does not fit this world (%s, %d, %d)", s.Game, s.Rounds, len(s.Agents), w.c.Game, w.c.Rounds, len(w.seats))
	}
	played := -1
	for i, id := range s.Agents {
		if id != w.seats[i].ID {
			return fmt.Errorf("nplayer_game restore: agent %d is %q, this world's is %q", i, id, w.seats[i].ID)
		}
		if played >= 0 && len(s.Moves[i]) != played {
			return errors.New("nplayer_game restore: agents have played different numbers of rounds")
		}
		played = len(s.Moves[i])
		for k := range len(s.Moves[i]) {
			if !strings.Contains(w.moves, s.Moves[i][k:k+1]) {
				return fmt.Errorf("nplayer_game restore: agent %s: bad move %q", id, s.Moves[i][k:k+1])
			}
		}
	}
	if played > w.c.Rounds {
		return fmt.Errorf("nplayer_game restore: %d rounds played, more than %d", played, w.c.Rounds)
	}
	fresh := &NPlayer{c: w.c, moves: w.moves, seats: w.seats, idx: w.idx, hist: make([][]byte, len(w.seats)),
		score: make([]float64, len(w.seats)), pending: w.pending}
	mv := make([]byte, len(w.seats))
	for r := range max(0, played) {
		for i := range mv {
			mv[i] = s.Moves[i][r]
		}
		fresh.apply(mv)
	}
	*w = *fresh
	return nil
}

// StateHash is the hex SHA-256 of the snapshot.
func (w *NPlayer) StateHash() string {
	b, err := w.Snapshot()
	if err != nil {
		return ""
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func decodeStrictInto(data json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON object")
	}
	return nil
}
