package agents

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// Defaults for Config.
const (
	DefaultStopGrace = 3 * time.Second
	DefaultWaitDelay = 1 * time.Second
)

// ErrShutdown is returned by Start once Shutdown has been called.
var ErrShutdown = errors.New("supervisor is shut down")

// Spec says how to run one agent process.
type Spec struct {
	ID      string   // agent id
	Path    string   // program to exec, resolved with LookPath(Path, Dir, PATH of Env)
	Args    []string // arguments (without the program name)
	Env     []string // the COMPLETE environment for the child (KEY=VALUE); see BuildEnv
	Dir     string   // working directory (the agent's private workspace; must exist)
	LogPath string   // file the child's stdout/stderr lines go to (created, appended); "" for none
	// Credential, when not nil, runs the process as that user and group
	// (exec's SysProcAttr.Credential; the host needs CAP_SETUID/CAP_SETGID).
	// Its Groups become the supplementary groups (none when empty) unless
	// NoSetGroups. Dir must be accessible to that user. nil runs the process
	// as the host's user.
	Credential *syscall.Credential
	// Stdio makes the process a stdio-runtime agent: it gets a pipe as
	// stdin, and its stdout is the protocol stream of a [StdioBridge]
	// instead of log lines (stderr is still logged line by line). Such a
	// process must be served by a StdioBridge: until one reads its stdout,
	// the child blocks once the pipe and a small buffer are full (after the
	// process exits, for at most Config.WaitDelay). Done is closed only
	// after a bridge running by then has handled the last line. Without
	// Stdio, stdin is /dev/null.
	Stdio bool
	// Cgroup, when not nil, is the agent's group (Cgroups.Group): the
	// process is put into it before it executes Path (it starts as the
	// Shim, which waits for that), so neither it nor any descendant ever
	// runs outside it. When the process exits, everything left in the
	// group is killed, whatever session or process group it is in.
	Cgroup *Cgroup
	// Rlimits are set by the Shim before it executes Path (see Rlimits).
	Rlimits []Rlimit
	// Shim is the terrarium binary (or a program whose main calls
	// builtin.Main first), run in place of Path when Cgroup or Rlimits is
	// set: it executes Path with the same pid once the limits are in place
	// (see ShimMain). It must be executable by the Credential's user.
	Shim string
}

// usesShim reports whether the process starts as the shim.
func (s Spec) usesShim() bool { return s.Cgroup != nil || len(s.Rlimits) > 0 }

// Config configures a Supervisor.
type Config struct {
	// Logger is the root logger; per-agent loggers are Named("agent").With("agent", id).
	// nil means no logging.
	Logger hclog.Logger
	// StopGrace is how long Terminate waits after SIGTERM to the process group
	// before it sends SIGKILL (default DefaultStopGrace).
	StopGrace time.Duration
	// WaitDelay bounds how long, after a process has exited, its output pipes
	// may stay open (held by a grandchild that left its session) before
	// they are closed (exec.Cmd.WaitDelay; default DefaultWaitDelay).
	WaitDelay time.Duration
	// Subreaper makes the host process a child subreaper
	// (PR_SET_CHILD_SUBREAPER) from NewSupervisor until Shutdown has
	// finished, so that descendants of agents whose parent dies are
	// reparented to the host instead of init and Shutdown can sweep them (see
	// the package doc). The attribute is process-wide: while it is set, every
	// orphaned descendant of any child of the host comes to the host.
	Subreaper bool
}

// Supervisor starts agent processes and owns them until they are dead.
type Supervisor struct {
	log       hclog.Logger
	grace     time.Duration
	waitDelay time.Duration

	subreaper bool // this supervisor holds the subreaper attribute until Shutdown

	mu       sync.Mutex
	shutdown bool
	procs    map[*Process]struct{}
	wg       sync.WaitGroup // one per process: its wait goroutine

	sweepOnce sync.Once // the end of the first Shutdown: sweep, drop the subreaper
	sweepErr  error

	// The reaper collects adopted orphans that have exited while agents
	// run (subreaper only), so short-lived helpers of agents cannot pile up
	// as zombies and exhaust the pids. reaperStop ends it; reaperDone says it did.
	reaperStop chan struct{}
	reaperDone chan struct{}
}

