package sweep_test

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/internal/testlog"
	"github.com/terrarium-sim/terrarium/sweep"
)

func TestMain(m *testing.M) {
	builtin.Main() // the test binary is also the builtin agents' binary
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	os.Exit(m.Run())
}

const scenario = `
variable "strategy" { default = "tit_for_tat" }
scenario "sw" {
  ticks         = 3
  ready_timeout = "20s"
}
world "repeated_game" { rounds = 3 }
agent "me" {
  # "false" is the deliberately failing value: a program that exits at once.
  runtime = var.strategy == "false" ? "nats" : "builtin"
  command = var.strategy == "false" ? "/bin/false" : var.strategy
}
agent "random" {
  runtime = "builtin"
  command = "random"
}
`

// Case 4 of the issue: 3 values x 5 seeds, two at a time: 15 run
// directories, a correct sweep.csv, the failing value reported without
// stopping the others, and a second invocation runs nothing.
func TestSweep(t *testing.T) {
	tmp := t.TempDir()
	for _, d := range []string{filepath.Dir(tmp), tmp} {
		os.Chmod(d, 0o755) // agents may run as their own users
	}
	path := filepath.Join(tmp, "sw.hcl")
	if err := os.WriteFile(path, []byte(scenario), 0o644); err != nil {
		t.Fatal(err)
	}
	seeds, err := sweep.ParseSeeds("1..5")
	if err != nil {
		t.Fatal(err)
	}
	var last sweep.Progress
	cfg := sweep.Config{
		Scenario: path, Seeds: seeds, Parallel: 2, Out: filepath.Join(tmp, "out"), Logger: testlog.New(t),
		Vars:     []sweep.Var{{Name: "strategy", Values: []string{"pavlov", "false", "defector", "no_such_strategy"}}},
		Host:     terrarium.Config{Env: map[string]string{"GORACE": "atexit_sleep_ms=0"}},
		Progress: func(p sweep.Progress) { last = p },
	}
	sum, err := sweep.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// no_such_strategy is refused when the scenario is loaded: 5 points
	// failed without a run.
	if sum.Ran != 15 || sum.Refused != 5 || sum.Failed != 10 || sum.Skipped != 0 {
		t.Errorf("ran %d, refused %d, failed %d, skipped %d; want 15, 5, 10, 0", sum.Ran, sum.Refused, sum.Failed, sum.Skipped)
	}
	if last.Done != 20 || last.Runs != 20 || last.Failed != 10 || last.Ticks != 30 || last.TotalTicks != 45 {
		t.Errorf("last progress %+v", last)
	}
	f, err := os.Open(filepath.Join(cfg.Out, "sweep.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 21 {
		t.Fatalf("sweep.csv: %d rows, %v", len(rows), err)
	}
	want := []string{"strategy", "seed", "status", "ticks", "state_hash", "cooperation_rate", "mean_payoff", "duration_ms", "error", "dir"}
	if len(rows[0]) < len(want) || !reflect.DeepEqual(rows[0][:len(want)], want) {
		t.Fatalf("header %v, want %v then the world's figures", rows[0], want)
	}
	for _, h := range rows[0][len(want):] {
		if !strings.HasPrefix(h, sweep.WorldColumn) {
			t.Errorf("header %v: %q after dir, want only %s columns", rows[0], h, sweep.WorldColumn)
		}
	}
	hashes := map[string]bool{}
	for i, r := range rows[1:] {
		strategy := []string{"pavlov", "false", "defector", "no_such_strategy"}[i/5]
		seed := string(rune('1' + i%5))
		dir := filepath.Join(cfg.Out, "strategy="+strategy, "seed-"+seed)
		if r[0] != strategy || r[1] != seed || r[9] != dir {
			t.Errorf("row %d: %v, want strategy %s seed %s dir %s", i+1, r, strategy, seed, dir)
		}
		if strategy == "no_such_strategy" {
			if r[2] != terrarium.StatusFailed || !strings.Contains(r[8], `No builtin agent is named "no_such_strategy"`) || !strings.Contains(r[8], "sw.hcl:") {
				t.Errorf("row %d: status %s error %q, want failed with the scenario's line", i+1, r[2], r[8])
			}
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "result.json")); err != nil {
			t.Errorf("row %d: %v", i+1, err)
		}
		if strategy == "false" {
			if r[2] != terrarium.StatusFailed || !strings.Contains(r[8], "exited before it was ready") {
				t.Errorf("row %d: status %s error %q, want failed: exited before it was ready", i+1, r[2], r[8])
			}
			continue
		}
		if r[2] != terrarium.StatusFinished || r[3] != "3" || r[4] == "" || r[5] == "" {
			t.Errorf("row %d: %v", i+1, r)
		}
		hashes[r[4]] = true
	}
	if len(hashes) < 8 {
		t.Errorf("%d distinct state hashes over 10 finished runs with the random strategy and 5 seeds", len(hashes))
	}
	var dirs []string
	filepath.WalkDir(cfg.Out, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), "seed-") {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Strings(dirs)
	if len(dirs) != 20 {
		t.Errorf("%d point directories, want 20: %v", len(dirs), dirs)
	}

	again, err := sweep.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if again.Ran != 0 || again.Refused != 0 || again.Skipped != 20 || again.Failed != 10 {
		t.Errorf("second invocation: ran %d, refused %d, skipped %d, failed %d; want 0, 0, 20, 10", again.Ran, again.Refused, again.Skipped, again.Failed)
	}
	rows2, _ := os.ReadFile(filepath.Join(cfg.Out, "sweep.csv"))
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.WriteAll(rows)
	if string(rows2) != b.String() {
		t.Errorf("sweep.csv changed on the second invocation:\n%s\nthen\n%s", b.String(), rows2)
	}

	// A run the sweep left stopped (here: its log cut after tick 2 and no
	// result.json, as a killed sweep leaves it) is resumed by the next
	// invocation and ends as it did.
	stoppedDir, hash := rows[1][9], rows[1][4]
	os.Remove(filepath.Join(stoppedDir, "result.json"))
	ev := filepath.Join(stoppedDir, "events.jsonl")
	log, _ := os.ReadFile(ev)
	cut := strings.Index(string(log), `"kind":"tick.closed","tick":3,`)
	os.WriteFile(ev, log[:strings.LastIndexByte(string(log[:cut]), '\n')+1], 0o644)
	third, err := sweep.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	o := third.Outcomes[0]
	if third.Ran != 1 || third.Skipped != 19 || o.Status != terrarium.StatusFinished || o.StateHash != hash {
		t.Errorf("third invocation: ran %d, skipped %d; the stopped run: %s, state %s (was %s)", third.Ran, third.Skipped, o.Status, o.StateHash, hash)
	}
	b2, _ := os.ReadFile(ev)
	if !strings.Contains(string(b2), `"kind":"run.resumed"`) {
		t.Error("the stopped run was not resumed")
	}
}

func TestParseSeeds(t *testing.T) {
	got, err := sweep.ParseSeeds("1..3,10")
	if err != nil || !reflect.DeepEqual(got, []uint64{1, 2, 3, 10}) {
		t.Errorf("1..3,10: %v %v", got, err)
	}
	for _, bad := range []string{"", "a", "3..1", "1..b", "1,1", "1..3,2"} {
		if _, err := sweep.ParseSeeds(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
