package agents

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// EnvWatchdog, set to "1", makes the terrarium binary (builtin.Main) run as
// a watchdog: see WatchdogMain.
const EnvWatchdog = "TERRARIUM_WATCHDOG"

const (
	// watchdogHello is the first line a watchdog writes on its stdout.
	watchdogHello = "ready terrarium-watchdog 1"
	// watchdogReplyTimeout bounds how long the host waits for any reply.
	watchdogReplyTimeout = 10 * time.Second
	// watchdogScanInterval is how often a running watchdog scans /proc for
	// new descendants of the watched groups.
	watchdogScanInterval = 200 * time.Millisecond
	// watchdogStopTimeout bounds the phase that stops (SIGSTOP) the tracked
	// processes before they are killed.
	watchdogStopTimeout = 2 * time.Second
	// watchdogKillTimeout bounds each kill phase (groups, UIDs).
	watchdogKillTimeout = 10 * time.Second
)

// ErrWatchdogClosed is returned by the methods of a Watchdog after Close.
var ErrWatchdogClosed = errors.New("watchdog is closed")

// Watchdog is the host's handle on a watchdog process: a small process that
// outlives the host and, if the host dies without saying goodbye (kill -9, a
// crash, an exit without Close), kills every process of the run's agents,
// including the descendants that left their agent's process group and
// session, which Pdeathsig does not reach.
//
// The host starts it first (StartWatchdog), registers each agent's process
// group as soon as the agent has started (WatchGroup) and, when agents run as
// their own users, the run's UID block (WatchUIDs). At the normal end of the
// run, after the host has stopped its agents itself, Close tells the watchdog
// to exit without killing anything.
//
// What the watchdog process guarantees, once the call that registered a
// group or UIDs has returned:
//
//   - When its stdin reaches end of file without "done" (the host died, or
//     exited without Close), it kills, for every watched UID range, every
//     process whose real UID is in it: it runs `kill -KILL -1` as each such
//     UID until none is left (the kernel signals all of one user's processes
//     in a single pass, so a fork cannot race it). Then it stops (SIGSTOP)
//     and kills (SIGKILL) every tracked process (below), repeating until
//     none is left, and exits: 0 when nothing survived, 1 otherwise. Each
//     phase gives up after 10 seconds.
//   - Tracked processes are the members of each watched group, every
//     process of the session of the same id (an agent is the leader of both),
//     and, transitively, their children, even after they call setsid or
//     setpgid. The watchdog rescans /proc every 200ms, when a group is
//     registered and on Sync, and keeps tracking a process (by pid and start
//     time, so a reused pid is never hit) after its parent has died.
//     Stopping every tracked process before killing any means a process
//     that forks while being killed cannot leave an untracked child.
//   - Limitation: a descendant that leaves its agent's group and session
//     and whose parent dies before a scan has seen it is out of reach
//     (nothing links it to the agent any more). When agents run as their own
//     users the UID kill catches it; so does a watched cgroup (WatchCgroup:
//     its processes are killed, frozen first, and its directories removed,
//     before anything else). The host can narrow the window with Sync.
//   - It ignores SIGINT, SIGTERM, SIGHUP and SIGPIPE, runs in a session of
//     its own (no controlling terminal: a Ctrl-C reaches the host, not the
//     watchdog) and has no parent-death signal.
//
// All methods are safe for concurrent use; each waits for the watchdog's
// reply (at most 10 seconds). A Watchdog whose process does not answer is
// broken: its methods fail, and Close kills the process (SIGKILL) instead of
// letting end of file trigger the kill of the agents.
type Watchdog struct {
	log    hclog.Logger
	cmd    *exec.Cmd
	stderr *lineWriter

	mu      sync.Mutex
	in      *os.File      // write end of the watchdog's stdin
	out     *os.File      // read end of its stdout (the replies)
	replies *bufio.Reader // over out
	err     error         // not nil once no command can be sent any more

	closeOnce sync.Once
	closeErr  error
}

