package terrarium

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/world"
)

// pidAgents knows the agent processes the host started, so that the
// workspace can name the agent a process belongs to
// (workspace.Config.AgentOfPID): in detect mode, where every agent is the
// host's user, a temporary file renamed over a shared file names the
// process that wrote it (the claude CLI's <name>.tmp.<pid>.<hex>).
type pidAgents struct {
	mu sync.Mutex
	m  map[int]pidAgent
}

type pidAgent struct {
	id world.AgentID
	p  *agents.Process
}

// add records p as agent id's process (a restart's new process replaces
// the old one's entry only if the pid is the same).
func (t *pidAgents) add(p *agents.Process, id world.AgentID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[int]pidAgent{}
	}
	t.m[p.Pid()] = pidAgent{id: id, p: p}
}

// maxAncestors bounds the walk from a process up to an agent's.
const maxAncestors = 64

// agentOf names the agent whose live process pid is, or descends from
// ("" if none).
func (t *pidAgents) agentOf(pid int) string {
	for i := 0; i < maxAncestors && pid > 1; i++ {
		t.mu.Lock()
		a, ok := t.m[pid]
		t.mu.Unlock()
		if ok {
			select {
			case <-a.p.Done(): // gone: the pid may be someone else's now
				return ""
			default:
				return string(a.id)
			}
		}
		ppid, err := parentPID(pid)
		if err != nil {
			return ""
		}
		pid = ppid
	}
	return ""
}

// parentPID reads a process's parent from /proc/<pid>/stat.
func parentPID(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return 0, fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	return strconv.Atoi(string(f[1]))
}
