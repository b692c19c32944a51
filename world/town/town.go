package town

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/terrarium-sim/terrarium/world"
)

// KindName is the world kind this package registers.
const KindName = "town"

// MaxSayBytes is the longest text a say may carry.
const MaxSayBytes = 2000

// Config is the town block of a scenario.
type Config struct {
	// Places are the town's places; agents start in the first (or Start).
	Places []string `hcl:"places,optional"`
	// Start is where every agent starts (default: the first place).
	Start string `hcl:"start,optional"`
	// Items maps a place to the items lying there at the start.
	Items map[string][]string `hcl:"items,optional"`
}

// NewConfig is the default town: a square, a market, a hall and a well.
func NewConfig() *Config {
	return &Config{Places: []string{"square", "market", "hall", "well"}}
}

func init() {
	world.Register(world.Kind{
		Name:      KindName,
		Doc:       "a text town for LLM agents: places, positions, speech heard in the same place, items",
		NewConfig: func() any { return NewConfig() },
		New: func(config any, seats []world.Seat) (world.World, error) {
			c, err := world.ConfigAs[Config](KindName, config)
			if err != nil {
				return nil, err
			}
			return New(c, seats)
		},
		Tools: Tools,
	})
}

func str(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }

func object(required []string, props map[string]any) map[string]any {
	return map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false}
}

// Tools are the town's actions as tools.
var Tools = []world.Tool{
	{Name: "move", Description: "Walk to another place of the town (you arrive at the end of the tick).", Input: object([]string{"to"}, map[string]any{"to": str("the place to go to")})},
	{Name: "say", Description: "Say something: everyone in your place hears it next tick (with to: only that agent, if here).", Input: object([]string{"text"}, map[string]any{"text": str("what to say"), "to": str("an agent id, to say it to that agent only")})},
	{Name: "take", Description: "Pick up an item lying in your place.", Input: object([]string{"item"}, map[string]any{"item": str("the item")})},
	{Name: "give", Description: "Give an item you carry to someone in your place.", Input: object([]string{"item", "to"}, map[string]any{"item": str("the item"), "to": str("the agent id")})},
	{Name: "wait", Description: "Do nothing this tick.", Input: object(nil, map[string]any{})},
}

// Heard is one utterance as its hearers observe it.
type Heard struct {
	Tick world.Tick    `json:"tick"`
	From world.AgentID `json:"from"`
	Text string        `json:"text"`
	To   world.AgentID `json:"to,omitempty"`
}

// state is everything that changes; it is the snapshot.
type state struct {
	Tick      world.Tick                 `json:"tick"`
	Pos       map[world.AgentID]string   `json:"pos"`
	Inventory map[world.AgentID][]string `json:"inventory"`
	Items     map[string][]string        `json:"items"` // lying in places, sorted
	Heard     map[world.AgentID][]Heard  `json:"heard"` // what each hears at the next tick
	Said      map[world.AgentID]int      `json:"said"`
	Moves     map[world.AgentID]int      `json:"moves"`
	Log       []Heard                    `json:"log"` // everything said, in order
}

// World is a town. Like every world.World it is owned by one goroutine.
type World struct {
	places []string
	ids    []world.AgentID
	st     state
}

// New builds a town with every seat at the start place.
func New(c Config, seats []world.Seat) (*World, error) {
	if len(c.Places) == 0 {
		return nil, settingError{"places", "", errors.New("a town needs at least one place")}
	}
	seen := map[string]bool{}
	for _, p := range c.Places {
		if p == "" || seen[p] {
			return nil, settingError{"places", "", fmt.Errorf("place names must be unique and not empty; got %q", p)}
		}
		seen[p] = true
	}
	start := c.Start
	if start == "" {
		start = c.Places[0]
	} else if !seen[start] {
		return nil, settingError{"start", "", fmt.Errorf("start %q is not one of the places %v", start, c.Places)}
	}
	w := &World{places: slices.Clone(c.Places), st: state{
		Pos: map[world.AgentID]string{}, Inventory: map[world.AgentID][]string{}, Items: map[string][]string{},
		Heard: map[world.AgentID][]Heard{}, Said: map[world.AgentID]int{}, Moves: map[world.AgentID]int{},
	}}
	for p, items := range c.Items {
		if !seen[p] {
			return nil, settingError{"items", p, fmt.Errorf("items are given for %q, which is not one of the places %v", p, c.Places)}
		}
		w.st.Items[p] = slices.Sorted(slices.Values(items))
	}
	for _, s := range seats {
		w.ids = append(w.ids, s.ID)
		w.st.Pos[s.ID] = start
	}
	sort.Slice(w.ids, func(i, j int) bool { return w.ids[i] < w.ids[j] })
	return w, nil
}

// settingError names the setting a config error is about (see scenarios).
type settingError struct {
	setting, key string
	err          error
}

func (e settingError) Error() string                  { return e.err.Error() }
func (e settingError) Unwrap() error                  { return e.err }
func (e settingError) WorldSetting() (string, string) { return e.setting, e.key }