// closeInheritedFDs marks every open file descriptor above stderr
// close-on-exec. Go opens its own that way, but descriptors the host
// inherited from whoever started it (a shell's `9<secret`, a CI runner's
// pipe, a lock) would otherwise reach every agent, which could read them
// whatever its user. Process-wide and idempotent.
func closeInheritedFDs() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// NewSupervisor returns a supervisor with no processes. With cfg.Subreaper it
// makes the process a child subreaper; if the kernel refuses, it logs a
// warning and goes on without (orphans then go to init and survive).
func NewSupervisor(cfg Config) *Supervisor {
	closeInheritedFDs()
	s := &Supervisor{
		log:       cfg.Logger,
		grace:     cfg.StopGrace,
		waitDelay: cfg.WaitDelay,
		procs:     map[*Process]struct{}{},
	}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	if s.grace <= 0 {
		s.grace = DefaultStopGrace
	}
	if s.waitDelay <= 0 {
		s.waitDelay = DefaultWaitDelay
	}
	if cfg.Subreaper {
		if err := acquireSubreaper(); err != nil {
			s.log.Warn("cannot become child subreaper; orphaned agent descendants will survive", "error", err)
		} else {
			s.subreaper = true
			s.reaperStop, s.reaperDone = make(chan struct{}), make(chan struct{})
			go s.reapZombies()
		}
	}
	return s
}

// reaperInterval is how often the reaper looks for exited orphans.
const reaperInterval = 250 * time.Millisecond

// reapZombies reaps, every reaperInterval until Shutdown, the orphans that
// were reparented to the host and have already exited. They are dead, not
// an exec.Cmd's, and pinned by being unreaped, so collecting them can hurt
// nobody (the same rule as the sweep's, see orphans).
func (s *Supervisor) reapZombies() {
	defer close(s.reaperDone)
	t := time.NewTicker(reaperInterval)
	defer t.Stop()
	for {
		select {
		case <-s.reaperStop:
			return
		case <-t.C:
		}
		if !zombieChild() {
			continue // nothing has exited: no /proc scan, no lock Start waits for
		}
		children.mu.Lock()
		found, err := s.orphans(true)
		var dead []int
		if err == nil {
			for _, p := range found {
				if p.zombie() {
					dead = append(dead, p.pid)
				}
			}
		}
		children.mu.Unlock()
		for _, pid := range dead {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
	}
}

// zombieChild reports whether some child of this process has exited and
// is not reaped yet, without reaping it (waitid with WNOWAIT). An error
// other than "no children" counts as yes, so the reaper looks.
func zombieChild() bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	switch {
	case errors.Is(err, unix.ECHILD):
		return false
	case err != nil:
		return true
	}
	return info.Signo != 0
}

// Process is one running (or finished) agent process.
type Process struct {
	id    string
	pid   int
	cmd   *exec.Cmd
	log   hclog.Logger
	grace time.Duration

	cgroup *Cgroup // Spec.Cgroup
	// oomKills and pidsRefused are the group's counters when it started,
	// to tell whether its limits bit this process.
	oomKills, pidsRefused uint64

	stdout, stderr *lineWriter
	stdin          *os.File     // Spec.Stdio: the write end of the child's stdin; nil otherwise
	stdio          *stdioOut    // Spec.Stdio: carries stdout to the bridge; nil otherwise
	logFile        *os.File     // nil when Spec.LogPath is ""
	fileLog        hclog.Logger // writes to logFile (null logger without one)

	done chan struct{}
	exit ExitStatus // written before done is closed

	mu     sync.Mutex
	exited bool // the leader has exited: its group may no longer be signalled
}

// ExitStatus is how a process ended.
type ExitStatus struct {
	// Code is the exit code, or -1 when the process was killed by a signal.
	Code int
	// Signal names the signal that killed the process ("SIGKILL"), or "".
	Signal string
	// Reason says which limit ended the process, when one did: the
	// out-of-memory killer at the memory limit, or a crash after the pids
	// limit refused forks or threads. "" otherwise.
	Reason string
	// Err is a problem other than the exit status, for example
	// exec.ErrWaitDelay when a grandchild held the output pipes past WaitDelay
	// (output after that was lost).
	Err error
}

// Clean reports whether the process exited with status 0.
func (e ExitStatus) Clean() bool { return e.Code == 0 && e.Signal == "" }

// String describes the status: "exit 0", "exit 3", "signal SIGKILL".
func (e ExitStatus) String() string {
	s := fmt.Sprintf("exit %d", e.Code)
	if e.Signal != "" {
		s = "signal " + e.Signal
	}
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	return s
}

