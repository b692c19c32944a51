package terrarium

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

// llmStateFile is the LLM part's file inside a checkpoint.
const llmStateFile = "state.json"

// llmCheckpoint is the LLM part: what the host counted of every claude
// agent's model (docs/llm-agents.md, "Budgets and costs") and the
// sessions to resume, so that `terrarium resume` goes on counting against
// the same budgets and the CLIs keep their conversations.
type llmCheckpoint struct {
	Agents map[world.AgentID]llmAgentState `json:"agents"`
	Total  agents.LLMUsage                 `json:"total"` // the run's, over every claude agent
}

// llmAgentState is one claude agent's part of an llmCheckpoint.
type llmAgentState struct {
	Usage   agents.LLMUsage `json:"usage"`             // over all its processes
	Session string          `json:"session,omitempty"` // the CLI's session id
	// Cost is the session's total_cost_usd as the CLI last reported it;
	// Clean says its process had exited cleanly when the checkpoint was
	// written, so a CLI resuming the session reports its cost from there.
	Cost   float64 `json:"session_cost_usd"`
	Clean  bool    `json:"clean_exit,omitempty"`
	Reason string  `json:"reason,omitempty"` // why it was stopped early
}

// llmPart is the checkpoint part of the claude agents' counts and
// sessions. Runs with claude agents have it.
type llmPart struct{ r *run }

// Name implements checkpoint.Part.
func (llmPart) Name() string { return "llm" }

// Save implements checkpoint.Part.
func (p llmPart) Save(dir string) error {
	r := p.r
	c := llmCheckpoint{Agents: map[world.AgentID]llmAgentState{}}
	for id, a := range r.agents {
		a.mu.Lock()
		if l := a.llm; l != nil && l.claude {
			st := llmAgentState{Usage: l.usage, Session: l.session, Cost: l.cost, Reason: l.reason}
			if a.proc != nil {
				select {
				case <-a.proc.Done():
					st.Clean = a.proc.Exit().Clean()
				default:
				}
			}
			c.Agents[id] = st
		}
		a.mu.Unlock()
	}
	r.llmMu.Lock()
	c.Total = r.llmTotal
	r.llmMu.Unlock()
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, llmStateFile), b, 0o600)
}

// Restore implements checkpoint.Part: it checks the part can be read. The
// counts and sessions are put back as the agents are prepared
// (restoreLLM).
func (llmPart) Restore(dir string) error {
	_, err := readLLM(dir)
	return err
}

func readLLM(dir string) (*llmCheckpoint, error) {
	path := filepath.Join(dir, llmStateFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c llmCheckpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// hasClaude reports whether the scenario has claude agents (and so its
// checkpoints an llm part).
func (r *run) hasClaude() bool {
	for _, a := range r.h.sc.Agents {
		if a.Runtime == scenarios.RuntimeClaude {
			return true
		}
	}
	return false
}

// restoreLLM gives a claude agent of a resumed run what the checkpoint
// counted (usage, the run's total, why it was stopped) and its session, so
// its budgets go on from there and its next CLI resumes the conversation.
// A fork is a new run: its counts start at zero, as its turns do, and its
// CLIs start new sessions (the CLI finds a session by its working
// directory, which a fork's agents do not share with the original's).
func (r *run) restoreLLM(a *agentRun) error {
	if r.from == nil || r.h.cfg.resume == nil {
		return nil
	}
	c, err := readLLM(filepath.Join(r.from.Dir, llmPart{}.Name()))
	if errors.Is(err, os.ErrNotExist) {
		r.log.Warn("the checkpoint has no llm part: LLM counts start at zero and sessions anew", "agent", a.seat.ID, "tick", r.from.Meta.Tick)
		return nil
	}
	if err != nil {
		return err
	}
	st, ok := c.Agents[a.seat.ID]
	if !ok {
		return nil
	}
	a.mu.Lock()
	a.llm.usage, a.llm.session, a.llm.cost, a.llm.reason = st.Usage, st.Session, st.Cost, st.Reason
	if st.Clean {
		a.llm.costBase = st.Cost
	}
	a.mu.Unlock()
	r.llmMu.Lock()
	r.llmTotal = c.Total
	r.llmMu.Unlock()
	return nil
}