type observation struct {
	Tick      world.Tick      `json:"tick"`
	You       world.AgentID   `json:"you"`
	Place     string          `json:"place"`
	Places    []string        `json:"places"`
	Here      []world.AgentID `json:"here"`
	ItemsHere []string        `json:"items_here"`
	Inventory []string        `json:"inventory"`
	Heard     []Heard         `json:"heard"`
}

// Observe implements world.World.
func (w *World) Observe(id world.AgentID, t world.Tick) (json.RawMessage, bool, error) {
	pos, ok := w.st.Pos[id]
	if !ok {
		return nil, false, fmt.Errorf("town: unknown agent %s", id)
	}
	o := observation{Tick: t, You: id, Place: pos, Places: w.places, Here: []world.AgentID{},
		ItemsHere: append([]string{}, w.st.Items[pos]...), Inventory: append([]string{}, w.st.Inventory[id]...),
		Heard: append([]Heard{}, w.st.Heard[id]...)}
	for _, other := range w.ids {
		if other != id && w.st.Pos[other] == pos {
			o.Here = append(o.Here, other)
		}
	}
	b, err := json.Marshal(o)
	return b, true, err
}

type action struct {
	Do   string         `json:"do"`
	To   string         `json:"to,omitempty"`
	Text string         `json:"text,omitempty"`
	Item string         `json:"item,omitempty"`
	Raw  map[string]any `json:"-"`
}

func parse(data json.RawMessage) (action, error) {
	var a action
	if err := json.Unmarshal(data, &a); err != nil {
		return a, fmt.Errorf(`malformed action (want {"do":"move|say|take|give|wait", ...}): %w`, err)
	}
	switch a.Do {
	case "wait":
	case "move":
		if a.To == "" {
			return a, errors.New(`move needs "to": a place`)
		}
	case "say":
		if strings.TrimSpace(a.Text) == "" {
			return a, errors.New(`say needs "text"`)
		}
		if len(a.Text) > MaxSayBytes {
			return a, fmt.Errorf("say: text over %d bytes", MaxSayBytes)
		}
	case "take":
		if a.Item == "" {
			return a, errors.New(`take needs "item"`)
		}
	case "give":
		if a.Item == "" || a.To == "" {
			return a, errors.New(`give needs "item" and "to"`)
		}
	default:
		return a, fmt.Errorf(`unknown action %q: "do" must be move, say, take, give or wait`, a.Do)
	}
	return a, nil
}

// Validate implements world.World.
func (w *World) Validate(a world.Action) error {
	act, err := parse(a.Data)
	if err != nil {
		return err
	}
	if act.Do == "move" && !slices.Contains(w.places, act.To) {
		return fmt.Errorf("move: no place %q (places: %s)", act.To, strings.Join(w.places, ", "))
	}
	return nil
}

// DefaultAction implements world.World: wait.
func (w *World) DefaultAction(world.AgentID, world.Tick) json.RawMessage {
	return json.RawMessage(`{"do":"wait"}`)
}

// Step implements world.World.
func (w *World) Step(t world.Tick, actions []world.Action, _ *rand.Rand) (world.StepResult, error) {
	var res world.StepResult
	acts := make([]action, len(actions))
	for i, a := range actions {
		act, err := parse(a.Data)
		if err != nil {
			act = action{Do: "wait"}
		}
		acts[i] = act
	}
	refuse := func(id world.AgentID, act action, why string) {
		res.Events = append(res.Events, world.Event{Kind: "refused", Agent: id, Fields: map[string]any{"do": act.Do, "reason": why}})
	}
	heard := map[world.AgentID][]Heard{}
	said := 0
	for i, a := range actions {
		act := acts[i]
		if act.Do != "say" {
			continue
		}
		place := w.st.Pos[a.Agent]
		h := Heard{Tick: t, From: a.Agent, Text: act.Text, To: world.AgentID(act.To)}
		var hearers []world.AgentID
		for _, other := range w.ids {
			if other == a.Agent || w.st.Pos[other] != place || (h.To != "" && other != h.To) {
				continue
			}
			heard[other] = append(heard[other], h)
			hearers = append(hearers, other)
		}
		if h.To != "" && len(hearers) == 0 {
			refuse(a.Agent, act, fmt.Sprintf("%s is not in %s", h.To, place))
			continue
		}
		w.st.Said[a.Agent]++
		w.st.Log = append(w.st.Log, h)
		said++
		res.Events = append(res.Events, world.Event{Kind: "said", Agent: a.Agent, Fields: map[string]any{"place": place, "text": h.Text, "to": string(h.To), "heard_by": hearers}})
	}
	for i, a := range actions {
		act := acts[i]
		place := w.st.Pos[a.Agent]
		switch act.Do {
		case "take":
			items := w.st.Items[place]
			j := slices.Index(items, act.Item)
			if j < 0 {
				refuse(a.Agent, act, fmt.Sprintf("no %q lying in %s", act.Item, place))
				continue
			}
			w.st.Items[place] = slices.Delete(items, j, j+1)
			w.st.Inventory[a.Agent] = sortedAdd(w.st.Inventory[a.Agent], act.Item)
			res.Events = append(res.Events, world.Event{Kind: "took", Agent: a.Agent, Fields: map[string]any{"item": act.Item, "place": place}})
		case "give":
			to := world.AgentID(act.To)
			inv := w.st.Inventory[a.Agent]
			j := slices.Index(inv, act.Item)
			switch {
			case j < 0:
				refuse(a.Agent, act, fmt.Sprintf("you carry no %q", act.Item))
			case w.st.Pos[to] != place || to == a.Agent:
				refuse(a.Agent, act, fmt.Sprintf("%s is not here in %s", act.To, place))
			default:
				w.st.Inventory[a.Agent] = slices.Delete(inv, j, j+1)
				w.st.Inventory[to] = sortedAdd(w.st.Inventory[to], act.Item)
				res.Events = append(res.Events, world.Event{Kind: "gave", Agent: a.Agent, Fields: map[string]any{"item": act.Item, "to": act.To, "place": place}})
			}
		}
	}
	moves := 0
	for i, a := range actions {
		act := acts[i]
		if act.Do != "move" || act.To == w.st.Pos[a.Agent] {
			continue
		}
		if !slices.Contains(w.places, act.To) {
			refuse(a.Agent, act, fmt.Sprintf("no place %q", act.To))
			continue
		}
		res.Events = append(res.Events, world.Event{Kind: "moved", Agent: a.Agent, Fields: map[string]any{"from": w.st.Pos[a.Agent], "to": act.To}})
		w.st.Pos[a.Agent] = act.To
		w.st.Moves[a.Agent]++
		moves++
	}
	w.st.Heard = heard
	w.st.Tick = t
	held := 0
	for _, inv := range w.st.Inventory {
		held += len(inv)
	}
	res.Metrics = map[string]float64{"said": float64(said), "moves": float64(moves), "items_held": float64(held)}
	return res, nil
}

