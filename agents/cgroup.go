package agents

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// cgroupRoot is where cgroup file systems are looked for (/proc/self/mountinfo
// names them; this is the usual place, for messages).
const cgroupRoot = "/sys/fs/cgroup"

// cgroupKillTimeout bounds how long killing one cgroup's processes may take.
const cgroupKillTimeout = 10 * time.Second

// hierarchy is one place a controller can be used: a v1 hierarchy of its
// own, or the v2 unified one.
type hierarchy struct {
	v2    bool
	mount string // where it is mounted
	self  string // the host's own cgroup in it, as a directory under mount
}

// Cgroups is what the machine offers for one run: which controller is
// usable where, and the run's parent groups (terrarium/<run> under the
// host's own cgroup of each hierarchy used). Make it with OpenCgroups.
// Its methods are safe for concurrent use.
type Cgroups struct {
	log hclog.Logger
	run string

	mu      sync.Mutex
	ctrl    map[string]*hierarchy // "memory", "pids", "cpu", "freezer" -> where it is usable
	why     map[string]string     // controller -> why it is not usable
	parents map[string]string     // hierarchy mount -> the run's parent directory (created lazily)
	made    []string              // every directory created, in creation order (removed in reverse)
	groups  []*Cgroup
	closed  bool
}

// OpenCgroups finds the cgroup controllers this process can use for run
// (an id matching [A-Za-z0-9_-]+): for memory, pids and cpu, a v2
// controller enabled in the host's own cgroup, else a writable v1
// hierarchy of its own; for killing a group as a whole, the v1 freezer or
// v2's cgroup.kill. Nothing is created until Group. It never fails: a
// controller that cannot be used is reported "none" with the reason by
// Group.
func OpenCgroups(run string, log hclog.Logger) *Cgroups {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	c := &Cgroups{log: log, run: run, ctrl: map[string]*hierarchy{}, why: map[string]string{}, parents: map[string]string{}}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		c.allUnusable(fmt.Sprintf("cannot read /proc/self/mountinfo: %v", err))
		return c
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		c.allUnusable(fmt.Sprintf("cannot read /proc/self/cgroup: %v", err))
		return c
	}
	c.ctrl, c.why = detectCgroups(mounts, own, "")
	return c
}

// detectCgroups finds, from this process's /proc/self/mountinfo (mounts)
// and /proc/self/cgroup (own), where each of memory, pids, cpu and freezer
// is usable: a v2 controller enabled in the process's own v2 group (its
// cgroup.controllers; freezer: its cgroup.freeze), else the controller's
// own v1 hierarchy; why says, for each controller that is nowhere, why.
// The files it reads are read under fsRoot: "" for the machine's own, a
// fixture directory in tests (the paths it returns are the machine's).
func detectCgroups(mounts, own []byte, fsRoot string) (ctrl map[string]*hierarchy, why map[string]string) {
	ctrl, why = map[string]*hierarchy{}, map[string]string{}
	v1, v2 := parseMountinfo(mounts)
	paths := parseProcCgroup(own)
	want := []string{LimitMemory, LimitPids, LimitCPU, "freezer"}
	if v2.mount != "" {
		if p, ok := paths[""]; ok {
			v2.self = joinCgroup(v2.mount, v2.root, p)
			enabled := strings.Fields(readTrim(filepath.Join(fsRoot, v2.self, "cgroup.controllers")))
			for _, ctl := range want {
				if slices.Contains(enabled, ctl) || ctl == "freezer" && fileExists(filepath.Join(fsRoot, v2.self, "cgroup.freeze")) {
					h := v2.hierarchy
					ctrl[ctl] = &h
				}
			}
		}
	}
	for _, ctl := range want {
		if ctrl[ctl] != nil {
			continue
		}
		m, ok := v1[ctl]
		if !ok {
			switch {
			case v2.mount != "":
				why[ctl] = fmt.Sprintf("the %s controller is neither enabled in this process's cgroup v2 group (%s/cgroup.controllers) nor mounted as a cgroup v1 hierarchy", ctl, v2.self)
			default:
				why[ctl] = fmt.Sprintf("no cgroup file system with the %s controller is mounted (see /proc/self/mountinfo)", ctl)
			}
			continue
		}
		p, ok := paths[ctl]
		if !ok {
			why[ctl] = fmt.Sprintf("/proc/self/cgroup names no %s group for this process", ctl)
			continue
		}
		h := m.hierarchy
		h.self = joinCgroup(m.mount, m.root, p)
		ctrl[ctl] = &h
	}
	return ctrl, why
}

