package terrarium

import (
	"os"
	"strings"

	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/world"
)

// RunState is what a run directory's event log says about a run, live or
// finished (terrarium ps).
type RunState struct {
	Run      string
	Scenario string
	Status   string     // "running", or run.finished's status
	Ticks    world.Tick // ticks closed so far
	Agents   []AgentState
	// Started is run.started's time; Last the last event's.
	Started, Last time.Time
}

// AgentState is one agent as the event log describes it.
type AgentState struct {
	ID string
	// State is spawned, ready, unhealthy (missed unhealthy_after deadlines
	// in a row, and has not acted since), stopping (told to stop: its
	// max_turns is spent), exited (left during the run), restarting,
	// failed, stopped; abandoned when the host died without finishing the
	// run (its watchdog killed the agents; what each did last is unknown);
	// for a finished run, result.json's status.
	State     string
	Pid       int
	Restarts  int
	Turns     int    // actions it sent that were applied
	Missing   int    // ticks its action was filled in by the policy
	LastError string // or why it was stopped early (max_turns) or is unhealthy
}

// ReadRunState reads dir/events.jsonl. A run still being written may end
// in a partial line: what was read before it is used.
func ReadRunState(dir string) (*RunState, error) {
	recs, err := events.ReadFile(filepath.Join(dir, "events.jsonl"))
	if len(recs) == 0 {
		if err == nil {
			err = fmt.Errorf("%s: no events", dir)
		}
		return nil, err
	}
	st := &RunState{Status: "running"}
	hostPid := 0
	agents := map[string]*AgentState{}
	spent := map[string]string{} // agent -> why it was stopped (max_turns)
	get := func(id world.AgentID) *AgentState {
		a := agents[string(id)]
		if a == nil {
			a = &AgentState{ID: string(id)}
			agents[string(id)] = a
		}
		return a
	}
	for _, r := range recs {
		var d map[string]any
		_ = json.Unmarshal(r.Data, &d)
		switch r.Kind {
		case events.RunStarted:
			st.Run = r.Run
			st.Started = r.Time
			st.Scenario, _ = d["scenario"].(string)
			if pid, ok := d["host_pid"].(float64); ok {
				hostPid = int(pid)
			}
		case events.RunResumed:
			st.Status = "running"
			if pid, ok := d["host_pid"].(float64); ok {
				hostPid = int(pid)
			}
		case events.RunFinished:
			st.Status, _ = d["status"].(string)
		case events.AgentSpawned:
			a := get(r.Agent)
			a.State = "spawned"
			if pid, ok := d["pid"].(float64); ok {
				a.Pid = int(pid)
			}
			if n, ok := d["restart"].(float64); ok {
				a.Restarts = int(n)
			}
		case events.AgentReady:
			get(r.Agent).State = "ready"
		case events.AgentSpent:
			a := get(r.Agent)
			a.State = "stopping"
			spent[a.ID] = fmt.Sprintf("max_turns %v reached", d["max_turns"])
			a.LastError = spent[a.ID]
		case events.AgentUnhealthy:
			a := get(r.Agent)
			if a.State == "ready" || a.State == "spawned" {
				a.State = "unhealthy"
			}
			a.LastError = fmt.Sprintf("unhealthy at tick %d: missed %v deadlines in a row", r.Tick, d["missed"])
		case events.AgentExited:
			a := get(r.Agent)
			a.State = "stopped"
			if during, _ := d["during_run"].(bool); during && spent[a.ID] == "" {
				a.State = "exited"
			}
			if clean, _ := d["clean"].(bool); !clean {
				a.LastError = fmt.Sprintf("exit code %v", d["code"])
				if sig, ok := d["signal"].(string); ok {
					a.LastError = "killed by " + sig
				}
			}
			if why, ok := d["reason"].(string); ok && why != "" {
				a.LastError = why // a limit ended it
			}
		case events.AgentRestarting:
			get(r.Agent).State = "restarting"
		case events.AgentFailed:
			a := get(r.Agent)
			a.State = "failed"
			a.LastError, _ = d["reason"].(string)
		case world.EventTickClosed:
			st.Ticks = r.Tick
			var tc struct {
				Actions []struct {
					Agent  string `json:"agent"`
					Filled string `json:"filled"`
				} `json:"actions"`
			}
			if json.Unmarshal(r.Data, &tc) == nil {
				for _, a := range tc.Actions {
					if a.Filled != "" {
						get(world.AgentID(a.Agent)).Missing++
						continue
					}
					ag := get(world.AgentID(a.Agent))
					ag.Turns++
					if ag.State == "unhealthy" {
						ag.State = "ready" // it acts again
					}
				}
			}
		}
	}
	st.Last = recs[len(recs)-1].Time
	// A run without run.finished whose host is gone was killed (kill -9, a
	// crash): say so rather than "running".
	if st.Status == "running" && hostPid > 0 && !processAlive(hostPid) {
		st.Status = "abandoned (the host is gone: no run.finished)"
		for _, a := range agents {
			switch a.State {
			case "exited", "failed", "stopped":
			default: // it was alive when the log ends; the watchdog killed it with the host
				a.State = "abandoned"
			}
		}
	}
	// A finished run's result.json is the last word on each agent's outcome.
	if res, err := readResult(dir); err == nil {
		for _, ar := range res.Agents {
			if a := agents[ar.ID]; a != nil {
				a.State = ar.Status
				if ar.Reason != "" {
					a.LastError = ar.Reason
				}
			}
		}
	}
	for _, a := range agents {
		st.Agents = append(st.Agents, *a)
	}
	sort.Slice(st.Agents, func(i, j int) bool { return st.Agents[i].ID < st.Agents[j].ID })
	return st, nil
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// readResult reads dir/result.json.
func readResult(dir string) (*Result, error) {
	b, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		return nil, err
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("result.json: %w", err)
	}
	return &res, nil
}