func sortedAdd(s []string, v string) []string {
	s = append(s, v)
	slices.Sort(s)
	return s
}

// Done implements world.World: a town never ends by itself (set ticks).
func (w *World) Done() bool { return false }

// Metrics implements world.World.
func (w *World) Metrics() []string { return []string{"said", "moves", "items_held"} }

// Result is the town's summary in result.json.
type Result struct {
	Positions map[world.AgentID]string   `json:"positions"`
	Inventory map[world.AgentID][]string `json:"inventory"`
	Said      map[world.AgentID]int      `json:"said"`
	Moves     map[world.AgentID]int      `json:"moves"`
	Log       []Heard                    `json:"log"` // everything said, in order
}

// Result implements world.World.
func (w *World) Result() any {
	return Result{Positions: w.st.Pos, Inventory: w.st.Inventory, Said: w.st.Said, Moves: w.st.Moves, Log: w.st.Log}
}

// Snapshot implements world.World.
func (w *World) Snapshot() ([]byte, error) { return json.Marshal(w.st) }

// Restore implements world.World.
func (w *World) Restore(b []byte) error {
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("town: restore: %w", err)
	}
	for _, id := range w.ids {
		if _, ok := st.Pos[id]; !ok {
			return fmt.Errorf("town: restore: snapshot has no position for %s", id)
		}
	}
	for _, m := range []*map[world.AgentID]int{&st.Said, &st.Moves} {
		if *m == nil {
			*m = map[world.AgentID]int{}
		}
	}
	if st.Inventory == nil {
		st.Inventory = map[world.AgentID][]string{}
	}
	if st.Items == nil {
		st.Items = map[string][]string{}
	}
	if st.Heard == nil {
		st.Heard = map[world.AgentID][]Heard{}
	}
	w.st = st
	return nil
}

// StateHash implements world.World: SHA-256 of the snapshot (encoding/json
// sorts map keys, so it is canonical).
func (w *World) StateHash() string {
	b, _ := json.Marshal(w.st)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// viewLines is how many of the latest things said the dashboard shows.
const viewLines = 20

// View shows every place with who is there and what lies there (and who
// carries what), and the latest things said.
func (w *World) View() world.View {
	v := world.View{}
	for _, p := range w.places {
		pv := world.PlaceView{Name: p, Agents: []world.AgentID{}, Items: slices.Clone(w.st.Items[p])}
		for _, id := range w.ids {
			if w.st.Pos[id] != p {
				continue
			}
			pv.Agents = append(pv.Agents, id)
			for _, it := range w.st.Inventory[id] {
				pv.Items = append(pv.Items, it+" (carried by "+string(id)+")")
			}
		}
		v.Places = append(v.Places, pv)
	}
	for _, h := range w.st.Log[max(0, len(w.st.Log)-viewLines):] {
		line := fmt.Sprintf("t%d %s: %s", h.Tick, h.From, h.Text)
		if h.To != "" {
			line = fmt.Sprintf("t%d %s to %s: %s", h.Tick, h.From, h.To, h.Text)
		}
		v.Lines = append(v.Lines, line)
	}
	return v
}