func (c *Cgroups) allUnusable(why string) {
	for _, ctl := range []string{LimitMemory, LimitPids, LimitCPU, "freezer"} {
		c.why[ctl] = why
	}
}

// mountEntry is a cgroup mount with its root (the part of the hierarchy it shows).
type mountEntry struct {
	hierarchy
	root string
}

// parseMountinfo returns the v1 cgroup mounts by controller and the v2 mount.
func parseMountinfo(b []byte) (v1 map[string]mountEntry, v2 mountEntry) {
	v1 = map[string]mountEntry{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		root, mnt := unescapeMount(f[3]), unescapeMount(f[4])
		switch g[0] {
		case "cgroup2":
			if v2.mount == "" {
				v2 = mountEntry{hierarchy: hierarchy{v2: true, mount: mnt}, root: root}
			}
		case "cgroup":
			for _, opt := range strings.Split(g[2], ",") {
				if _, seen := v1[opt]; !seen {
					v1[opt] = mountEntry{hierarchy: hierarchy{mount: mnt}, root: root}
				}
			}
		}
	}
	return v1, v2
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseProcCgroup maps each v1 controller (and "" for v2) to this
// process's cgroup path.
func parseProcCgroup(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[1] == "" {
			out[""] = f[2]
			continue
		}
		for _, ctl := range strings.Split(f[1], ",") {
			out[ctl] = f[2]
		}
	}
	return out
}

// joinCgroup is the directory of cgroup path p in a hierarchy mounted at
// mnt that shows the hierarchy from root (a bind mount of a subtree).
func joinCgroup(mnt, root, p string) string {
	if root != "/" && (p == root || strings.HasPrefix(p, root+"/")) {
		p = strings.TrimPrefix(p, root)
	}
	return filepath.Join(mnt, filepath.FromSlash(p))
}

// Cgroup is one agent's group, one directory per hierarchy it needs. The
// agent's process joins it before it executes its program (see Spec.Cgroup),
// and every descendant is in it too, whatever session or process group it
// makes.
type Cgroup struct {
	c      *Cgroups
	id     string
	limits Limits
	dirs   []string // one per hierarchy, v2 first if any
	mem    string   // the directory holding the memory limit ("" if none), and so on
	memV2  bool
	pids   string
	pidsV2 bool
	cpu    string
	cpuV2  bool
	frz    string // the freezer's directory ("" when there is no freezer)
	frzV2  bool

	mu      sync.Mutex
	removed bool
}

