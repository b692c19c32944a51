package grid_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/world"
	"github.com/terrarium-sim/terrarium/world/grid"
)

func seats(groups ...any) []world.Seat {
	var out []world.Seat
	for k := 0; k < len(groups); k += 2 {
		g, n := groups[k].(string), groups[k+1].(int)
		for i := 1; i <= n; i++ {
			out = append(out, world.Seat{ID: world.AgentID(fmt.Sprintf("%s-%03d", g, i)), Group: g, Index: i})
		}
	}
	return out
}

func config(rules string, w, h int) *grid.Config {
	c := grid.NewConfig()
	c.Rules, c.Width, c.Height = rules, w, h
	return c
}

func mustNew(t *testing.T, c *grid.Config, s []world.Seat, seed uint64) *grid.World {
	t.Helper()
	w, err := grid.New(*c, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Seed(seed); err != nil {
		t.Fatal(err)
	}
	return w
}

// randomAction makes a valid action for agent id from its observation, with r.
func randomAction(t *testing.T, rules string, obs json.RawMessage, r *rand.Rand) json.RawMessage {
	t.Helper()
	var v any
	switch rules {
	case grid.RulesSchelling:
		v = grid.SchellingAction{Move: r.IntN(2) == 0}
	case grid.RulesBoltzmann:
		var o grid.BoltzmannObservation
		json.Unmarshal(obs, &o)
		a := grid.BoltzmannAction{Move: o.Moves[r.IntN(len(o.Moves))]}
		if len(o.Cellmates) > 0 {
			a.Give = o.Cellmates[r.IntN(len(o.Cellmates))]
		}
		v = a
	case grid.RulesLife:
		var o grid.LifeObservation
		json.Unmarshal(obs, &o)
		a := grid.LifeAction{Alive: [][2]int{}}
		for y := range o.H {
			for x := range o.W {
				if r.IntN(4) == 0 {
					a.Alive = append(a.Alive, [2]int{x, y})
				}
			}
		}
		v = a
	case grid.RulesPredatorPrey:
		var o grid.PredatorPreyObservation
		json.Unmarshal(obs, &o)
		v = grid.PredatorPreyAction{Move: o.Moves[r.IntN(len(o.Moves))], Eat: r.IntN(4) > 0, Reproduce: r.IntN(5) == 0}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// step observes every seat, makes random valid actions (drawn from a
// generator of the tick and salt) and steps.
func step(t *testing.T, w *grid.World, rules string, s []world.Seat, tick world.Tick, salt uint64, seed uint64) world.StepResult {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(tick), salt))
	var acts []world.Action
	for _, st := range s {
		obs, ok, err := w.Observe(st.ID, tick)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			continue
		}
		a := world.Action{Agent: st.ID, Tick: tick, Data: randomAction(t, rules, obs, r)}
		if err := w.Validate(a); err != nil {
			t.Fatalf("tick %d %s: %v", tick, st.ID, err)
		}
		acts = append(acts, a)
	}
	res, err := w.Step(tick, acts, world.TickRNG(seed, tick))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

type setup struct {
	rules string
	c     *grid.Config
	s     []world.Seat
}

func setups() []setup {
	pp := config(grid.RulesPredatorPrey, 12, 12)
	pp.InitialPrey, pp.InitialPredators = 20, 6
	life := config(grid.RulesLife, 10, 9)
	life.Pattern, life.Block = "glider", 4
	bounded := config(grid.RulesBoltzmann, 7, 5)
	bounded.Topology, bounded.Neighbourhood = grid.Bounded, grid.VonNeumann
	return []setup{
		{grid.RulesSchelling, config(grid.RulesSchelling, 8, 8), seats("a", 25, "b", 25)},
		{grid.RulesBoltzmann, config(grid.RulesBoltzmann, 5, 5), seats("agent", 30)},
		{grid.RulesBoltzmann, bounded, seats("agent", 30)},
		{grid.RulesLife, life, seats("cells", 9)},
		{grid.RulesPredatorPrey, pp, seats("sheep", 60, "wolves", 20)},
	}
}

// Same seed and actions: same hashes; a world restored from a snapshot
// steps to the same hashes as the original.
func TestDeterministicAndRestorable(t *testing.T) {
	for _, su := range setups() {
		t.Run(su.rules+"/"+su.c.Topology, func(t *testing.T) {
			a := mustNew(t, su.c, su.s, 7)
			b := mustNew(t, su.c, su.s, 7)
			if a.StateHash() != b.StateHash() {
				t.Fatal("same seed, different initial states")
			}
			if c := mustNew(t, su.c, su.s, 8); c.StateHash() == a.StateHash() && su.rules != grid.RulesLife {
				t.Error("seeds 7 and 8 gave the same layout")
			}
			var restored *grid.World
			for tick := world.Tick(1); tick <= 30; tick++ {
				step(t, a, su.rules, su.s, tick, 2, 7)
				step(t, b, su.rules, su.s, tick, 2, 7)
				if a.StateHash() != b.StateHash() {
					t.Fatalf("tick %d: hashes differ", tick)
				}
				if restored != nil {
					step(t, restored, su.rules, su.s, tick, 2, 7)
					if restored.StateHash() != a.StateHash() {
						t.Fatalf("tick %d: the restored world diverged", tick)
					}
				}
				if tick == 10 {
					snap, err := a.Snapshot()
					if err != nil {
						t.Fatal(err)
					}
					restored, _ = grid.New(*su.c, su.s)
					if err := restored.Restore(snap); err != nil {
						t.Fatal(err)
					}
					if restored.StateHash() != a.StateHash() {
						t.Fatal("restored hash differs")
					}
				}
			}
		})
	}
}

// Observations depend only on the state at the start of the tick: not on
// the order agents are observed in, nor on actions validated meanwhile.
func TestLockstepObservations(t *testing.T) {
	for _, su := range setups() {
		t.Run(su.rules, func(t *testing.T) {
			w := mustNew(t, su.c, su.s, 3)
			r := rand.New(rand.NewPCG(5, 5))
			step(t, w, su.rules, su.s, 1, 5, 3)
			first := map[world.AgentID]string{}
			for _, st := range su.s {
				o, _, _ := w.Observe(st.ID, 2)
				first[st.ID] = string(o)
				if o != nil {
					if err := w.Validate(world.Action{Agent: st.ID, Tick: 2, Data: randomAction(t, su.rules, o, r)}); err != nil {
						t.Fatal(err)
					}
				}
			}
			for i := len(su.s) - 1; i >= 0; i-- {
				o, _, _ := w.Observe(su.s[i].ID, 2)
				if string(o) != first[su.s[i].ID] {
					t.Fatalf("%s's observation changed within the tick", su.s[i].ID)
				}
			}
		})
	}
}

func TestBoltzmannConservesWealth(t *testing.T) {
	c := config(grid.RulesBoltzmann, 3, 3)
	s := seats("agent", 40)
	w := mustNew(t, c, s, 1)
	for tick := world.Tick(1); tick <= 200; tick++ {
		m := step(t, w, grid.RulesBoltzmann, s, tick, 9, 1).Metrics
		if m["total_wealth"] != 40 || m["min_wealth"] < 0 {
			t.Fatalf("tick %d: total %v min %v", tick, m["total_wealth"], m["min_wealth"])
		}
	}
	if g := w.Result().(grid.Result).Metrics["transfers"]; g.Sum == 0 {
		t.Fatal("no transfers happened")
	}
}

func TestInvalidActionsRejected(t *testing.T) {
	c := config(grid.RulesBoltzmann, 4, 4)
	c.Topology = grid.Bounded
	s := seats("agent", 3)
	w := mustNew(t, c, s, 1)
	id := s[0].ID
	for _, tc := range []struct{ data, want string }{
		{`{"move":[2,0]}`, "not one of the offered moves"},
		{`{"move":[0,0],"give":"nobody"}`, "not a cellmate"},
		{`{"move":[0,0],"steal":true}`, "unknown field"},
		{`{"move":[0,0]} {}`, "data after"},
		{`nonsense`, "malformed action"},
	} {
		err := w.Validate(world.Action{Agent: id, Tick: 1, Data: json.RawMessage(tc.data)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.data, err, tc.want)
		}
	}
	if err := w.Validate(world.Action{Agent: id, Tick: 2, Data: json.RawMessage(`{"move":[0,0]}`)}); err == nil {
		t.Error("an action for tick 2 was accepted at tick 1")
	}
	// A bounded grid offers no move off its edge.
	obs, _, _ := w.Observe(id, 1)
	var o grid.BoltzmannObservation
	json.Unmarshal(obs, &o)
	for _, m := range o.Moves {
		if x, y := o.X+m[0], o.Y+m[1]; x < 0 || y < 0 || x >= 4 || y >= 4 {
			t.Errorf("offered move %v leaves the grid from (%d,%d)", m, o.X, o.Y)
		}
	}
}

func TestUnseededWorldRefuses(t *testing.T) {
	w, err := grid.New(*config(grid.RulesBoltzmann, 4, 4), seats("agent", 2))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.Observe("agent-001", 1); !errors.Is(err, grid.ErrNotSeeded) {
		t.Fatalf("observe before Seed: %v, want ErrNotSeeded", err)
	}
}

// A huge sparse grid costs what its agents cost, not its cells.
func TestSparseHugeGrid(t *testing.T) {
	c := config(grid.RulesBoltzmann, 1_000_000, 1_000_000)
	s := seats("agent", 10)
	w := mustNew(t, c, s, 1)
	for tick := world.Tick(1); tick <= 5; tick++ {
		step(t, w, grid.RulesBoltzmann, s, tick, 1, 1)
	}
	if snap, _ := w.Snapshot(); len(snap) > 10_000 {
		t.Errorf("snapshot of 10 agents is %d bytes", len(snap))
	}
}

// Life: each agent sees its block and the ring around it (wrapping on a
// torus) and its answer lands in its block.
func TestLifeBlocks(t *testing.T) {
	c := config(grid.RulesLife, 8, 4)
	c.Block, c.Cells = 4, [][]int{{7, 0}, {0, 3}}
	s := seats("cells", 2)
	w := mustNew(t, c, s, 1)
	obs, _, _ := w.Observe(s[0].ID, 1) // block at x 0..3
	var o grid.LifeObservation
	json.Unmarshal(obs, &o)
	// (7,0) is seen at dx -1 (x wraps) in rows 0 and 4 (y wraps); (0,3) at
	// row 3 and at row -1.
	want := map[[2]int]bool{{-1, 0}: true, {-1, 4}: true, {0, 3}: true, {0, -1}: true}
	got := map[[2]int]bool{}
	for _, a := range o.Alive {
		got[a] = true
	}
	if o.X != 0 || o.W != 4 || o.H != 4 || len(got) != len(want) {
		t.Fatalf("observation %s, want alive %v", obs, want)
	}
	for k := range want {
		if !got[k] {
			t.Fatalf("observation %s lacks %v", obs, k)
		}
	}
	acts := []world.Action{
		{Agent: s[0].ID, Tick: 1, Data: json.RawMessage(`{"alive":[[1,1]]}`)},
		{Agent: s[1].ID, Tick: 1, Data: json.RawMessage(`{"alive":[[0,0],[3,3]]}`)},
	}
	res, err := w.Step(1, acts, world.TickRNG(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if res.Metrics["population"] != 3 || res.Metrics["births"] != 3 || res.Metrics["deaths"] != 2 {
		t.Fatalf("metrics %v, want population 3, births 3, deaths 2", res.Metrics)
	}
	if err := w.Validate(world.Action{Agent: s[0].ID, Tick: 2, Data: json.RawMessage(`{"alive":[[4,0]]}`)}); err == nil {
		t.Error("a cell outside the agent's block was accepted")
	}
}

// Predator-prey seats: dead seats are not observed; a birth with no free
// seat is refused; a newborn's seat is observed from the next tick.
func TestPredatorPreyPool(t *testing.T) {
	c := config(grid.RulesPredatorPrey, 6, 6)
	c.InitialPrey, c.InitialPredators, c.Grass = 2, 0, false
	c.PreyReproduce = 1
	s := seats("sheep", 3, "wolves", 1)
	w := mustNew(t, c, s, 1)
	if _, ok, _ := w.Observe("sheep-003", 1); ok {
		t.Fatal("a seat of the pool beyond initial_prey is observed")
	}
	if _, ok, _ := w.Observe("wolves-001", 1); ok {
		t.Fatal("a wolf seat is observed with initial_predators = 0")
	}
	both := `{"move":[0,0],"reproduce":true}`
	res, err := w.Step(1, []world.Action{{Agent: "sheep-001", Tick: 1, Data: json.RawMessage(both)}, {Agent: "sheep-002", Tick: 1, Data: json.RawMessage(both)}}, world.TickRNG(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if res.Metrics["births"] != 1 || res.Metrics["births_refused"] != 1 || res.Metrics["prey"] != 3 {
		t.Fatalf("metrics %v, want 1 birth, 1 refused, 3 prey", res.Metrics)
	}
	if _, ok, _ := w.Observe("sheep-003", 2); !ok {
		t.Fatal("the newborn's seat is not observed at the next tick")
	}
	// The refusal is in the result, and survives a checkpoint.
	if r := w.Result().(grid.Result); r.FirstNonZero["births_refused"] != 1 || r.Initial["prey"] != 2 {
		t.Errorf("result first_nonzero %v, initial %v; want births_refused at tick 1, 2 prey", r.FirstNonZero, r.Initial)
	}
	if m := w.InitialMetrics(); m["prey"] != 2 || m["births_refused"] != 0 {
		t.Errorf("initial metrics %v, want 2 prey", m)
	}
	snap, err := w.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := grid.New(*c, s)
	if err := again.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if r := again.Result().(grid.Result); r.FirstNonZero["births_refused"] != 1 || again.StateHash() != w.StateHash() {
		t.Errorf("restored: first_nonzero %v, state %.12s (was %.12s)", r.FirstNonZero, again.StateHash(), w.StateHash())
	}
}

func TestConfigErrors(t *testing.T) {
	type settinger interface{ WorldSetting() (string, string) }
	for _, tc := range []struct {
		name    string
		edit    func(c *grid.Config)
		s       []world.Seat
		setting string
		want    string
	}{
		{"unknown rules", func(c *grid.Config) { c.Rules = "sugarscape" }, seats("a", 1), "rules", "unknown rule set"},
		{"bad size", func(c *grid.Config) { c.Width = 0 }, seats("a", 1), "width", "at least 1"},
		{"bad topology", func(c *grid.Config) { c.Topology = "sphere" }, seats("a", 1), "topology", "want"},
		{"setting of other rules", func(c *grid.Config) { c.Threshold = 0.5 }, seats("a", 1), "threshold", `setting of rules = "schelling"`},
		{"schelling full grid", func(c *grid.Config) { c.Rules, c.Width, c.Height = grid.RulesSchelling, 2, 2 }, seats("a", 2, "b", 2), "", "empty cell"},
		{"life agents", func(c *grid.Config) { c.Rules, c.Pattern = grid.RulesLife, "block" }, seats("a", 3), "", "needs 3 x 3 = 9 agents"},
		{"life pattern", func(c *grid.Config) { c.Rules, c.Pattern = grid.RulesLife, "gun" }, seats("a", 9), "pattern", "unknown"},
		{"pool too small", func(c *grid.Config) { c.Rules = grid.RulesPredatorPrey }, seats("sheep", 10, "wolves", 60), "initial_prey", "pool of seats"},
		{"stray block", func(c *grid.Config) { c.Rules, c.InitialPrey, c.InitialPredators = grid.RulesPredatorPrey, 1, 1 }, seats("sheep", 1, "wolves", 1, "cows", 1), "", "neither prey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := grid.NewConfig()
			c.Rules = grid.RulesBoltzmann
			tc.edit(c)
			_, err := grid.New(*c, tc.s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if tc.setting != "" {
				var se settinger
				if !errors.As(err, &se) {
					t.Fatalf("error %v names no setting, want %s", err, tc.setting)
				}
				if got, _ := se.WorldSetting(); got != tc.setting {
					t.Fatalf("error at setting %s, want %s", got, tc.setting)
				}
			}
		})
	}
}

// The dashboard's picture of the grid is what a world.grid event of the
// same tick shows, with the metric table.
func TestViewMatchesGridEvent(t *testing.T) {
	su := setups()[4] // predator-prey: agents of two groups and a grass layer
	su.c.Snapshots = []int{1}
	w := mustNew(t, su.c, su.s, 1)
	obs := map[world.AgentID]json.RawMessage{}
	for _, s := range su.s {
		o, ok, err := w.Observe(s.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			obs[s.ID] = o
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	var acts []world.Action
	for _, s := range su.s {
		if o, ok := obs[s.ID]; ok {
			acts = append(acts, world.Action{Agent: s.ID, Tick: 1, Data: randomAction(t, su.rules, o, r)})
		}
	}
	res, err := w.Step(1, acts, rand.New(rand.NewPCG(3, 4)))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	for _, e := range res.Events {
		if e.Kind == "grid" {
			ev = e.Fields
		}
	}
	if ev == nil {
		t.Fatal("no grid event at tick 1")
	}
	v, ok := world.ViewOf(w)
	if !ok || v.Grid == nil || len(v.Tables) != 1 {
		t.Fatalf("view %+v", v)
	}
	g := v.Grid
	want, _ := json.Marshal(map[string]any{"agents": ev["agents"], "layers": ev["layers"], "width": ev["width"], "height": ev["height"], "groups": ev["groups"]})
	got, _ := json.Marshal(map[string]any{"agents": g.Agents, "layers": g.Layers, "width": g.Width, "height": g.Height, "groups": g.Groups})
	if string(got) != string(want) || len(g.Agents) == 0 || len(g.Layers) == 0 || len(g.Groups) != 2 {
		t.Errorf("view\n got %s\nwant %s", got, want)
	}
}
