package terrarium

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

// EventAgentLimits is the kind of the event that reports, at start, how
// each of an agent's limits is enforced (see docs/events.md).
const EventAgentLimits = "agent.limits"

var _ = events.RunStarted // the other kinds live in package events

// prepareLimits makes the cgroup of every agent whose block sets limits,
// writes and reads back the limits, decides the rlimits the shim sets for
// what no cgroup enforces, and reports each agent's limits in an
// agent.limits event. Agents that share the host's user get a cgroup
// without limits too, where the machine offers one: it is the only thing
// that holds every descendant of theirs (the UID kill does that for agents
// with users of their own), so that the watchdog can kill even a setsid'd
// orphan that init adopted after the host died.
func (r *run) prepareLimits() error {
	for _, seat := range r.seats {
		a := r.agents[seat.ID]
		if a.spec.Runtime == scenarios.RuntimeInProc || a.spec.Runtime == scenarios.RuntimePool {
			continue // no process of its own (the scenario refuses limits for it)
		}
		lim := agents.Limits{Memory: a.spec.Memory, Pids: a.spec.Pids, CPU: a.spec.CPU}
		contain := a.cred == nil
		if !lim.Set() && !contain {
			continue
		}
		if r.cg == nil {
			r.cg = agents.OpenCgroups(r.res.Run, r.log.Named("cgroups"))
		}
		g, rep := r.cg.Group(string(seat.ID), lim)
		a.rlimits = agents.Rlimits(lim, rep, a.cred != nil)
		if g != nil || len(a.rlimits) > 0 {
			if r.shim == "" {
				shim, err := r.shimPath()
				if err != nil {
					return err
				}
				r.shim = shim
			}
		}
		a.cgroup = g
		if !lim.Set() {
			continue // containment only: nothing to report
		}
		a.limits = rep
		data := map[string]any{}
		for name, lr := range rep {
			data[name] = lr
			if lr.Mechanism == agents.MechanismNone {
				r.log.Warn("agent limit not enforced", "agent", seat.ID, "limit", name, "why", lr.Detail)
			}
		}
		if g != nil {
			data["cgroups"] = g.Dirs()
		}
		r.events.Emit(EventAgentLimits, 0, seat.ID, data)
	}
	return nil
}

// shimPath is the terrarium binary in the run directory (installed for
// the builtin runtime, or now), which every agent with limits starts as.
func (r *run) shimPath() (string, error) {
	p := filepath.Join(r.dir, "bin", "terrarium")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	p, err := r.copyExecutable()
	if err != nil {
		return "", fmt.Errorf("limits: %w", err)
	}
	return p, nil
}

// watchCgroups lets the watchdog remove the run's cgroups, killing what is
// in them, should the host die.
func (r *run) watchCgroups() {
	if r.wd == nil || r.cg == nil {
		return
	}
	for _, p := range r.cg.Parents() {
		if err := r.wd.WatchCgroup(p); err != nil {
			r.log.Warn("the watchdog cannot watch the agents' cgroups", "cgroup", p, "error", err)
		}
	}
}

// closeLimits records how often each limit bit and removes the agents'
// cgroups (every agent process is gone by now).
func (r *run) closeLimits() {
	if r.limitStop != nil {
		close(r.limitStop)
		<-r.limitDone
	}
	if r.cg == nil {
		return
	}
	for _, a := range r.agents {
		if a.cgroup != nil {
			a.mu.Lock()
			a.cgroup.Hits(a.limits)
			a.mu.Unlock()
		}
	}
	if err := r.cg.Close(); err != nil {
		r.log.Error("remove the agents' cgroups", "error", err)
	}
}

// EventAgentLimitHit is the kind of the event that reports, while the run
// goes on, that one of an agent's limits bit (see docs/events.md).
const EventAgentLimitHit = "agent.limit_hit"

// limitPollInterval is how often the agents' cgroup counters are read.
const limitPollInterval = time.Second

// watchLimits reports, until stop is closed (and once more then), each rise
// of an agent's limit counters (OOM kills, refused forks, throttled
// periods) as an agent.limit_hit event: at most one per agent and limit
// per poll.
func (r *run) watchLimits(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	seen := map[world.AgentID][3]uint64{}
	t := time.NewTicker(limitPollInterval)
	defer t.Stop()
	for last := false; !last; {
		select {
		case <-stop:
			last = true // one more look: the run may have ended between polls
		case <-t.C:
		}
		for _, seat := range r.seats {
			a := r.agents[seat.ID]
			if a.cgroup == nil || a.limits == nil {
				continue
			}
			m, p, c := a.cgroup.Counters()
			now, before := [3]uint64{m, p, c}, seen[seat.ID]
			seen[seat.ID] = now
			for i, name := range []string{agents.LimitMemory, agents.LimitPids, agents.LimitCPU} {
				lr, ok := a.limits[name]
				if !ok || now[i] <= before[i] || lr.Mechanism == agents.MechanismNone || lr.Mechanism == agents.MechanismRlimit {
					continue
				}
				r.events.Emit(EventAgentLimitHit, r.tick(), seat.ID, map[string]any{
					"limit": name, "hits": now[i], "new": now[i] - before[i], "want": lr.Want, "mechanism": lr.Mechanism,
				})
			}
		}
	}
}

// startLimitWatch starts watchLimits when an agent has limits a cgroup
// enforces; closeLimits stops it.
func (r *run) startLimitWatch() {
	for _, a := range r.agents {
		if a.cgroup != nil && a.limits != nil {
			r.limitStop, r.limitDone = make(chan struct{}), make(chan struct{})
			go r.watchLimits(r.limitStop, r.limitDone)
			return
		}
	}
}