// Group creates agent id's group with limits l, writes each limit and reads
// it back. The report gives, per limit l sets, the mechanism enforcing it;
// limits no cgroup can enforce are left for the shim's rlimits (see
// Rlimits) or reported "none". The group is nil when no hierarchy could be
// used. A group is made even without a memory, pids or cpu controller when
// a freezer exists, so that the agent can be killed as a whole.
func (c *Cgroups) Group(id string, l Limits) (*Cgroup, LimitReports) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep := LimitReports{}
	if c.closed {
		return nil, l.wants("the run's cgroups are closed")
	}
	g := &Cgroup{c: c, id: id, limits: l}
	dirOf := map[string]string{} // hierarchy mount -> the agent's directory in it
	// join returns the agent's directory in the hierarchy of ctl, creating it.
	join := func(ctl string) (string, bool, error) {
		h := c.ctrl[ctl]
		if h == nil {
			return "", false, errors.New(c.why[ctl])
		}
		if d, ok := dirOf[h.mount]; ok {
			return d, h.v2, nil
		}
		parent, err := c.parentLocked(h, ctl)
		if err != nil {
			c.ctrl[ctl], c.why[ctl] = nil, err.Error() // the next agents need not try again
			return "", false, err
		}
		d := filepath.Join(parent, id)
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", false, fmt.Errorf("create cgroup %s: %w", d, err)
		}
		dirOf[h.mount] = d
		if h.v2 {
			g.dirs = append([]string{d}, g.dirs...)
		} else {
			g.dirs = append(g.dirs, d)
		}
		return d, h.v2, nil
	}
	mech := func(v2 bool) string {
		if v2 {
			return MechanismCgroupV2
		}
		return MechanismCgroupV1
	}
	if l.Memory > 0 {
		r := LimitReport{Want: float64(l.Memory), Mechanism: MechanismNone}
		if d, v2, err := join(LimitMemory); err != nil {
			r.Detail = err.Error()
		} else if got, file, err := writeMemory(d, v2, l.Memory); err != nil {
			r.Detail = err.Error()
		} else {
			r.Got, r.Mechanism, r.Detail = float64(got), mech(v2), file
			g.mem, g.memV2 = d, v2
		}
		rep[LimitMemory] = r
	}
	if l.Pids > 0 {
		r := LimitReport{Want: float64(l.Pids), Mechanism: MechanismNone}
		if d, v2, err := join(LimitPids); err != nil {
			r.Detail = err.Error()
		} else if got, err := writeReadInt(filepath.Join(d, "pids.max"), l.Pids); err != nil {
			r.Detail = err.Error()
		} else {
			r.Got, r.Mechanism, r.Detail = float64(got), mech(v2), filepath.Join(d, "pids.max")
			g.pids, g.pidsV2 = d, v2
		}
		rep[LimitPids] = r
	}
	if l.CPU > 0 {
		r := LimitReport{Want: l.CPU, Mechanism: MechanismNone}
		if d, v2, err := join(LimitCPU); err != nil {
			r.Detail = err.Error()
		} else if got, file, err := writeCPU(d, v2, l.CPU); err != nil {
			r.Detail = err.Error()
		} else {
			r.Got, r.Mechanism, r.Detail = got, mech(v2), file
			g.cpu, g.cpuV2 = d, v2
		}
		rep[LimitCPU] = r
	}
	if d, v2, err := join("freezer"); err == nil {
		g.frz, g.frzV2 = d, v2
	} else {
		c.log.Debug("no freezer: an agent's group is killed process by process", "why", err)
	}
	if len(g.dirs) == 0 {
		return nil, rep
	}
	c.groups = append(c.groups, g)
	return g, rep
}

// parentLocked returns (creating it) the run's parent directory in h:
// terrarium/<run> under the host's own group. For v2, the controller is
// enabled in the subtree_control of each level.
func (c *Cgroups) parentLocked(h *hierarchy, ctl string) (string, error) {
	if p, ok := c.parents[h.mount]; ok {
		if h.v2 {
			if err := enableV2(c.v2Chain(p), ctl); err != nil {
				return "", err
			}
		}
		return p, nil
	}
	top := filepath.Join(h.self, "terrarium")
	p := filepath.Join(top, c.run)
	for _, d := range []string{top, p} {
		err := os.Mkdir(d, 0o755)
		switch {
		case err == nil:
			c.made = append(c.made, d)
		case errors.Is(err, fs.ErrExist):
		default:
			return "", fmt.Errorf("cannot create cgroup %s: %w (the host needs root, or a cgroup delegated to its user)", d, err)
		}
	}
	c.parents[h.mount] = p
	if h.v2 {
		if err := enableV2(c.v2Chain(p), ctl); err != nil {
			return "", err
		}
	}
	return p, nil
}