// Start runs spec as a new process in its own session and process group
// (both ids are its pid), as spec.Credential when set. The error names
// the agent and says what is wrong (missing or non-executable program,
// missing working directory, log file not writable).
func (s *Supervisor) Start(spec Spec) (*Process, error) {
	if spec.ID == "" {
		return nil, errors.New("start agent: empty agent id")
	}
	fail := func(err error) (*Process, error) { return nil, fmt.Errorf("agent %q: %w", spec.ID, err) }
	if spec.Dir == "" {
		return fail(errors.New("no working directory given"))
	}
	if fi, err := os.Stat(spec.Dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fail(fmt.Errorf("working directory %s does not exist", spec.Dir))
		}
		return fail(fmt.Errorf("working directory: %w", err))
	} else if !fi.IsDir() {
		return fail(fmt.Errorf("working directory %s is not a directory", spec.Dir))
	}
	path, err := LookPath(spec.Path, spec.Dir, EnvValue(spec.Env, "PATH"))
	if err != nil {
		return fail(err)
	}

	if spec.usesShim() && spec.Shim == "" {
		return fail(errors.New("limits need the shim, and Spec.Shim is empty"))
	}
	p := &Process{
		id:      spec.ID,
		cgroup:  spec.Cgroup,
		log:     s.log.Named("agent").With("agent", spec.ID),
		grace:   s.grace,
		done:    make(chan struct{}),
		fileLog: hclog.NewNullLogger(),
	}
	if spec.LogPath != "" {
		if err := os.MkdirAll(filepath.Dir(spec.LogPath), 0o755); err != nil {
			return fail(fmt.Errorf("log file: %w", err))
		}
		f, err := os.OpenFile(spec.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fail(fmt.Errorf("log file: %w", err))
		}
		p.logFile = f
		p.fileLog = hclog.New(&hclog.LoggerOptions{
			Name:       spec.ID,
			Output:     f,
			Level:      hclog.Info,
			Color:      hclog.ColorOff,
			TimeFormat: "2006-01-02T15:04:05.000Z07:00",
		})
	}
	p.stdout = newLineWriter(MaxLineBytes, p.emitter("stdout"))
	p.stderr = newLineWriter(MaxLineBytes, p.emitter("stderr"))
	var stdout io.Writer = p.stdout
	var stdin *os.File // nil: /dev/null
	if spec.Stdio {
		pr, pw, err := os.Pipe()
		if err != nil {
			p.closeLog()
			return fail(fmt.Errorf("stdin pipe: %w", err))
		}
		defer pr.Close() // the child's end: once started, the child holds its own copy
		stdin, p.stdin = pr, pw
		p.stdio = newStdioOut(p.stdout) // p.stdout logs what no bridge takes
		stdout = p.stdio
	}

	cmd := &exec.Cmd{
		Path:   path,
		Args:   append([]string{spec.Path}, spec.Args...),
		Env:    append(make([]string, 0, len(spec.Env)), spec.Env...), // never nil: nil means the host's
		Dir:    spec.Dir,
		Stdin:  stdin,
		Stdout: stdout, // not *os.File: exec copies in its own goroutine, bounded by WaitDelay
		Stderr: p.stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Setsid:     true, // a new session, hence a new process group, no controlling terminal
			Pdeathsig:  syscall.SIGKILL,
			Credential: copyCredential(spec.Credential),
		},
		WaitDelay: s.waitDelay,
	}
	p.cmd = cmd
	var goPipe *os.File // the write end of the shim's pipe: one byte lets it go on
	if spec.usesShim() {
		env, err := shimEnv(shimConfig{Path: path, Wait: spec.Cgroup != nil, Rlimits: spec.Rlimits})
		if err != nil {
			p.closeLog()
			p.closeStdin()
			return fail(err)
		}
		cmd.Path = spec.Shim
		cmd.Env = append(cmd.Env, env)
		if spec.Cgroup != nil {
			pr, pw, err := os.Pipe()
			if err != nil {
				p.closeLog()
				p.closeStdin()
				return fail(fmt.Errorf("shim pipe: %w", err))
			}
			defer pr.Close()
			cmd.ExtraFiles = []*os.File{pr} // fd 3 (shimFD)
			goPipe = pw
			p.oomKills, p.pidsRefused, _ = spec.Cgroup.Counters()
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		p.closeLog()
		p.closeStdin()
		return fail(ErrShutdown)
	}
	// Register the child before any sweep can see it (see children).
	children.mu.Lock()
	err = forkFromFreshThread(cmd)
	if err == nil {
		p.pid = cmd.Process.Pid
		children.live[p.pid] = s
	}
	children.mu.Unlock()
	if err != nil {
		if goPipe != nil {
			goPipe.Close()
		}
		p.closeLog()
		p.closeStdin()
		return fail(fmt.Errorf("start %s: %w", path, err))
	}
	if goPipe != nil {
		// The shim waits for this byte: only then does it execute the program.
		jerr := spec.Cgroup.Join(p.pid)
		if jerr == nil {
			_, jerr = goPipe.Write([]byte{shimGo})
		}
		goPipe.Close()
		if jerr != nil {
			// It never ran the program: end it, and reap it here.
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
			_ = cmd.Wait()
			children.mu.Lock()
			delete(children.live, p.pid)
			children.mu.Unlock()
			p.closeLog()
			p.closeStdin()
			return fail(fmt.Errorf("limits: %w", jerr))
		}
	}
	s.procs[p] = struct{}{}
	s.wg.Add(1)
	go s.wait(p)
	p.log.Info("started", "pid", p.pid, "path", path)
	p.fileLog.Named("supervisor").Info("started", "pid", p.pid, "path", path, "args", strings.Join(spec.Args, " "))
	return p, nil
}

