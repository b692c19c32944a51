package terrarium

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/world"
)

// VerifyRun checks a finished run directory: events.jsonl is an unbroken
// hash chain ending in run.finished, result.json pins that same end (count
// and last hash), and metrics.csv has one row per completed tick. It returns
// the result and every problem found, joined.
func VerifyRun(dir string) (*Result, error) {
	var problems []error
	r, err := readResult(dir)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w (a run that is still going, or was killed, has no result.json yet)", dir, err)
	}
	res := *r
	res.Dir = dir
	recs, err := events.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		problems = append(problems, err)
	}
	if err := events.Verify(recs); err != nil {
		problems = append(problems, fmt.Errorf("events.jsonl: %w", err))
	}
	switch {
	case len(recs) == 0:
		problems = append(problems, errors.New("events.jsonl: no events"))
	case recs[len(recs)-1].Kind != events.RunFinished:
		problems = append(problems, fmt.Errorf("events.jsonl: last event is %s (seq %d), not run.finished: the log is truncated", recs[len(recs)-1].Kind, recs[len(recs)-1].Seq))
	default:
		last := recs[len(recs)-1]
		if last.Seq != res.Events.Count || last.Hash != res.Events.LastHash {
			problems = append(problems, fmt.Errorf("events.jsonl ends at seq %d hash %.12s, result.json says seq %d hash %.12s", last.Seq, last.Hash, res.Events.Count, res.Events.LastHash))
		}
		problems = append(problems, crossCheck(&res, recs)...)
	}
	if f, err := os.Open(filepath.Join(dir, "metrics.csv")); err != nil {
		problems = append(problems, err)
	} else {
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		switch {
		case err != nil:
			problems = append(problems, fmt.Errorf("metrics.csv: %w", err))
		case len(rows) == 0 || len(rows)-1-initialRow(rows)+int(forkTick(recs)) != int(res.Ticks):
			problems = append(problems, fmt.Errorf("metrics.csv has %d rows for %d ticks", max(len(rows)-1-initialRow(rows), 0), int(res.Ticks)-int(forkTick(recs))))
		}
	}
	return &res, errors.Join(problems...)
}

// crossCheck compares result.json with what the event log says: the
// status, ticks and state hash of run.finished, the last tick.closed hash,
// and every agent's exit code.
func crossCheck(res *Result, recs []events.Record) []error {
	var problems []error
	var fin struct {
		Status    string `json:"status"`
		Ticks     uint64 `json:"ticks"`
		StateHash string `json:"state_hash"`
	}
	last := recs[len(recs)-1]
	if err := json.Unmarshal(last.Data, &fin); err != nil {
		return []error{fmt.Errorf("run.finished: %w", err)}
	}
	if fin.Status != res.Status || fin.Ticks != uint64(res.Ticks) || fin.StateHash != res.StateHash {
		problems = append(problems, fmt.Errorf("result.json says %s after %d ticks, state %.12s; run.finished says %s after %d ticks, state %.12s",
			res.Status, res.Ticks, res.StateHash, fin.Status, fin.Ticks, fin.StateHash))
	}
	closed, lastHash := 0, ""
	exits := map[string]int{}
	for _, r := range recs {
		switch r.Kind {
		case "tick.closed":
			var d struct {
				Hash string `json:"hash"`
			}
			if json.Unmarshal(r.Data, &d) == nil {
				closed, lastHash = closed+1, d.Hash
			}
		case events.AgentExited:
			var d struct {
				Code int `json:"code"`
			}
			if json.Unmarshal(r.Data, &d) == nil {
				exits[string(r.Agent)] = d.Code
			}
		}
	}
	// A forked run closes only the ticks after the checkpoint it started from.
	if from := int(forkTick(recs)); closed+from != int(res.Ticks) {
		problems = append(problems, fmt.Errorf("events.jsonl closes %d ticks after tick %d, result.json says %d", closed, from, res.Ticks))
	}
	if closed > 0 && lastHash != res.StateHash {
		problems = append(problems, fmt.Errorf("the last tick.closed has state %.12s, result.json says %.12s", lastHash, res.StateHash))
	}
	for _, a := range res.Agents {
		if code, ok := exits[a.ID]; ok && code != a.ExitCode {
			problems = append(problems, fmt.Errorf("agent %s: result.json says exit code %d, agent.exited says %d", a.ID, a.ExitCode, code))
		}
	}
	return problems
}

// initialRow is 1 when metrics.csv's first row is the initial state's
// (tick 0), else 0.
func initialRow(rows [][]string) int {
	if len(rows) > 1 && len(rows[1]) > 0 && rows[1][0] == "0" {
		return 1
	}
	return 0
}

// forkTick is the tick a forked run started after (0 for other runs).
func forkTick(recs []events.Record) world.Tick {
	info, err := ReadRunInfo(recs)
	if err != nil {
		return 0
	}
	return info.From
}