// v2Chain lists the directories whose subtree_control must enable a
// controller for p's children: the host's group, terrarium, p.
func (c *Cgroups) v2Chain(p string) []string {
	top := filepath.Dir(p)
	return []string{filepath.Dir(top), top, p}
}

// enableV2 writes +ctl to the subtree_control of each directory (v2).
func enableV2(chain []string, ctl string) error {
	if ctl == "freezer" {
		return nil // cgroup.freeze is in every non-root v2 group
	}
	for _, d := range chain {
		f := filepath.Join(d, "cgroup.subtree_control")
		if slices.Contains(strings.Fields(readTrim(f)), ctl) {
			continue
		}
		if err := os.WriteFile(f, []byte("+"+ctl), 0o644); err != nil {
			if errors.Is(err, unix.EBUSY) {
				return fmt.Errorf("cannot enable the %s controller below %s: it holds processes (cgroup v2 allows controllers only below groups without processes; run the host in a cgroup of its own, such as systemd-run --scope -p Delegate=yes)", ctl, d)
			}
			return fmt.Errorf("cannot enable the %s controller in %s: %w", ctl, f, err)
		}
	}
	return nil
}

// writeMemory sets the memory limit in d (and the same limit on memory plus
// swap, so that swap cannot extend it) and reads it back.
func writeMemory(d string, v2 bool, n int64) (int64, string, error) {
	if v2 {
		f := filepath.Join(d, "memory.max")
		got, err := writeReadInt(f, n)
		if err == nil {
			_ = os.WriteFile(filepath.Join(d, "memory.swap.max"), []byte("0"), 0o644)
		}
		return got, f, err
	}
	f := filepath.Join(d, "memory.limit_in_bytes")
	got, err := writeReadInt(f, n)
	if err == nil {
		_ = os.WriteFile(filepath.Join(d, "memory.memsw.limit_in_bytes"), []byte(strconv.FormatInt(got, 10)), 0o644)
	}
	return got, f, err
}

// writeCPU sets the CFS quota for a share of cores and reads it back, as cores.
func writeCPU(d string, v2 bool, cores float64) (float64, string, error) {
	if v2 {
		f := filepath.Join(d, "cpu.max")
		period := int64(100000)
		if fs := strings.Fields(readTrim(f)); len(fs) == 2 {
			if p, err := strconv.ParseInt(fs[1], 10, 64); err == nil && p > 0 {
				period = p
			}
		}
		if err := os.WriteFile(f, []byte(fmt.Sprintf("%d %d", cpuQuota(cores, period), period)), 0o644); err != nil {
			return 0, f, fmt.Errorf("write %s: %w", f, err)
		}
		fs := strings.Fields(readTrim(f))
		if len(fs) != 2 {
			return 0, f, fmt.Errorf("read back %s: %q", f, readTrim(f))
		}
		q, err1 := strconv.ParseInt(fs[0], 10, 64)
		p, err2 := strconv.ParseInt(fs[1], 10, 64)
		if err1 != nil || err2 != nil || p <= 0 {
			return 0, f, fmt.Errorf("read back %s: %q", f, readTrim(f))
		}
		return float64(q) / float64(p), f, nil
	}
	pf := filepath.Join(d, "cpu.cfs_period_us")
	period, err := strconv.ParseInt(readTrim(pf), 10, 64)
	if err != nil || period <= 0 {
		return 0, pf, fmt.Errorf("read %s: %q", pf, readTrim(pf))
	}
	f := filepath.Join(d, "cpu.cfs_quota_us")
	q, err := writeReadInt(f, cpuQuota(cores, period))
	if err != nil {
		return 0, f, err
	}
	return float64(q) / float64(period), f, nil
}

// writeReadInt writes n to f and reads back what the kernel keeps.
func writeReadInt(f string, n int64) (int64, error) {
	if err := os.WriteFile(f, []byte(strconv.FormatInt(n, 10)), 0o644); err != nil {
		return 0, fmt.Errorf("write %s: %w", f, err)
	}
	s := readTrim(f)
	got, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read back %s: %q", f, s)
	}
	return got, nil
}

