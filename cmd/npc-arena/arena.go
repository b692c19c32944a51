package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"

	"github.com/terrarium-sim/terrarium/world"
)

// Roles of the arena's NPCs (their agent block names).
const (
	roleChaser = "chaser" // chases the nearest runner; a process (builtin runtime)
	roleRunner = "runner" // flees the nearest chaser; in-process
	roleTrader = "trader" // walks to the nearest trader and trades; in-process
)

// groupLLM is the agent block of the LLM NPCs: chasers played by a model
// (runtime claude).
const groupLLM = "llm"

// entity is one NPC on the grid.
type entity struct {
	ID    world.AgentID `json:"id"`
	Role  string        `json:"role"`
	LLM   bool          `json:"llm,omitempty"` // played by a model
	X     int           `json:"x"`
	Y     int           `json:"y"`
	Food  int           `json:"food,omitempty"`
	Ore   int           `json:"ore,omitempty"`
	Score int           `json:"score,omitempty"` // chaser: catches; trader: trades
}

// arenaAction is what an NPC does in one tick.
type arenaAction struct {
	Move  string        `json:"move"`            // "N", "S", "E", "W" or "" (stay)
	Trade world.AgentID `json:"trade,omitempty"` // trader: the trader it offers a trade to
}

// arenaObs is what an NPC sees: itself and everyone else.
type arenaObs struct {
	Tick   world.Tick `json:"tick"`
	W      int        `json:"w"`
	H      int        `json:"h"`
	Me     entity     `json:"me"`
	Others []entity   `json:"others"`
}

// arena is the game's world: a W x H grid of NPCs. The loop's goroutine
// calls its world.World methods; Frame may be called from any goroutine.
type arena struct {
	w, h    int
	ents    map[world.AgentID]*entity
	ids     []world.AgentID
	catches int
	trades  int
	ticks   world.Tick

	mu    sync.Mutex
	frame string // the last tick's picture
}

func newArena(w, h int, seats []world.Seat, seed uint64) *arena {
	a := &arena{w: w, h: h, ents: map[world.AgentID]*entity{}}
	rng := rand.New(rand.NewPCG(seed, 0xa7e4a))
	for _, s := range seats {
		e := &entity{ID: s.ID, Role: s.Group, X: rng.IntN(w), Y: rng.IntN(h)}
		if s.Group == groupLLM {
			e.Role, e.LLM = roleChaser, true
		}
		if s.Group == roleTrader {
			// Half start rich in food, half in ore: they want to trade.
			if s.Index%2 == 0 {
				e.Food, e.Ore = 6, 0
			} else {
				e.Food, e.Ore = 0, 6
			}
		}
		a.ents[s.ID] = e
		a.ids = append(a.ids, s.ID)
	}
	sort.Slice(a.ids, func(i, j int) bool { return a.ids[i] < a.ids[j] })
	a.render()
	return a
}

func (a *arena) Observe(id world.AgentID, t world.Tick) (json.RawMessage, bool, error) {
	me, ok := a.ents[id]
	if !ok {
		return nil, false, fmt.Errorf("no npc %s", id)
	}
	o := arenaObs{Tick: t, W: a.w, H: a.h, Me: *me, Others: make([]entity, 0, len(a.ids)-1)}
	for _, oid := range a.ids {
		if oid != id {
			o.Others = append(o.Others, *a.ents[oid])
		}
	}
	b, err := json.Marshal(o)
	return b, true, err
}

func (a *arena) Validate(act world.Action) error {
	var x arenaAction
	if err := json.Unmarshal(act.Data, &x); err != nil {
		return fmt.Errorf("not an arena action: %w", err)
	}
	switch x.Move {
	case "", "N", "S", "E", "W":
	default:
		return fmt.Errorf("move %q: want N, S, E, W or empty", x.Move)
	}
	if x.Trade != "" {
		if e := a.ents[act.Agent]; e == nil || e.Role != roleTrader {
			return errors.New("only traders trade")
		}
	}
	return nil
}

func (a *arena) DefaultAction(world.AgentID, world.Tick) json.RawMessage {
	return json.RawMessage(`{"move":""}`)
}