// StartWatchdog starts exe (the terrarium binary, or a test binary whose
// init or TestMain calls builtin.Main first) as a watchdog: with EnvWatchdog=1,
// in a session of its own, in /, without a parent-death signal, with a pipe
// as stdin (the commands; end of file means the host is gone) and one as
// stdout (the replies). Its stderr lines (hclog JSON records) are logged on
// log at their own level. It returns once the watchdog has said it is ready.
// The environment is PATH=/usr/bin:/bin, EnvWatchdog and, when set in the
// host, GORACE.
func StartWatchdog(exe string, log hclog.Logger) (*Watchdog, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start watchdog: stdin pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("start watchdog: stdout pipe: %w", err)
	}
	w := &Watchdog{log: log, in: inW, out: outR, replies: bufio.NewReader(outR)}
	w.stderr = newLineWriter(MaxLineBytes, w.logLine)
	env := []string{EnvWatchdog + "=1", "PATH=/usr/bin:/bin"}
	if v, ok := os.LookupEnv("GORACE"); ok {
		env = append(env, "GORACE="+v)
	}
	w.cmd = &exec.Cmd{
		Path:        exe,
		Args:        []string{exe},
		Env:         env,
		Dir:         "/",
		Stdin:       inR,
		Stdout:      outW,
		Stderr:      w.stderr,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
		WaitDelay:   DefaultWaitDelay,
	}
	err = w.cmd.Start()
	inR.Close() // the child holds its own copies
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("start watchdog %s: %w", exe, err)
	}
	hello, err := w.readReply()
	if err == nil && hello != watchdogHello {
		err = fmt.Errorf("not a watchdog (first line %q)", hello)
	}
	if err != nil {
		w.err = ErrWatchdogClosed
		_ = w.cmd.Process.Kill()
		w.finish()
		return nil, fmt.Errorf("start watchdog %s: %w", exe, err)
	}
	log.Debug("watchdog started", "pid", w.cmd.Process.Pid)
	return w, nil
}

// Pid is the watchdog's process id.
func (w *Watchdog) Pid() int { return w.cmd.Process.Pid }

// WatchGroup makes the watchdog track process group pgid (an agent's pid,
// see Process.Pid), the session of the same id, and all their descendants.
// When it returns nil, the group's current members and descendants are
// tracked.
func (w *Watchdog) WatchGroup(pgid int) error {
	if pgid <= 1 {
		return fmt.Errorf("watchdog: watch group %d: not a process group id", pgid)
	}
	return w.call(fmt.Sprintf("group %d", pgid))
}

// WatchUIDs makes the watchdog kill every process of the UIDs
// [base, base+n) when the host dies (the watchdog must run as root).
func (w *Watchdog) WatchUIDs(base uint32, n int) error {
	if n <= 0 || uint64(base)+uint64(n) > 1<<32 {
		return fmt.Errorf("watchdog: watch uids %d+%d: bad range", base, n)
	}
	return w.call(fmt.Sprintf("uids %d %d", base, n))
}

// WatchCgroup makes the watchdog kill every process in cgroup directory
// dir and its descendant groups, and remove them, when the host dies (the
// run's parent group, see Cgroups.Parents). Unlike a process group, a
// cgroup holds every descendant of its agents, even one that left its
// session and was adopted by init before any scan saw it.
func (w *Watchdog) WatchCgroup(dir string) error {
	if !filepath.IsAbs(dir) || strings.ContainsAny(dir, " \t\n") {
		return fmt.Errorf("watchdog: watch cgroup %q: want an absolute path without spaces", dir)
	}
	return w.call("cgroup " + dir)
}

// Sync makes the watchdog scan the process table now: when it returns nil,
// every process that descends from a watched group is tracked.
func (w *Watchdog) Sync() error { return w.call("sync") }

// Close is the normal end: it tells the watchdog to exit without killing
// anything (call it after the agents are stopped) and waits for it to exit.
// If the watchdog does not answer, Close kills it. A second call returns the
// first one's result.
func (w *Watchdog) Close() error {
	w.closeOnce.Do(func() { w.closeErr = w.close() })
	return w.closeErr
}

func (w *Watchdog) close() error {
	w.mu.Lock()
	err := w.err
	if err == nil {
		err = w.callLocked("done")
	}
	w.err = ErrWatchdogClosed
	w.mu.Unlock()
	if err != nil {
		// It may be alive but not listening: do not let it see end of file
		// and kill agents of a run that ended.
		_ = w.cmd.Process.Kill()
	}
	werr := w.finish()
	if err != nil {
		return fmt.Errorf("close watchdog: %w", err)
	}
	if werr != nil {
		return fmt.Errorf("close watchdog: %w", werr)
	}
	w.log.Debug("watchdog exited")
	return nil
}

