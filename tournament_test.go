package terrarium_test

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/scenarios"
)

// An independent computation of the tournament in scenarios/axelrod.hcl:
// the strategies written again here from their definitions, not taken from
// the program.
type strategy func(me, them []byte) byte

var referenceStrategies = map[string]strategy{
	"cooperator": func(me, them []byte) byte { return 'C' },
	"defector":   func(me, them []byte) byte { return 'D' },
	"tit_for_tat": func(me, them []byte) byte {
		if len(them) == 0 {
			return 'C'
		}
		return them[len(them)-1]
	},
	"grudger": func(me, them []byte) byte {
		for _, m := range them {
			if m == 'D' {
				return 'D'
			}
		}
		return 'C'
	},
	"tit_for_two_tats": func(me, them []byte) byte {
		n := len(them)
		if n >= 2 && them[n-1] == 'D' && them[n-2] == 'D' {
			return 'D'
		}
		return 'C'
	},
	"suspicious_tit_for_tat": func(me, them []byte) byte {
		if len(them) == 0 {
			return 'D'
		}
		return them[len(them)-1]
	},
	"alternator": func(me, them []byte) byte {
		if len(me)%2 == 0 {
			return 'C'
		}
		return 'D'
	},
	"pavlov": func(me, them []byte) byte {
		n := len(me)
		if n == 0 {
			return 'C'
		}
		last := me[n-1]
		if p := pdPayoff(last, them[n-1]); p == 3 || p == 5 {
			return last
		}
		if last == 'C' {
			return 'D'
		}
		return 'C'
	},
}

func pdPayoff(me, them byte) float64 {
	switch {
	case me == 'C' && them == 'C':
		return 3
	case me == 'C' && them == 'D':
		return 0
	case me == 'D' && them == 'C':
		return 5
	default:
		return 1
	}
}

func playMatch(a, b strategy, rounds int) (float64, float64) {
	var ha, hb []byte
	var sa, sb float64
	for r := 0; r < rounds; r++ {
		ma, mb := a(ha, hb), b(hb, ha)
		sa += pdPayoff(ma, mb)
		sb += pdPayoff(mb, ma)
		ha, hb = append(ha, ma), append(hb, mb)
	}
	return sa, sb
}

func referenceTournament(rounds int) map[string]float64 {
	names := make([]string, 0, len(referenceStrategies))
	for n := range referenceStrategies {
		names = append(names, n)
	}
	sort.Strings(names)
	total := map[string]float64{}
	for i, a := range names {
		self, _ := playMatch(referenceStrategies[a], referenceStrategies[a], rounds)
		total[a] += self // the self-match counted once; the twin is not ranked
		for _, b := range names[i+1:] {
			sa, sb := playMatch(referenceStrategies[a], referenceStrategies[b], rounds)
			total[a] += sa
			total[b] += sb
		}
	}
	return total
}

func TestReferencePairValues(t *testing.T) {
	s := referenceStrategies
	for _, c := range []struct {
		a, b   string
		wa, wb float64
	}{
		{"tit_for_tat", "tit_for_tat", 600, 600},
		{"defector", "tit_for_tat", 204, 199},
		{"cooperator", "defector", 0, 1000},
	} {
		if ga, gb := playMatch(s[c.a], s[c.b], 200); ga != c.wa || gb != c.wb {
			t.Errorf("%s vs %s = %v-%v, want %v-%v", c.a, c.b, ga, gb, c.wa, c.wb)
		}
	}
}

func TestAxelrodTournament(t *testing.T) {
	sc := loadScenario(t, filepath.Join("scenarios", "axelrod.hcl"))
	res, recs, err := runScenario(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != 200 {
		t.Fatalf("status %s after %d ticks, want finished after 200", res.Status, res.Ticks)
	}
	want := referenceTournament(200)
	got := scores(t, res)
	if len(got) != len(want) {
		t.Errorf("ranking has %d strategies, want %d: %v", len(got), len(want), got)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s scored %v, independent computation says %v", name, got[name], w)
		}
	}
	if n := len(kinds(recs, events.AgentSpawned)); n != 16 {
		t.Errorf("%d agent processes, want 16", n)
	}
	for _, a := range res.Agents {
		if a.Missing != 0 || a.Rejected != 0 || a.Late != 0 || a.Actions != 200 {
			t.Errorf("agent %s: %+v, want 200 clean actions", a.ID, a.AgentStats)
		}
		if a.Status != "stopped" {
			t.Errorf("agent %s status %s, want stopped", a.ID, a.Status)
		}
	}
	// metrics.csv: a header and one row per tick.
	f, err := os.Open(filepath.Join(res.Dir, "metrics.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 201 || rows[0][0] != "tick" || len(rows[0]) < 2 {
		t.Errorf("metrics.csv has %d rows, header %v; want 201 rows with tick + metrics", len(rows), rows[0])
	}
	for _, p := range []string{"scenario.hcl", "logs/tit_for_tat-1.log", "workspace/agents/pavlov-2", "bin/terrarium"} {
		if _, err := os.Stat(filepath.Join(res.Dir, p)); err != nil {
			t.Errorf("run directory lacks %s: %v", p, err)
		}
	}
	t.Logf("tournament: %d ms, median tick %d µs", res.DurationMS, res.TickTime.MedianUS)
}

// BenchmarkAxelrodTournament runs the shipped tournament end to end (16
// agent processes, 200 lockstep ticks) and reports its median tick.
//
//	go test -run '^$' -bench AxelrodTournament -benchtime 5x .
func BenchmarkAxelrodTournament(b *testing.B) {
	sc, diags := scenarios.Load(filepath.Join("scenarios", "axelrod.hcl"))
	if diags.HasErrors() {
		b.Fatal(diags.Error())
	}
	var medians []float64
	for i := 0; i < b.N; i++ {
		h, err := terrarium.New(terrarium.Config{Scenario: sc, Dir: filepath.Join(b.TempDir(), "run"), Env: raceEnv})
		if err != nil {
			b.Fatal(err)
		}
		res, err := h.Run(context.Background())
		_ = h.Close()
		if err != nil {
			b.Fatal(err)
		}
		medians = append(medians, float64(res.TickTime.MedianUS))
	}
	sort.Float64s(medians)
	b.ReportMetric(medians[len(medians)/2], "median-tick-µs")
}