// forkFromFreshThread starts cmd from a new goroutine. A new goroutine is never
// locked to an OS thread, and Go ends only locked threads, so the thread that
// forks lives as long as the host: Pdeathsig then fires only on host death.
func forkFromFreshThread(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go func() { errc <- cmd.Start() }()
	return <-errc
}

// copyCredential copies c so that the caller may change it after Start.
func copyCredential(c *syscall.Credential) *syscall.Credential {
	if c == nil {
		return nil
	}
	cc := *c
	cc.Groups = append([]uint32(nil), c.Groups...)
	return &cc
}

// wait owns p after a successful start: it kills the rest of the group and of
// the session when the leader exits, reaps it, flushes its output and closes
// Done.
func (s *Supervisor) wait(p *Process) {
	defer s.wg.Done()

	// Block until the leader has exited, without reaping it: while it is a
	// zombie its pid (= the group id) cannot be reused, so killing the group is
	// safe.
	var info unix.Siginfo
	var err error
	for {
		err = unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	p.mu.Lock()
	p.exited = true
	if err != nil {
		// Cannot happen for our own unreaped child; without the zombie
		// holding the group id, signalling the group would not be safe.
		p.log.Warn("waitid failed; not killing the rest of the group", "error", err)
	} else {
		if err := syscall.Kill(-p.pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			p.log.Warn("kill process group after exit", "pgid", p.pid, "error", err)
		}
		// Members of the session in other process groups (setpgid, a job
		// control shell); the zombie leader pins the session id too.
		if err := killSession(p.pid); err != nil {
			p.log.Warn("kill session after exit", "sid", p.pid, "error", err)
		}
		// Everything else in its cgroup, whatever session it went to.
		if p.cgroup != nil {
			if err := p.cgroup.Kill(); err != nil {
				p.log.Warn("kill cgroup after exit", "error", err)
			}
		}
	}
	p.mu.Unlock()

	var abandon *time.Timer
	if p.stdio != nil {
		// A bridge that never came (or stopped reading) must not hold the
		// stdout copier, hence Wait, past WaitDelay.
		abandon = time.AfterFunc(s.waitDelay, p.stdio.release)
	}
	err = p.cmd.Wait() // reaps; waits for the output goroutines (at most WaitDelay)
	if p.stdio != nil {
		abandon.Stop()
		p.closeStdin() // unblocks a bridge writing to a pipe nobody reads
	}
	children.mu.Lock()
	delete(children.live, p.pid) // only now: until reaped, the pid is the Cmd's
	children.mu.Unlock()
	reapSession(p.pid)
	if p.stdio != nil {
		p.stdio.finish() // lets the bridge handle the last lines before the log closes
	}
	p.stdout.Close()
	p.stderr.Close()
	p.exit = exitStatus(p.cmd.ProcessState, err)
	p.exit.Reason = p.limitReason()

	lvl := hclog.Info
	if !p.exit.Clean() {
		lvl = hclog.Warn
	}
	p.log.Log(lvl, "exited", "status", p.exit.String())
	p.fileLog.Named("supervisor").Log(lvl, "exited", "status", p.exit.String())
	p.closeLog()

	s.mu.Lock()
	delete(s.procs, p)
	s.mu.Unlock()
	close(p.done)
}

// limitReason says which limit ended the process, if one did.
func (p *Process) limitReason() string {
	if p.cgroup == nil || p.exit.Clean() {
		return ""
	}
	oom, pids, _ := p.cgroup.Counters()
	switch {
	case oom > p.oomKills && p.exit.Signal == "SIGKILL":
		return fmt.Sprintf("out of memory: the kernel's OOM killer ended it at its memory limit of %s (%d OOM kills in its cgroup)", FormatBytes(p.cgroup.limits.Memory), oom-p.oomKills)
	case oom > p.oomKills:
		return fmt.Sprintf("after its memory limit of %s was reached (%d of its processes killed by the OOM killer)", FormatBytes(p.cgroup.limits.Memory), oom-p.oomKills)
	case pids > p.pidsRefused:
		return fmt.Sprintf("after its pids limit of %d refused %d forks or threads", p.cgroup.limits.Pids, pids-p.pidsRefused)
	}
	return ""
}

func exitStatus(ps *os.ProcessState, err error) ExitStatus {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = nil // the status says it all
	}
	if ps == nil {
		return ExitStatus{Code: -1, Err: err}
	}
	st := ExitStatus{Code: ps.ExitCode(), Err: err}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		st.Code = -1
		st.Signal = unix.SignalName(ws.Signal())
		if st.Signal == "" {
			st.Signal = ws.Signal().String()
		}
	}
	return st
}