// finish closes the pipes and reaps the process.
func (w *Watchdog) finish() error {
	w.in.Close()
	err := w.cmd.Wait()
	w.out.Close()
	w.stderr.Close()
	return err
}

// call sends one command and waits for its reply.
func (w *Watchdog) call(cmd string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return fmt.Errorf("watchdog %s: %w", cmd, w.err)
	}
	return w.callLocked(cmd)
}

func (w *Watchdog) callLocked(cmd string) error {
	broken := func(err error) error {
		w.err = fmt.Errorf("watchdog broken: %w", err)
		w.log.Warn("watchdog is not answering; agents may outlive a crash of the host", "error", err)
		return fmt.Errorf("watchdog %s: %w", cmd, err)
	}
	if _, err := io.WriteString(w.in, cmd+"\n"); err != nil {
		return broken(err)
	}
	reply, err := w.readReply()
	if err != nil {
		return broken(err)
	}
	if reply == "ok" {
		return nil
	}
	if msg, ok := strings.CutPrefix(reply, "error "); ok {
		return fmt.Errorf("watchdog %s: %s", cmd, msg)
	}
	return broken(fmt.Errorf("unexpected reply %q", reply))
}

// readReply reads one line of the watchdog's stdout.
func (w *Watchdog) readReply() (string, error) {
	if err := w.out.SetReadDeadline(time.Now().Add(watchdogReplyTimeout)); err != nil {
		return "", fmt.Errorf("read reply: %w", err)
	}
	line, err := w.replies.ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("the watchdog exited")
		}
		return "", fmt.Errorf("read reply: %w", err)
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// logLine logs one stderr line of the watchdog: an hclog JSON record is
// logged at its level with its fields, anything else at Info as is.
func (w *Watchdog) logLine(line []byte, dropped int) {
	var rec map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber() // pids and uids as written, not as floats
	if dropped > 0 || dec.Decode(&rec) != nil {
		w.log.Info(escapeLine(line), "truncated_bytes", dropped)
		return
	}
	msg, _ := rec["@message"].(string)
	lvl := hclog.NoLevel
	if s, ok := rec["@level"].(string); ok {
		lvl = hclog.LevelFromString(s)
	}
	if lvl == hclog.NoLevel || lvl == hclog.Off {
		lvl = hclog.Info
	}
	keys := make([]string, 0, len(rec))
	for k := range rec {
		if !strings.HasPrefix(k, "@") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, rec[k])
	}
	w.log.Log(lvl, escapeLine([]byte(msg)), args...)
}

// WatchdogMain is the body of the watchdog process (builtin.Main runs it when
// EnvWatchdog is "1"): it ignores SIGINT, SIGTERM, SIGHUP and SIGPIPE,
// serves the commands of its stdin and returns the exit code (see Watchdog).
func WatchdogMain() int {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	log := hclog.New(&hclog.LoggerOptions{
		Name:       "watchdog",
		Output:     os.Stderr,
		Level:      hclog.Trace, // the host's logger filters
		JSONFormat: true,
	})
	if err := serveWatchdog(os.Stdin, os.Stdout, log); err != nil {
		log.Error("watchdog failed", "error", err)
		return 1
	}
	return 0
}

// watchCmd is one command line of the protocol.
type watchCmd struct {
	kind string // "group", "uids", "sync", "done"
	pgid int    // group
	base uint32 // uids
	n    int    // uids
	dir  string // cgroup
}

// parseCommand parses "group PGID", "uids BASE N", "sync" or "done".
func parseCommand(line string) (watchCmd, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return watchCmd{}, errors.New("empty command")
	}
	c := watchCmd{kind: f[0]}
	want := map[string]int{"group": 2, "uids": 3, "cgroup": 2, "sync": 1, "done": 1}[c.kind]
	if want == 0 {
		return watchCmd{}, fmt.Errorf("unknown command %q", c.kind)
	}
	if len(f) != want {
		return watchCmd{}, fmt.Errorf("%s: want %d fields, got %d", c.kind, want, len(f))
	}
	switch c.kind {
	case "group":
		pgid, err := strconv.Atoi(f[1])
		if err != nil || pgid <= 1 {
			return watchCmd{}, fmt.Errorf("group: bad process group id %q", f[1])
		}
		c.pgid = pgid
	case "uids":
		base, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil {
			return watchCmd{}, fmt.Errorf("uids: bad base %q", f[1])
		}
		n, err := strconv.Atoi(f[2])
		if err != nil || n <= 0 || base+uint64(n) > 1<<32 {
			return watchCmd{}, fmt.Errorf("uids: bad count %q", f[2])
		}
		c.base, c.n = uint32(base), n
	case "cgroup":
		if !filepath.IsAbs(f[1]) {
			return watchCmd{}, fmt.Errorf("cgroup: not an absolute path %q", f[1])
		}
		c.dir = filepath.Clean(f[1])
	}
	return c, nil
}