func readTrim(f string) string {
	b, err := os.ReadFile(f)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func fileExists(f string) bool {
	_, err := os.Stat(f)
	return err == nil
}

// Dirs lists the group's directories, one per hierarchy.
func (g *Cgroup) Dirs() []string { return slices.Clone(g.dirs) }

// Join puts process pid (and all its threads) into every directory of the
// group. The agent's shim waits for it before it executes the program.
func (g *Cgroup) Join(pid int) error {
	for _, d := range g.dirs {
		f := filepath.Join(d, "cgroup.procs")
		if err := os.WriteFile(f, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("put pid %d into cgroup %s: %w", pid, d, err)
		}
	}
	return nil
}

// Procs lists the processes in the group (zombies are not in it).
func (g *Cgroup) Procs() []int {
	if len(g.dirs) == 0 {
		return nil
	}
	return readProcs(g.dirs[0])
}

func readProcs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Kill sends SIGKILL to every process in the group and waits until the
// group is empty (at most 10 seconds). With a freezer, the group is frozen
// first, so that no process can fork while the others are killed.
func (g *Cgroup) Kill() error {
	var errs []error
	dirs := g.dirs
	if g.frz != "" { // the frozen kill first: the other directories are then empty
		dirs = append([]string{g.frz}, slices.DeleteFunc(slices.Clone(dirs), func(d string) bool { return d == g.frz })...)
	}
	for _, d := range dirs {
		if err := killCgroupDir(d, d == g.frz); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killCgroupDir kills every process of one cgroup directory (not of its
// children) and waits until none is left. freeze says whether d's
// hierarchy has a freezer (v1 freezer.state, v2 cgroup.freeze); v2's
// cgroup.kill is used where it exists.
func killCgroupDir(d string, freeze bool) error {
	if len(readProcs(d)) == 0 {
		return nil
	}
	if fileExists(filepath.Join(d, "cgroup.kill")) {
		if err := os.WriteFile(filepath.Join(d, "cgroup.kill"), []byte("1"), 0o644); err == nil {
			return waitEmpty(d, nil)
		}
	}
	v1Freezer := freeze && fileExists(filepath.Join(d, "freezer.state"))
	frozen := false
	if v1Freezer {
		frozen = os.WriteFile(filepath.Join(d, "freezer.state"), []byte("FROZEN"), 0o644) == nil
		for deadline := time.Now().Add(time.Second); frozen && readTrim(filepath.Join(d, "freezer.state")) != "FROZEN" && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
	kill := func() {
		for _, pid := range readProcs(d) {
			killInCgroup(pid, d)
		}
	}
	kill()
	if frozen {
		_ = os.WriteFile(filepath.Join(d, "freezer.state"), []byte("THAWED"), 0o644) // killed tasks die once thawed
	}
	return waitEmpty(d, kill)
}

// waitEmpty polls until d holds no process, calling again (if not nil)
// between polls.
func waitEmpty(d string, again func()) error {
	deadline := time.Now().Add(cgroupKillTimeout)
	for delay := 100 * time.Microsecond; ; delay = min(2*delay, 20*time.Millisecond) {
		left := readProcs(d)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kill cgroup %s: %d processes left after %s (pids %v)", d, len(left), cgroupKillTimeout, left[:min(len(left), 10)])
		}
		time.Sleep(delay)
		if again != nil {
			again()
		}
	}
}

// killInCgroup sends SIGKILL to pid through a pidfd, after checking that
// the process it pins is still in cgroup directory d (a recycled pid is
// never hit).
func killInCgroup(pid int, d string) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // gone, or no pidfd: the next round sees it again if it is there
	}
	defer unix.Close(fd)
	if !inCgroup(pid, d) {
		return
	}
	_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
}

// inCgroup reports whether process pid is listed in d's cgroup.procs.
func inCgroup(pid int, d string) bool { return slices.Contains(readProcs(d), pid) }

// Counters reads how often each limit bit (see LimitReport.Hits).
func (g *Cgroup) Counters() (memory, pids, cpu uint64) {
	if g.mem != "" {
		if g.memV2 {
			memory = keyed(filepath.Join(g.mem, "memory.events"), "oom_kill")
		} else {
			memory = keyed(filepath.Join(g.mem, "memory.oom_control"), "oom_kill")
		}
	}
	if g.pids != "" {
		pids = keyed(filepath.Join(g.pids, "pids.events"), "max")
	}
	if g.cpu != "" {
		cpu = keyed(filepath.Join(g.cpu, "cpu.stat"), "nr_throttled")
	}
	return memory, pids, cpu
}

// MemoryFailures is how often the group's memory use reached its limit
// (v1 memory.failcnt, v2 memory.events max).
func (g *Cgroup) MemoryFailures() uint64 {
	switch {
	case g.mem == "":
		return 0
	case g.memV2:
		return keyed(filepath.Join(g.mem, "memory.events"), "max")
	default:
		n, _ := strconv.ParseUint(readTrim(filepath.Join(g.mem, "memory.failcnt")), 10, 64)
		return n
	}
}

// keyed reads the value of a "key N" line of a cgroup file.
func keyed(f, key string) uint64 {
	b, err := os.ReadFile(f)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == key {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// Hits fills in the Hits of rep from the group's counters.
func (g *Cgroup) Hits(rep LimitReports) {
	if g == nil {
		return
	}
	m, p, c := g.Counters()
	for name, n := range map[string]uint64{LimitMemory: m, LimitPids: p, LimitCPU: c} {
		if r, ok := rep[name]; ok && r.Mechanism != MechanismNone && r.Mechanism != MechanismRlimit {
			r.Hits = n
			rep[name] = r
		}
	}
}

// Remove kills what is left in the group and removes its directories. A
// second call does nothing.
func (g *Cgroup) Remove() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return nil
	}
	g.removed = true
	err := g.Kill()
	for _, d := range g.dirs {
		if rerr := rmdirCgroup(d); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// rmdirCgroup removes a cgroup directory; one already gone is fine. The
// kernel may refuse for a moment after the last process left (EBUSY), so it
// tries again for up to a second.
func rmdirCgroup(d string) error {
	deadline := time.Now().Add(time.Second)
	for {
		err := unix.Rmdir(d)
		switch {
		case err == nil, errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY) && time.Now().Before(deadline):
			time.Sleep(5 * time.Millisecond)
		default:
			return fmt.Errorf("remove cgroup %s: %w", d, err)
		}
	}
}

// Parents lists the run's parent directories (terrarium/<run>, one per
// hierarchy used), for the watchdog.
func (c *Cgroups) Parents() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, p := range c.parents {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Close removes every group (killing what is left in them) and the run's
// parent directories; the shared terrarium directory too when no other
// run uses it. A second call does nothing.
func (c *Cgroups) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	groups, made := c.groups, c.made
	c.mu.Unlock()
	var errs []error
	for _, g := range groups {
		if err := g.Remove(); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(made) - 1; i >= 0; i-- {
		d := made[i]
		if filepath.Base(d) == "terrarium" {
			_ = unix.Rmdir(d) // shared by concurrent runs: busy while one is on
			continue
		}
		if err := rmdirCgroup(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// KillCgroupTree kills every process in cgroup directory dir and its
// descendants, deepest first, and removes the directories (the watchdog's
// clean-up after a host that died). Best effort: it reports what it could
// not do.
func KillCgroupTree(dir string) error {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		freeze := fileExists(filepath.Join(d, "freezer.state"))
		if err := killCgroupDir(d, freeze); err != nil {
			errs = append(errs, err)
		}
		if err := rmdirCgroup(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
