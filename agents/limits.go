package agents

import (
	"fmt"
	"math"
	"strconv"

	"golang.org/x/sys/unix"
)

// Limits are one agent's resource limits. A zero field is not limited.
type Limits struct {
	Memory int64   // bytes of memory (resident, page cache included)
	Pids   int64   // processes and threads of the agent and all its descendants at once
	CPU    float64 // share of one core: 0.5 is half a core, 2 two cores
}

// Set reports whether any limit is set.
func (l Limits) Set() bool { return l.Memory > 0 || l.Pids > 0 || l.CPU > 0 }

// Names of the limits (the keys of LimitReports).
const (
	LimitMemory = "memory"
	LimitPids   = "pids"
	LimitCPU    = "cpu"
)

// Mechanisms that enforce a limit (LimitReport.Mechanism).
const (
	MechanismCgroupV2 = "cgroup-v2" // a cgroup of the unified hierarchy
	MechanismCgroupV1 = "cgroup-v1" // a cgroup of the controller's own (v1) hierarchy
	MechanismRlimit   = "rlimit"    // setrlimit in the shim, before the program starts
	MechanismNone     = "none"      // not enforced: Detail says why
)

// LimitReport says how one limit of one agent is enforced.
type LimitReport struct {
	// Want is what the scenario asked for: bytes (memory), tasks (pids),
	// cores (cpu).
	Want float64 `json:"want"`
	// Got is what the kernel holds, read back after writing (the kernel
	// rounds memory to pages and cpu to its quota's microseconds); 0 when
	// the mechanism is none. An rlimit is read back by the shim in the
	// agent's process, which does not start the program unless the kernel
	// holds exactly Want.
	Got float64 `json:"got,omitempty"`
	// Mechanism is one of the Mechanism constants.
	Mechanism string `json:"mechanism"`
	// Detail is, for none, why nothing enforces the limit; otherwise what
	// enforces it (the cgroup file, the rlimit).
	Detail string `json:"detail,omitempty"`
	// Hits counts how often the limit bit, over the whole run: memory, the
	// agent's processes killed by the out-of-memory killer; pids, forks and
	// thread creations refused; cpu, the periods the agent was throttled in.
	// Only a cgroup counts; 0 at start.
	Hits uint64 `json:"hits"`
}

// LimitReports maps a limit's name (LimitMemory, ...) to its report. It
// holds only the limits that were asked for.
type LimitReports map[string]LimitReport

// Rlimit is a resource limit the shim sets (setrlimit) before it executes
// the agent's program.
type Rlimit struct {
	Resource int    `json:"resource"` // unix.RLIMIT_AS, unix.RLIMIT_NPROC, ...
	Cur      uint64 `json:"cur"`
	Max      uint64 `json:"max"`
}

// FormatBytes renders a byte count the way scenarios write it: "256MiB".
func FormatBytes(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	if n >= 1<<20 {
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	}
	return strconv.FormatInt(n, 10) + "B"
}

// wants returns the reports for the limits l sets, mechanism none, with why.
func (l Limits) wants(why string) LimitReports {
	r := LimitReports{}
	if l.Memory > 0 {
		r[LimitMemory] = LimitReport{Want: float64(l.Memory), Mechanism: MechanismNone, Detail: why}
	}
	if l.Pids > 0 {
		r[LimitPids] = LimitReport{Want: float64(l.Pids), Mechanism: MechanismNone, Detail: why}
	}
	if l.CPU > 0 {
		r[LimitCPU] = LimitReport{Want: l.CPU, Mechanism: MechanismNone, Detail: why}
	}
	return r
}

// cpuQuota is the CFS quota, in microseconds per period, for a share of cores.
func cpuQuota(cores float64, periodUS int64) int64 {
	q := int64(math.Round(cores * float64(periodUS)))
	return max(q, 1000) // the kernel's minimum
}

// Rlimits returns the rlimits the shim sets for the limits of l that no
// cgroup enforces (rep, from Cgroups.Group, or nil when there are no
// cgroups), and marks them in rep: memory becomes RLIMIT_AS (address space,
// a cruder measure than resident memory), pids RLIMIT_NPROC when the agent
// runs as a user of its own (the limit counts every process of its real
// UID, so with a shared user it would count the host's and other agents'
// processes too). No rlimit limits a share of CPU.
func Rlimits(l Limits, rep LimitReports, ownUser bool) []Rlimit {
	var out []Rlimit
	if r, ok := rep[LimitMemory]; ok && r.Mechanism == MechanismNone {
		out = append(out, Rlimit{Resource: unix.RLIMIT_AS, Cur: uint64(l.Memory), Max: uint64(l.Memory)})
		r.Mechanism, r.Got = MechanismRlimit, float64(l.Memory)
		r.Detail = "RLIMIT_AS (address space, not resident memory: runtimes that reserve large virtual areas, such as Node.js or a race-enabled Go binary, may fail to start), because " + r.Detail
		rep[LimitMemory] = r
	}
	if r, ok := rep[LimitPids]; ok && r.Mechanism == MechanismNone {
		if ownUser {
			out = append(out, Rlimit{Resource: unix.RLIMIT_NPROC, Cur: uint64(l.Pids), Max: uint64(l.Pids)})
			r.Mechanism, r.Got = MechanismRlimit, float64(l.Pids)
			r.Detail = "RLIMIT_NPROC of the agent's own user (counts its processes and threads), because " + r.Detail
		} else {
			r.Detail += "; RLIMIT_NPROC counts every process of a user, and this agent shares its user with the host (agents get users of their own when the host runs as root)"
		}
		rep[LimitPids] = r
	}
	if r, ok := rep[LimitCPU]; ok && r.Mechanism == MechanismNone {
		r.Detail += "; no rlimit limits a share of CPU (RLIMIT_CPU caps total CPU seconds)"
		rep[LimitCPU] = r
	}
	return out
}