// uidRange is a watched block of UIDs.
type uidRange struct {
	base uint32
	n    int
}

// serveWatchdog runs the protocol on in/out until "done" (nil, nothing
// killed) or end of file (the kill, see Watchdog).
func serveWatchdog(in io.Reader, out io.Writer, log hclog.Logger) error {
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			lines <- sc.Text()
			if c, err := parseCommand(sc.Text()); err == nil && c.kind == "done" {
				return // nothing after done is read: end of file must not kill
			}
		}
		if err := sc.Err(); err != nil {
			log.Warn("read commands", "error", err)
		}
	}()
	tr := newTracker(log)
	var uids []uidRange
	var cgroups []string
	reply := func(s string) { _, _ = fmt.Fprintln(out, s) } // fails only when the host is gone
	reply(watchdogHello)
	tick := time.NewTicker(watchdogScanInterval)
	defer tick.Stop()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				log.Warn("host gone without done: killing the processes of its agents",
					"groups", len(tr.groups), "uid_ranges", len(uids))
				return killWatched(tr, uids, cgroups, log)
			}
			c, err := parseCommand(line)
			if err != nil {
				reply("error " + err.Error())
				continue
			}
			switch c.kind {
			case "group":
				err = tr.watch(c.pgid)
			case "uids":
				uids = append(uids, uidRange{c.base, c.n})
				log.Debug("watching uids", "base", c.base, "n", c.n)
			case "cgroup":
				cgroups = append(cgroups, c.dir)
				log.Debug("watching cgroup", "dir", c.dir)
			case "sync":
				_, err = tr.scan()
			case "done":
				reply("ok")
				log.Debug("done: exiting without killing")
				return nil
			}
			if err != nil {
				reply("error " + err.Error())
				continue
			}
			reply("ok")
		case <-tick.C:
			if len(tr.groups) > 0 {
				if _, err := tr.scan(); err != nil {
					log.Warn("scan processes", "error", err)
				}
			}
		}
	}
}