func (a *arena) Step(t world.Tick, actions []world.Action, rng *rand.Rand) (world.StepResult, error) {
	offers := map[world.AgentID]world.AgentID{}
	for _, act := range actions { // sorted by agent id: moves apply in that order
		var x arenaAction
		if err := json.Unmarshal(act.Data, &x); err != nil {
			return world.StepResult{}, fmt.Errorf("action of %s: %w", act.Agent, err)
		}
		e := a.ents[act.Agent]
		dx, dy := delta(x.Move)
		e.X, e.Y = clamp(e.X+dx, 0, a.w-1), clamp(e.Y+dy, 0, a.h-1)
		if x.Trade != "" {
			offers[act.Agent] = x.Trade
		}
	}
	var evs []world.Event
	// Catches: a runner next to a chaser is caught and starts again elsewhere.
	for _, cid := range a.ids {
		c := a.ents[cid]
		if c.Role != roleChaser {
			continue
		}
		for _, rid := range a.ids {
			r := a.ents[rid]
			if r.Role == roleRunner && dist(c, r) <= 1 {
				c.Score++
				a.catches++
				r.X, r.Y = rng.IntN(a.w), rng.IntN(a.h)
				evs = append(evs, world.Event{Kind: "caught", Agent: cid, Fields: map[string]any{"runner": rid}})
			}
		}
	}
	// Trades: two adjacent traders offering to each other swap one food for one ore.
	for _, id := range a.ids {
		other, ok := offers[id]
		if !ok || id > other || offers[other] != id {
			continue
		}
		x, y := a.ents[id], a.ents[other]
		if dist(x, y) > 1 {
			continue
		}
		switch {
		case x.Food > 0 && y.Ore > 0:
			x.Food, x.Ore, y.Food, y.Ore = x.Food-1, x.Ore+1, y.Food+1, y.Ore-1
		case x.Ore > 0 && y.Food > 0:
			x.Food, x.Ore, y.Food, y.Ore = x.Food+1, x.Ore-1, y.Food-1, y.Ore+1
		default:
			continue
		}
		x.Score++
		y.Score++
		a.trades++
		evs = append(evs, world.Event{Kind: "traded", Agent: id, Fields: map[string]any{"with": other}})
	}
	a.ticks = t
	a.render()
	return world.StepResult{Events: evs, Metrics: map[string]float64{"catches": float64(a.catches), "trades": float64(a.trades)}}, nil
}

func (a *arena) Done() bool        { return false }
func (a *arena) Metrics() []string { return []string{"catches", "trades"} }

func (a *arena) Result() any {
	scores := map[world.AgentID]int{}
	for _, id := range a.ids {
		if e := a.ents[id]; e.Role != roleRunner {
			scores[id] = e.Score
		}
	}
	return map[string]any{"catches": a.catches, "trades": a.trades, "scores": scores}
}

type arenaState struct {
	Ticks   world.Tick `json:"ticks"`
	Catches int        `json:"catches"`
	Trades  int        `json:"trades"`
	Ents    []entity   `json:"ents"`
}

func (a *arena) Snapshot() ([]byte, error) {
	s := arenaState{Ticks: a.ticks, Catches: a.catches, Trades: a.trades}
	for _, id := range a.ids {
		s.Ents = append(s.Ents, *a.ents[id])
	}
	return json.Marshal(s)
}

func (a *arena) Restore(b []byte) error {
	var s arenaState
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("restore arena: %w", err)
	}
	a.ticks, a.catches, a.trades = s.Ticks, s.Catches, s.Trades
	for i := range s.Ents {
		e := s.Ents[i]
		a.ents[e.ID] = &e
	}
	a.render()
	return nil
}

func (a *arena) StateHash() string {
	b, _ := a.Snapshot()
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// render draws the grid into the frame: C chaser, L chaser played by a
// model, r runner, T trader.
func (a *arena) render() {
	grid := make([][]byte, a.h)
	for y := range grid {
		grid[y] = []byte(strings.Repeat(".", a.w))
	}
	for _, id := range a.ids {
		e := a.ents[id]
		grid[e.Y][e.X] = map[string]byte{roleChaser: 'C', roleRunner: 'r', roleTrader: 'T'}[e.Role]
		if e.LLM {
			grid[e.Y][e.X] = 'L'
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "+%s+\n", strings.Repeat("-", a.w))
	for _, row := range grid {
		fmt.Fprintf(&b, "|%s|\n", row)
	}
	fmt.Fprintf(&b, "+%s+\n", strings.Repeat("-", a.w))
	fmt.Fprintf(&b, "tick %d  catches %d  trades %d\n", a.ticks, a.catches, a.trades)
	a.mu.Lock()
	a.frame = b.String()
	a.mu.Unlock()
}

// Frame returns the last tick's picture; safe from any goroutine.
func (a *arena) Frame() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.frame
}

func delta(move string) (int, int) {
	switch move {
	case "N":
		return 0, -1
	case "S":
		return 0, 1
	case "E":
		return 1, 0
	case "W":
		return -1, 0
	}
	return 0, 0
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }

func abs(v int) int { return max(v, -v) }

func dist(a, b *entity) int { return abs(a.X-b.X) + abs(a.Y-b.Y) }
