package bench

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine describes where the figures were taken.
type Machine struct {
	CPU        string    `json:"cpu"`
	Cores      int       `json:"cores"`
	Kernel     string    `json:"kernel"`
	Go         string    `json:"go"`
	Date       time.Time `json:"date"`
	MemTotal   string    `json:"mem_total"`
	NoFile     uint64    `json:"ulimit_nofile"`
	PidMax     string    `json:"pid_max"`
	LoadBefore string    `json:"load_before"` // /proc/loadavg: 1, 5, 15 minutes
	LoadAfter  string    `json:"load_after"`
}

func describeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC().Truncate(time.Second), LoadBefore: loadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	m.Kernel = readTrim("/proc/sys/kernel/ostype") + " " + readTrim("/proc/sys/kernel/osrelease")
	m.PidMax = readTrim("/proc/sys/kernel/pid_max")
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				m.MemTotal = strings.TrimSpace(v)
			}
		}
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		m.NoFile = rl.Cur
	}
	return m
}

func loadAverage() string {
	f := strings.Fields(readTrim("/proc/loadavg"))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// memSample is this process's resident set size and open descriptors.
type memSample struct {
	rssKiB int64
	fds    int
}

func sampleMem() memSample {
	s := memSample{fds: -1}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		s.fds = len(ents)
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.Lines(string(b)) {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				s.rssKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			}
		}
	}
	return s
}

// perAgent is the growth from before to after, per agent.
func perAgent(before, after memSample, n int) (kib, fds float64) {
	return float64(after.rssKiB-before.rssKiB) / float64(n), float64(after.fds-before.fds) / float64(n)
}

// cpuSample is the CPU time used so far by this process and by its live
// children (the agents, and Terrarium's watchdog), user plus system.
type cpuSample struct {
	host, agents time.Duration
}

// clockTick is the unit of utime and stime in /proc/<pid>/stat (USER_HZ,
// 100 on Linux).
const clockTick = 10 * time.Millisecond

func sampleCPU() cpuSample {
	var s cpuSample
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.host = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	self := os.Getpid()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return s
	}
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15): comm may hold spaces.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid != self {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		s.agents += time.Duration(ut+st) * clockTick
	}
	return s
}