// killWatched kills the watched cgroups' processes (removing the groups),
// the watched UIDs' processes, then the tracked ones.
func killWatched(tr *tracker, uids []uidRange, cgroups []string, log hclog.Logger) error {
	var errs []error
	for _, d := range cgroups {
		if err := KillCgroupTree(d); err != nil {
			errs = append(errs, err)
		}
		if top := filepath.Dir(d); filepath.Base(top) == "terrarium" {
			_ = unix.Rmdir(top) // shared by concurrent runs: busy while one is on
		}
	}
	for _, r := range uids {
		if err := KillUIDs(r.base, r.n, watchdogKillTimeout); err != nil {
			errs = append(errs, err)
		}
	}
	if err := tr.killAll(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.Info("killed every process of the agents")
	return nil
}

// procInfo is a process table entry with its start time (clock ticks after
// boot), which tells a process from a later one with the same pid.
type procInfo struct {
	procStat
	start uint64
}

// parseProcInfo parses /proc/<pid>/stat: parseStat's fields and starttime
// (field 22).
func parseProcInfo(pid int, b []byte) (procInfo, bool) {
	st, ok := parseStat(pid, b)
	if !ok {
		return procInfo{}, false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 20 {
		return procInfo{}, false
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procInfo{}, false
	}
	return procInfo{procStat: st, start: start}, true
}

// readProcInfo reads one process; ok is false when it is gone.
func readProcInfo(pid int) (procInfo, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procInfo{}, false
	}
	return parseProcInfo(pid, b)
}

// readProcTable reads every process of /proc.
func readProcTable() ([]procInfo, error) { return readTable(readProcInfo) }

// tracker is the watchdog's view of the agents' processes.
type tracker struct {
	log  hclog.Logger
	self int // the watchdog's own pid, never tracked
	// groups maps a watched group (and session) id to the start time of its
	// leader when it was registered, 0 if the leader was gone by then. A
	// process with that pid and another start time means the id was
	// reused: the group and session are empty, and the watch is dropped.
	groups map[int]uint64
	procs  map[int]uint64 // tracked pid -> its start time
}

func newTracker(log hclog.Logger) *tracker {
	return &tracker{log: log, self: os.Getpid(), groups: map[int]uint64{}, procs: map[int]uint64{}}
}

// watch registers group pgid and scans.
func (tr *tracker) watch(pgid int) error {
	if _, ok := tr.groups[pgid]; !ok {
		var start uint64
		if p, ok := readProcInfo(pgid); ok {
			start = p.start
		}
		tr.groups[pgid] = start
		tr.log.Debug("watching group", "pgid", pgid, "leader_alive", start != 0)
	}
	_, err := tr.scan()
	return err
}

// scan reads the process table and updates the tracked set; it returns the
// tracked processes that are alive (not zombies).
func (tr *tracker) scan() ([]procInfo, error) {
	table, err := readProcTable()
	if err != nil {
		return nil, err
	}
	return tr.update(table), nil
}

// update refreshes the tracked set from a process table: it drops the
// watches of reused ids and the tracked processes that are gone (or whose pid
// was reused), adds every member of a watched group or session, then every
// descendant of a tracked process. It returns the tracked live processes,
// sorted by pid.
func (tr *tracker) update(table []procInfo) []procInfo {
	byPid := make(map[int]procInfo, len(table))
	kids := map[int][]int{}
	for _, p := range table {
		byPid[p.pid] = p
		kids[p.ppid] = append(kids[p.ppid], p.pid)
	}
	for g, start := range tr.groups {
		if p, ok := byPid[g]; ok && p.start != start {
			delete(tr.groups, g)
			tr.log.Debug("group id reused; its processes are gone", "pgid", g)
		}
	}
	for pid, start := range tr.procs {
		if p, ok := byPid[pid]; !ok || p.start != start {
			delete(tr.procs, pid)
		}
	}
	add := func(p procInfo) bool {
		if p.pid == tr.self || p.pid <= 1 {
			return false
		}
		if _, ok := tr.procs[p.pid]; ok {
			return false
		}
		tr.procs[p.pid] = p.start
		tr.log.Trace("tracking", "pid", p.pid, "ppid", p.ppid, "pgid", p.pgid, "sid", p.sid)
		return true
	}
	for _, p := range table {
		_, inGroup := tr.groups[p.pgid]
		_, inSession := tr.groups[p.sid]
		if inGroup || inSession {
			add(p)
		}
	}
	queue := make([]int, 0, len(tr.procs))
	for pid := range tr.procs {
		queue = append(queue, pid)
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, k := range kids[pid] {
			if add(byPid[k]) {
				queue = append(queue, k)
			}
		}
	}
	var live []procInfo
	for pid := range tr.procs {
		if p := byPid[pid]; !p.zombie() {
			live = append(live, p)
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].pid < live[j].pid })
	return live
}

// signalGroups sends sig to every watched group still valid.
func (tr *tracker) signalGroups(sig unix.Signal) {
	for g := range tr.groups {
		if err := unix.Kill(-g, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			tr.log.Warn("signal group", "pgid", g, "signal", unix.SignalName(sig), "error", err)
		}
	}
}

// killAll stops every tracked process (until all are stopped and no new one
// appears, or watchdogStopTimeout), then kills them until none is left.
func (tr *tracker) killAll() error {
	if len(tr.groups) == 0 && len(tr.procs) == 0 {
		return nil
	}
	stopped := map[int]uint64{}
	stopBy := time.Now().Add(watchdogStopTimeout)
	for {
		live, err := tr.scan()
		if err != nil {
			return fmt.Errorf("stop agent processes: %w", err)
		}
		tr.signalGroups(unix.SIGSTOP)
		fresh, running := 0, 0
		for _, p := range live {
			if s, ok := stopped[p.pid]; !ok || s != p.start {
				signalProc(p, unix.SIGSTOP)
				stopped[p.pid] = p.start
				fresh++
			}
			if p.state != 'T' && p.state != 't' {
				running++
			}
		}
		if fresh == 0 && running == 0 {
			break
		}
		if time.Now().After(stopBy) {
			tr.log.Warn("not every process stopped; killing anyway", "running", running)
			break
		}
		time.Sleep(5 * time.Millisecond) // the kernel stops them; poll the result
	}
	killBy := time.Now().Add(watchdogKillTimeout)
	killed := map[int]bool{}
	for {
		live, err := tr.scan()
		if err != nil {
			return fmt.Errorf("kill agent processes: %w", err)
		}
		if len(live) == 0 {
			tr.log.Info("killed the agents' processes", "count", len(killed))
			return nil
		}
		if time.Now().After(killBy) {
			pids := make([]string, len(live))
			for i, p := range live {
				pids[i] = strconv.Itoa(p.pid)
			}
			return fmt.Errorf("processes %s survive SIGKILL", strings.Join(pids, ", "))
		}
		tr.signalGroups(unix.SIGKILL)
		for _, p := range live {
			signalProc(p, unix.SIGKILL)
			killed[p.pid] = true
		}
		time.Sleep(10 * time.Millisecond) // the kernel delivers; poll the result
	}
}

