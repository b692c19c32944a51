package terrarium_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world/game"
	"github.com/terrarium-sim/terrarium/world/grid"
)

// The shipped classic scenarios, run through the host with real agents
// (processes, or pools for the large populations), each checked against
// the result it must reach, on a shortened horizon or fewer seeds where the
// full run would not fit CI. The full-length checks run through
// `terrarium sweep`; docs/scenarios.md has their figures and command lines.

// classic loads scenarios/NAME.hcl with each old string replaced by new
// (each must occur exactly once).
func classic(t testing.TB, name string, edits ...string) *scenarios.Scenario {
	t.Helper()
	return classicWith(t, name, nil, edits...)
}

// classicWith is classic with the scenario's variables set.
func classicWith(t testing.TB, name string, vars map[string]string, edits ...string) *scenarios.Scenario {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("scenarios", name+".hcl"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		if n := strings.Count(src, edits[i]); n != 1 {
			t.Fatalf("scenarios/%s.hcl: %q occurs %d times, want once", name, edits[i], n)
		}
		src = strings.Replace(src, edits[i], edits[i+1], 1)
	}
	path := filepath.Join(t.TempDir(), "scenario.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, diags := scenarios.LoadWith(path, scenarios.LoadOptions{Vars: vars})
	if diags.HasErrors() {
		t.Fatalf("load %s with %v: %s", name, vars, diags.Error())
	}
	return sc
}

// runClassic runs sc to the end and returns the result and events. Like
// runScenario, with a longer deadline: a hundred processes for a few hundred
// ticks take minutes on a loaded 2-core machine.
func runClassic(t *testing.T, sc *scenarios.Scenario) (*terrarium.Result, []events.Record) {
	t.Helper()
	res, recs, err := runScenarioWithin(t, sc, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != terrarium.StatusFinished {
		t.Fatalf("status %s after %d ticks", res.Status, res.Ticks)
	}
	checkDocumented(t, recs)
	for _, a := range res.Agents {
		if a.Missing > 0 || a.Rejected > 0 {
			t.Errorf("agent %s: %d missing, %d rejected actions", a.ID, a.Missing, a.Rejected)
		}
	}
	return res, recs
}

// worldResult decodes result.json's world part as written on disk.
func worldResult[T any](t *testing.T, res *terrarium.Result) T {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(res.Dir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	var disk struct{ World T }
	if err := json.Unmarshal(b, &disk); err != nil {
		t.Fatalf("result.json: %v", err)
	}
	return disk.World
}

// metricsColumn reads one column of metrics.csv, in tick order from tick 1
// (after the initial state's row, tick 0, if there is one).
func metricsColumn(t *testing.T, res *terrarium.Result, name string) []float64 {
	t.Helper()
	v, _, _ := metricsColumn0(t, res, name)
	return v
}

// metricsColumn0 is metricsColumn and the tick-0 row's value (ok false:
// no tick-0 row).
func metricsColumn0(t *testing.T, res *terrarium.Result, name string) (_ []float64, initial float64, ok bool) {
	t.Helper()
	f, err := os.Open(filepath.Join(res.Dir, "metrics.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := -1
	for i, h := range rows[0] {
		if h == name {
			col = i
		}
	}
	if col < 0 {
		t.Fatalf("metrics.csv has no column %q: %v", name, rows[0])
	}
	var out []float64
	rows = rows[1:]
	if len(rows) > 0 && rows[0][0] == "0" {
		if initial, err = strconv.ParseFloat(rows[0][col], 64); err != nil {
			t.Fatalf("metrics.csv tick 0 %s: %v", name, err)
		}
		ok, rows = true, rows[1:]
	}
	for k, r := range rows {
		if r[0] != strconv.Itoa(k+1) {
			t.Fatalf("metrics.csv row %d is tick %s", k+1, r[0])
		}
		v, err := strconv.ParseFloat(r[col], 64)
		if err != nil {
			t.Fatalf("metrics.csv tick %d %s: %v", k+1, name, err)
		}
		out = append(out, v)
	}
	return out, initial, ok
}

// gridAt returns the alive cells of the world.grid event for tick at.
func gridAt(t *testing.T, recs []events.Record, at int) map[[2]int]bool {
	t.Helper()
	for _, r := range kinds(recs, "world.grid") {
		var d struct {
			At     int
			Layers map[string][][3]int
		}
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.At == at {
			cells := map[[2]int]bool{}
			for _, c := range d.Layers["alive"] {
				cells[[2]int{c[0], c[1]}] = true
			}
			return cells
		}
	}
	t.Fatalf("no world.grid event at tick %d", at)
	return nil
}

func shifted(cells map[[2]int]bool, dx, dy, w, h int) map[[2]int]bool {
	out := map[[2]int]bool{}
	for c := range cells {
		out[[2]int{((c[0]+dx)%w + w) % w, ((c[1]+dy)%h + h) % h}] = true
	}
	return out
}

func sameCells(a, b map[[2]int]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for c := range a {
		if !b[c] {
			return false
		}
	}
	return true
}

func TestClassicLife(t *testing.T) {
	t.Run("glider", func(t *testing.T) {
		sc := classic(t, "life", "horizon        = 64", "horizon        = 8", "snapshots      = [0, 1, 2, 3, 4]", "snapshots      = [0, 4, 8]")
		res, recs := runClassic(t, sc)
		for _, p := range metricsColumn(t, res, "population") {
			if p != 5 {
				t.Fatalf("glider population %v, want 5 every tick", p)
			}
		}
		g0 := gridAt(t, recs, 0)
		for _, at := range []int{4, 8} {
			if got, want := gridAt(t, recs, at), shifted(g0, at/4, at/4, 16, 16); !sameCells(got, want) {
				t.Errorf("tick %d: glider %v, want the tick-0 shape shifted (%d,%d): %v", at, got, at/4, at/4, want)
			}
		}
	})
	t.Run("blinker", func(t *testing.T) {
		sc := classic(t, "life", `pattern        = "glider"`, `pattern        = "blinker"`, "horizon        = 64", "horizon        = 4", "at             = [1, 1]", "at             = [6, 7]")
		_, recs := runClassic(t, sc)
		g0, g1, g2 := gridAt(t, recs, 0), gridAt(t, recs, 1), gridAt(t, recs, 2)
		if sameCells(g0, g1) || !sameCells(g0, g2) || len(g1) != 3 {
			t.Errorf("blinker not of period 2: %v, %v, %v", g0, g1, g2)
		}
	})
	t.Run("block", func(t *testing.T) {
		sc := classic(t, "life", `pattern        = "glider"`, `pattern        = "block"`, "horizon        = 64", "horizon        = 4", "at             = [1, 1]", "at             = [7, 7]")
		_, recs := runClassic(t, sc)
		for at := 1; at <= 4; at++ {
			if !sameCells(gridAt(t, recs, 0), gridAt(t, recs, at)) {
				t.Errorf("block changed at tick %d", at)
			}
		}
	})
	t.Run("diehard", func(t *testing.T) {
		sc := classic(t, "life", `pattern        = "glider"`, `pattern        = "diehard"`, "horizon        = 64", "horizon        = 140",
			"width          = 16", "width          = 40", "height         = 16", "height         = 40", "at             = [1, 1]", "at             = [16, 18]",
			"block          = 8", "block          = 10", "count   = 4", "count   = 16")
		res, _ := runClassic(t, sc)
		r := worldResult[grid.Result](t, res)
		if r.FirstZero["population"] != 130 {
			t.Errorf("diehard died out at generation %d, want 130", r.FirstZero["population"])
		}
	})
}

// Schelling at full size, 51x51 torus and 2,470 agents, served by four
// pools (schelling-pool) through the host: the share of like neighbours
// starts near 0.5 (metrics.csv's tick-0 row) and ends at 0.70 or more,
// everyone content by tick 200 (here: by tick 50, the horizon). One seed
// here; the five of the issue, to tick 200, run through terrarium sweep
// (docs/scenarios.md).
func TestClassicSchelling(t *testing.T) {
	res, _ := runClassic(t, classic(t, "schelling", "horizon       = 200", "horizon       = 50"))
	r := worldResult[grid.Result](t, res)
	share, initial, ok := metricsColumn0(t, res, "share_alike")
	if !ok || initial != r.Initial["share_alike"] {
		t.Errorf("metrics.csv's tick-0 row: share alike %v (row there: %v), want the initial state's %v", initial, ok, r.Initial["share_alike"])
	}
	if _, err := terrarium.VerifyRun(res.Dir); err != nil {
		t.Errorf("verify (the tick-0 row counted apart): %v", err)
	}
	if len(res.Agents) != 2470 || len(share) != 50 {
		t.Fatalf("%d agents, %d ticks; want 2470, 50", len(res.Agents), len(share))
	}
	t.Logf("share alike %.3f -> %.3f; everyone content from tick %d", initial, share[len(share)-1], r.FirstZero["unhappy"])
	if initial < 0.45 || initial > 0.55 {
		t.Errorf("initial share alike %.3f, want near 0.5", initial)
	}
	if last := share[len(share)-1]; last < 0.70 {
		t.Errorf("final share alike %.3f, want >= 0.70", last)
	}
	if first, ok := r.FirstZero["unhappy"]; !ok || first > 50 {
		t.Errorf("everyone content from tick %d (%v), want by tick 50", first, ok)
	}
}

// A pool runs the very agent code a process runs: the Schelling agent
// draws no random number, so the same scenario and seed with a process
// per agent (12x12 torus, 136 agents) and with pools ends in the same
// state, with the same actions every tick (events.Project).
func TestClassicSchellingPoolEqualsProcesses(t *testing.T) {
	small := []string{"width         = 51", "width         = 12", "height        = 51", "height        = 12",
		"horizon       = 200", "horizon       = 30", "count   = 1235\n}\n\nagent \"red\"", "count   = 68\n}\n\nagent \"red\"", "count   = 1235\n}\n", "count   = 68\n}\n"}
	procs := []string{`  runtime = "pool"
  command = "schelling-pool"
  count   = 68
}

agent "red"`, `  runtime = "builtin"
  command = "schelling"
  count   = 68
}

agent "red"`, `  runtime = "pool"
  command = "schelling-pool"
  count   = 68
}
`, `  runtime = "builtin"
  command = "schelling"
  count   = 68
}
`}
	digest := func(edits []string) string {
		res, recs := runClassic(t, classic(t, "schelling", append(small, edits...)...))
		p, err := events.Project(recs)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != 30 || res.StateHash == "" {
			t.Fatalf("%d ticks projected, state %q; want 30", len(p), res.StateHash)
		}
		return events.Digest(p) + " " + res.StateHash
	}
	if pool, proc := digest(nil), digest(procs); pool != proc {
		t.Errorf("the run's deterministic projection and state: %s with pools, %s with processes", pool, proc)
	}
}

func TestClassicBoltzmann(t *testing.T) {
	// 200 ticks, the Gini averaged over ticks 100-200 (the scenario: 100-300).
	res, _ := runClassic(t, classic(t, "boltzmann", "horizon       = 300", "horizon       = 200"))
	for tick, v := range metricsColumn(t, res, "total_wealth") {
		if v != 100 {
			t.Fatalf("tick %d: total wealth %v, want 100", tick+1, v)
		}
	}
	for tick, v := range metricsColumn(t, res, "min_wealth") {
		if v < 0 {
			t.Fatalf("tick %d: min wealth %v", tick+1, v)
		}
	}
	if transfers := worldResult[grid.Result](t, res).Metrics["transfers"]; transfers.Sum == 0 {
		t.Error("no unit changed hands")
	}
	g := worldResult[grid.Result](t, res).Metrics["gini"]
	t.Logf("gini over ticks %d-200: mean %.3f", g.From, g.Mean)
	if g.From != 100 || g.Ticks != 101 || g.Mean < 0.58 || g.Mean > 0.72 {
		t.Errorf("gini mean over %d ticks from %d = %.3f, want 0.58-0.72 over ticks 100-200 (one seed; the 10-seed mean over 100-300 is in agents/builtin)", g.Ticks, g.From, g.Mean)
	}
}

func TestClassicElFarol(t *testing.T) {
	// 150 weeks, measured from week 50 (the scenario: 1,000 from 100).
	res, _ := runClassic(t, classic(t, "el_farol", "rounds       = 1000", "rounds       = 150", "measure_from = 100", "measure_from = 50"))
	r := worldResult[game.NPlayerResult](t, res)
	t.Logf("attendance over weeks %d-%d: mean %.2f sd %.2f", r.MeasureFrom, r.RoundsPlayed, r.MeanAttendance, r.SDAttendance)
	if r.Measured != 101 || r.MeanAttendance < 57 || r.MeanAttendance > 63 || r.SDAttendance < 3 {
		t.Errorf("%d weeks measured, mean %.2f sd %.2f; want 101, 60 ± 3, sd >= 3", r.Measured, r.MeanAttendance, r.SDAttendance)
	}
}

// The minority game, N = 101, S = 2 (the scenario: 3,000 rounds measured
// from round 1,000): m = 2 and random play with 101 processes, one seed
// each, over rounds 50-150; m = 5 with the players in a pool
// (minority-pool), one seed, over rounds 500-1,000. At m = 5 (α = 2^5/101
// ≈ 0.32, just below the critical α ≈ 0.34) σ²/N differs much between
// samples (TestMinorityReference in agents/builtin: 0.16-0.86 over 20
// samples of an independent implementation), so the "below 0.5" is
// a property of the mean over samples measured after a long transient: the
// full-length sweep checks it (docs/scenarios.md). Here the sample at
// m = 5 must coordinate better than random play (below 1), far better than
// m = 2's herding.
func TestClassicMinority(t *testing.T) {
	short := []string{"rounds       = 3000", "rounds       = 150", "measure_from = 1000", "measure_from = 50"}
	got := map[string]float64{}
	for _, c := range []struct {
		name     string
		vars     map[string]string
		min, max float64
	}{
		{"m=2", map[string]string{"memory": "2"}, 1, 1e9},
		{"random", map[string]string{"player": "random_choice"}, 0.7, 1.3},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, _ := runClassic(t, classicWith(t, "minority", c.vars, short...))
			r := worldResult[game.NPlayerResult](t, res)
			t.Logf("σ²/N over rounds %d-%d = %.3f", r.MeasureFrom, r.RoundsPlayed, r.Volatility)
			if r.Measured != 101 || r.Volatility < c.min || r.Volatility > c.max {
				t.Errorf("σ²/N = %.3f over %d rounds, want %g-%g over 101", r.Volatility, r.Measured, c.min, c.max)
			}
			got[c.name] = r.Volatility
		})
	}
	t.Run("m=5 pool", func(t *testing.T) {
		res, _ := runClassic(t, classicWith(t, "minority", map[string]string{"runtime": "pool"},
			"rounds       = 3000", "rounds       = 1000", "measure_from = 1000", "measure_from = 500"))
		r := worldResult[game.NPlayerResult](t, res)
		if len(res.Agents) != 101 || r.Measured != 501 {
			t.Fatalf("%d agents, %d rounds measured; want 101, 501", len(res.Agents), r.Measured)
		}
		t.Logf("σ²/N over rounds 500-1000 = %.3f", r.Volatility)
		if r.Volatility >= 1 {
			t.Errorf("σ²/N = %.3f, want below random play's 1", r.Volatility)
		}
		if m2, ok := got["m=2"]; ok && r.Volatility > m2/4 {
			t.Errorf("σ²/N = %.3f, want far below m = 2's %.3f", r.Volatility, m2)
		}
	})
}

// Predator-prey through the host with the seats in pools (animal-pool):
// with grass, on NetLogo's 51x51 torus, both species are alive at tick 400
// (the scenario: 1,000); without grass, on a 20x20 torus where it happens
// sooner, one of them dies out by tick 200. No birth is refused while both
// live, with 1,000 and 500 seats (the scenario: 4,000 and 2,000, for the
// sheep's boom without grass on the large torus). One seed each here; the
// ten of the issue, to tick 1,000 on the 51x51 torus, run through
// terrarium sweep (docs/scenarios.md).
func TestClassicPredatorPrey(t *testing.T) {
	for _, c := range []struct {
		grass, size, horizon string
	}{{"true", "51", "400"}, {"false", "20", "200"}} {
		t.Run("grass="+c.grass, func(t *testing.T) {
			res, _ := runClassic(t, classicWith(t, "predator_prey", map[string]string{"grass": c.grass, "size": c.size},
				"horizon            = 1000", "horizon            = "+c.horizon, "count   = 4000", "count   = 1000", "count   = 2000", "count   = 500"))
			r := worldResult[grid.Result](t, res)
			t.Logf("%dx%d, %d ticks: extinct %v, sheep mean %.0f max %.0f, wolves mean %.0f max %.0f, births refused %v from tick %v",
				r.Width, r.Height, r.Ticks, r.FirstZero, r.Metrics["prey"].Mean, r.Metrics["prey"].Max, r.Metrics["predators"].Mean, r.Metrics["predators"].Max,
				r.Metrics["births_refused"].Sum, r.FirstNonZero["births_refused"])
			if c.grass == "true" && (len(r.FirstZero) != 0 || r.Ticks != 400) {
				t.Errorf("with grass: died out %v, want both species alive at tick 400 (%d)", r.FirstZero, r.Ticks)
			}
			if c.grass == "false" && len(r.FirstZero) == 0 {
				t.Errorf("without grass: both species alive at tick %d, want one dead", r.Ticks)
			}
			if refused, ok := r.FirstNonZero["births_refused"]; ok && (len(r.FirstZero) == 0 || refused <= minValue(r.FirstZero)) {
				t.Errorf("a birth was refused at tick %d while both species lived (extinct %v): the seat pools are too small", refused, r.FirstZero)
			}
		})
	}
}

func minValue(m map[string]int) int {
	lo := -1
	for _, v := range m {
		if lo < 0 || v < lo {
			lo = v
		}
	}
	return lo
}

// Predator-prey with a process per seat, small: the seat pools at work. Dead seats
// stop being observed, births wake free seats, whose processes then act.
func TestClassicPredatorPreySeats(t *testing.T) {
	sc := classicWith(t, "predator_prey", map[string]string{"size": "15"},
		"initial_prey       = 100", "initial_prey       = 20", "initial_predators  = 50", "initial_predators  = 5",
		"horizon            = 1000", "horizon            = 80",
		"runtime = \"pool\"\n  command = \"animal-pool\"\n  count   = 4000", "runtime = \"builtin\"\n  command = \"animal\"\n  count   = 40",
		"runtime = \"pool\"\n  command = \"animal-pool\"\n  count   = 2000", "runtime = \"builtin\"\n  command = \"animal\"\n  count   = 10")
	res, recs := runClassic(t, sc)
	prey, wolves := metricsColumn(t, res, "prey"), metricsColumn(t, res, "predators")
	births, deaths := metricsColumn(t, res, "births"), metricsColumn(t, res, "deaths")
	// Every tick's actions are those of the seats alive after the tick before.
	closed := kinds(recs, "tick.closed")
	alive := 25.0
	woken := map[string]bool{}
	var bornTotal, diedTotal float64
	for k, r := range closed {
		var d struct {
			Actions []struct{ Agent string }
		}
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		if float64(len(d.Actions)) != alive {
			t.Fatalf("tick %d: %d actions, want one per live animal (%v)", k+1, len(d.Actions), alive)
		}
		for _, a := range d.Actions {
			var i int
			if _, err := fmtSscan(a.Agent, &i); err == nil && ((strings.HasPrefix(a.Agent, "sheep-") && i > 20) || (strings.HasPrefix(a.Agent, "wolves-") && i > 5)) {
				woken[a.Agent] = true
			}
		}
		if k < len(prey) {
			alive = prey[k] + wolves[k]
			bornTotal += births[k]
			diedTotal += deaths[k]
		}
	}
	t.Logf("%d ticks: %v births, %v deaths, %d seats woken from the pool", len(closed), bornTotal, diedTotal, len(woken))
	if bornTotal == 0 || diedTotal == 0 || len(woken) == 0 {
		t.Errorf("want births, deaths and woken seats acting; got %v, %v, %d", bornTotal, diedTotal, len(woken))
	}
}

// fmtSscan reads the number after the last "-" of an agent id.
func fmtSscan(id string, n *int) (int, error) {
	v, err := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
	*n = v
	return 1, err
}

// A builtin agent's bad argument is refused when the file is loaded, for
// one agent per process and for a pool alike, also when a variable makes it.
func TestClassicBadArgsRefusedAtLoad(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("scenarios", "minority.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	line := `  args    = var.player == "random_choice" ? ["p=0.5"] : ["strategies=2", "memory=${var.memory}"]`
	at := fmt.Sprintf("minority.hcl:%d", strings.Count(string(b[:strings.Index(string(b), line)]), "\n")+1)
	for _, c := range []struct {
		args string
		vars map[string]string
		want string
	}{
		{`["strategies=2", "memory=five"]`, nil, `argument memory="five": want a whole number from 1 to 16`},
		{`["strategies=2", "memroy=5"]`, nil, `unknown argument "memroy"`},
		{`["memory"]`, nil, `argument "memory": want name=value`},
		{`["memory"]`, map[string]string{"runtime": "pool"}, `argument "memory": want name=value`},
		{"", map[string]string{"memory": "17"}, `argument memory="17": want a whole number from 1 to 16`},
		{"", map[string]string{"memory": "17", "runtime": "pool"}, `argument memory="17": want a whole number from 1 to 16`},
	} {
		src := string(b)
		if c.args != "" {
			src = strings.Replace(src, line, "  args    = "+c.args, 1)
		}
		path := filepath.Join(t.TempDir(), "minority.hcl")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		_, diags := scenarios.LoadWith(path, scenarios.LoadOptions{Vars: c.vars})
		if !diags.HasErrors() || !strings.Contains(diags.Error(), c.want) || !strings.Contains(diags.Error(), at) {
			t.Errorf("args = %s, vars %v: %v, want an error at %s saying %q", c.args, c.vars, diags, at, c.want)
		}
	}
}