func (p *Process) closeLog() {
	if p.logFile != nil {
		if err := p.logFile.Close(); err != nil {
			p.log.Warn("close log file", "error", err)
		}
	}
}

// closeStdin closes the write end of a Spec.Stdio child's stdin. A second
// close (the bridge's, then this one) does nothing.
func (p *Process) closeStdin() {
	if p.stdin != nil {
		_ = p.stdin.Close()
	}
}

func (p *Process) emitter(stream string) func(line []byte, dropped int) {
	return func(line []byte, dropped int) {
		msg := escapeLine(line)
		if dropped > 0 {
			p.fileLog.Info(msg, "stream", stream, "truncated_bytes", dropped)
			p.log.Debug(msg, "stream", stream, "truncated_bytes", dropped)
			return
		}
		p.fileLog.Info(msg, "stream", stream)
		p.log.Debug(msg, "stream", stream)
	}
}

// ID is the agent id of the process.
func (p *Process) ID() string { return p.id }

// Pid is the process id, which is also its process group id and session id.
func (p *Process) Pid() int { return p.pid }

// Done is closed when the process has exited, has been reaped, and its output
// is fully written.
func (p *Process) Done() <-chan struct{} { return p.done }

// ErrRunning is ExitStatus.Err when Exit is called before Done is closed.
var ErrRunning = errors.New("process is still running")

// Exit is how the process ended. It is valid once Done is closed; before,
// it is {Code: -1, Err: ErrRunning}.
func (p *Process) Exit() ExitStatus {
	select {
	case <-p.done:
		return p.exit
	default:
		return ExitStatus{Code: -1, Err: ErrRunning}
	}
}

// signal sends sig to the process group unless the leader has exited.
func (p *Process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return nil
	}
	if err := syscall.Kill(-p.pid, sig); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("signal agent %s group %d with %s: %w", p.id, p.pid, unix.SignalName(sig), err)
	}
	return nil
}

// Terminate sends SIGTERM to the process group, then SIGKILL after StopGrace
// or when ctx is done, and waits for Done. It is safe to call twice,
// concurrently, or after the process has exited.
func (p *Process) Terminate(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	p.log.Debug("terminating", "grace", p.grace)
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	t := time.NewTimer(p.grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		p.log.Warn("still running after SIGTERM, sending SIGKILL", "grace", p.grace)
	case <-ctx.Done():
		p.log.Warn("terminate cancelled, sending SIGKILL", "error", ctx.Err())
	}
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}

// Shutdown terminates every process still running (SIGTERM to its group,
// StopGrace, SIGKILL; at once when ctx is done) and waits for all of them.
// With Config.Subreaper it then sweeps the orphaned descendants of agents
// (see the package doc) and gives up the subreaper attribute. Further Starts
// fail with ErrShutdown. It is idempotent: a second call waits for the first
// one's outcome.
func (s *Supervisor) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	procs := make([]*Process, 0, len(s.procs))
	for p := range s.procs {
		procs = append(procs, p)
	}
	s.mu.Unlock()

	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.Terminate(ctx)
		}()
	}
	wg.Wait()
	s.wg.Wait()
	first := false
	s.sweepOnce.Do(func() {
		first = true
		if !s.subreaper {
			return
		}
		close(s.reaperStop)
		<-s.reaperDone
		s.sweepErr = s.sweep()
		if err := releaseSubreaper(); err != nil {
			s.sweepErr = errors.Join(s.sweepErr, err)
		}
	})
	if first && s.sweepErr != nil {
		errs = append(errs, s.sweepErr)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shutdown agents: %w", err)
	}
	return nil
}

// EnvValue returns the value of key in a KEY=VALUE environment list (the
// last one wins, as in exec), or "".
func EnvValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}