// signalProc sends sig to p if the process with its pid is still p (same
// start time), through a pidfd so that the pid cannot be reused in between.
func signalProc(p procInfo, sig unix.Signal) {
	same := func() bool {
		q, ok := readProcInfo(p.pid)
		return ok && q.start == p.start
	}
	fd, err := unix.PidfdOpen(p.pid, 0)
	if err != nil {
		// No pidfd (old kernel) or gone: check and signal by pid.
		if !errors.Is(err, unix.ESRCH) && same() {
			_ = unix.Kill(p.pid, sig)
		}
		return
	}
	defer unix.Close(fd)
	if same() {
		_ = unix.PidfdSendSignal(fd, sig, nil, 0)
	}
}

// KillUIDs kills every process whose real UID is in [base, base+n): for each
// such UID that owns a live process it runs `/bin/sh -c 'kill -KILL -1'` as
// that user (the kernel signals all of that user's processes in one pass that
// a fork cannot race), until no process of those UIDs is left (zombies
// aside) or timeout has passed. The caller must be root (CAP_SETUID).
func KillUIDs(base uint32, n int, timeout time.Duration) error {
	// A /proc scan is no snapshot: a process forking fast (or after pid
	// wrap-around) can be missed by one scan. So every UID ever seen is
	// killed again on every pass (kill -1 as a user is atomic against its
	// forks), and only several empty scans in a row end the loop.
	const emptyScans = 3
	deadline := time.Now().Add(timeout)
	seen := map[uint32]bool{}
	for empty := 0; empty < emptyScans; {
		live, err := uidsWithProcesses(base, n)
		if err != nil {
			return fmt.Errorf("kill uids %d+%d: %w", base, n, err)
		}
		if len(live) == 0 {
			empty++
		} else {
			empty = 0
		}
		if len(live) > 0 && time.Now().After(deadline) {
			return fmt.Errorf("kill uids %d+%d: processes of uids %v survive SIGKILL", base, n, live)
		}
		for _, uid := range live {
			seen[uid] = true
		}
		for uid := range seen {
			cmd := exec.Command("/bin/sh", "-c", "kill -KILL -1")
			cmd.Dir = "/"
			cmd.Env = []string{"PATH=/usr/bin:/bin"}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
			_ = cmd.Run() // its own exit status is irrelevant: the scans decide
		}
		if len(seen) > 0 || empty < emptyScans {
			time.Sleep(10 * time.Millisecond) // the kernel delivers; scan again
		}
	}
	return nil
}

// uidsWithProcesses lists, sorted, the UIDs in [base, base+n) that are the
// real UID of a process that is not a zombie.
func uidsWithProcesses(base uint32, n int) ([]uint32, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	end := uint64(base) + uint64(n)
	seen := map[uint32]bool{}
	var out []uint32
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue // gone
		}
		uid, zombie, ok := parseStatusUID(b)
		if !ok || zombie || uint64(uid) < uint64(base) || uint64(uid) >= end || seen[uid] {
			continue
		}
		seen[uid] = true
		out = append(out, uid)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// parseStatusUID reads the real UID and whether the process is a zombie from
// /proc/<pid>/status.
func parseStatusUID(b []byte) (uid uint32, zombie bool, ok bool) {
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "State":
			zombie = f[0] == "Z" || f[0] == "X"
		case "Uid":
			u, err := strconv.ParseUint(f[0], 10, 32)
			if err != nil {
				return 0, false, false
			}
			uid, ok = uint32(u), true
		}
	}
	return uid, zombie, ok
}
