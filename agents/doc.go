// Package agents turns agent specs into operating-system processes and owns
// each process until it is dead.
//
// # Processes
//
// [Supervisor.Start] runs one agent program as its own process, in a session
// and process group of its own (Setsid: the process is their leader, so its
// pid is also its group and session id, and it has no controlling terminal),
// in the working directory of its [Spec], with exactly the environment of the
// Spec (nothing of the host's environment leaks; build it with [BuildEnv]),
// as the user of [Spec.Credential] when set. The program is resolved with
// [LookPath] against the PATH of that environment, never the host's.
//
// Guarantees:
//
//   - A session does not outlive its leader: as soon as the agent process
//     exits (and before it is reaped, so the group and session ids cannot have
//     been reused) every process left in its group gets SIGKILL, and so does
//     every process left in its session in another group (setpgid, a job
//     control shell), signalled through a pidfd after checking its session.
//   - [Process.Terminate] sends SIGTERM to the group, waits [Config.StopGrace]
//     (or until its context is done), then sends SIGKILL to the group, and
//     returns only after [Process.Done] is closed. It is safe to call more than
//     once, concurrently, and after the process has exited.
//   - [Supervisor.Shutdown] terminates every process still running, in parallel,
//     and waits for all of them; after it returns no process started by the
//     supervisor, nor any process of their groups or sessions, is running, and
//     no goroutine of the supervisor is left. With [Config.Subreaper], the
//     orphaned descendants of agents are swept too (below). A second call waits
//     for the same outcome and returns nil. Start after Shutdown fails with
//     [ErrShutdown].
//   - Each process is always waited for (no zombies). A grandchild that left the
//     session (setsid) but still holds the output pipes cannot hang
//     [Process.Done]: the pipes are closed [Config.WaitDelay] after the process
//     exits (exec.Cmd.WaitDelay) and [ExitStatus.Err] reports exec.ErrWaitDelay.
//
// # Orphans: Config.Subreaper and the sweep
//
// A descendant of an agent that leaves the agent's session (setsid, as in
// `setsid sleep 501 &` in an agent's shell script) is out of reach of group
// and session kills. With [Config.Subreaper] the supervisor makes the host
// process a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so such a process
// is reparented to the host, not to init, when its parent dies. The attribute
// is process-wide (it applies to orphans of every child of the host, not only
// of agents); it is held from [NewSupervisor] until the end of the first
// [Supervisor.Shutdown] of every supervisor that asked for it, then cleared,
// unless the process was a subreaper before.
//
// Once all its agents are dead, Shutdown sweeps, in rounds until a round finds
// nothing (killing an orphan reparents its own children to the host): it sends
// SIGKILL to, and then reaps, every process whose parent is the host process
// and that is
//
//   - not an agent process of any Supervisor of this process (registered from
//     before its fork until its exec.Cmd has reaped it: the sweep never reaps a
//     pid an exec.Cmd must reap),
//   - not referred to by a pidfd open in this process (every os.Process that Go
//     code anywhere in the host started, and has not waited for, holds one),
//   - not in the host's own session (every agent starts a new session, and no
//     descendant of an agent can ever rejoin the host's session), and
//   - not in the session or group of a live agent of another Supervisor.
//
// That is: the host's adopted orphans that came from agents. A process that
// left its agent's session carries no mark of the agent it came from, so with
// several supervisors in one process the first Shutdown also sweeps such
// orphans of the others' agents. Orphans that exit before Shutdown stay
// zombies of the host until the sweep (those killed with their agent's group
// or session are reaped when the agent is). Without Subreaper there is no
// sweep: orphans go to init and may survive.
//
// # Host death
//
// Pdeathsig=SIGKILL makes the kernel kill the agent process when the host
// dies, even by SIGKILL or a crash. Caveat: Linux sends the signal when the OS
// thread that forked the child exits, not when the host process exits. Go only
// ends a thread when a goroutine locked to it (runtime.LockOSThread) returns,
// so Start forks from a fresh, unlocked goroutine: the thread that forks is
// never one that a locked goroutine could take down. With [Spec.Credential]
// Pdeathsig still holds: the kernel clears the parent-death signal when
// credentials change, and Go's child (syscall/exec_linux.go,
// forkAndExecInChild1) sets it after setgroups/setgid/setuid and chdir, just
// before exec. It is cleared when the child executes a set-user-id program.
//
// Pdeathsig reaches only the agent process, not its descendants, and a dead
// host can no longer sweep: for a host killed by kill -9 or a crash, the
// Watchdog (a separate process in its own session, see StartWatchdog) kills
// the agents' groups, sessions, tracked descendants and, when agents run as
// their own users, everything of those UIDs. Without a watchdog, a
// descendant such as the `sleep 502 &` of a shell-wrapper agent survives,
// reparented to init. A descendant in the agent's cgroup (below) is caught
// whatever it did: the watchdog kills and removes the run's cgroups too
// ([Watchdog.WatchCgroup]).
//
// # Limits: cgroups and the shim
//
// [OpenCgroups] finds, for one run, where each controller can be used: a
// cgroup v2 controller enabled in the host's own group, else the
// controller's own v1 hierarchy (memory, pids, cpu; freezer, or v2's
// cgroup.kill, to kill a group as a whole). [Cgroups.Group] creates an
// agent's groups at terrarium/<run>/<agent> under the host's group in each
// hierarchy it needs, writes each limit and reads it back, and returns a
// [LimitReport] per limit: the mechanism (cgroup-v2, cgroup-v1, or none
// with the reason). [Rlimits] then picks rlimits for what no cgroup holds
// (RLIMIT_AS for memory, RLIMIT_NPROC for pids when the agent has a user of
// its own) and marks them in the report.
//
// A [Spec] with a Cgroup or Rlimits starts as the shim ([ShimMain], the
// terrarium binary re-executed): the supervisor forks it, writes its pid
// into the group's cgroup.procs, then lets it go on through a pipe; the
// shim sets the rlimits, reads each back (it exits 126, naming the limit,
// unless the kernel holds exactly what was asked) and executes the agent's
// program with the same pid.
// So the program never runs outside its group, nor without its rlimits,
// not even for an instant, and every descendant inherits both. When the
// process exits, the supervisor kills everything left in its group
// (freezing it first, so nothing can fork meanwhile) along with its process
// group and session, and [ExitStatus.Reason] says when a limit ended it
// (the OOM killer). [Cgroups.Close] removes the groups.
//
// # Output
//
// stdout and stderr are read by the exec package's copying goroutines (one per
// pipe, waited for by exec.Cmd.Wait) and split into lines. Each line becomes one
// record in the Spec's LogPath (an hclog logger writing to that file, key
// stream=stdout|stderr) and a Debug record on the agent's logger
// (Config.Logger.Named("agent").With("agent", id)). A line longer than
// [MaxLineBytes] is cut there; the rest of it is discarded and counted
// (truncated_bytes=N), so a child writing huge lines is never blocked. No raw
// control character reaches a log: control characters other than tab become
// \xHH (C0 and DEL, e.g. \x1b for ESC) or \u00HH (C1), and each byte that is
// not valid UTF-8 becomes \xHH (\xff); printable UTF-8, backslash included,
// is kept as is, so the escaping is for reading, not reversible. A cut line
// ending inside a character shows the cut bytes as \xHH. Lines of
// one stream keep their order; lines of stdout and stderr may interleave
// differently from how the child wrote them. A final line without a newline is
// still written. [Process.Done] is closed only after all output is written.
//
// All methods are safe for concurrent use.
//
// # The stdio runtime
//
// A Spec with Stdio set gets a stdin pipe, and its stdout is read by a
// StdioBridge instead of the log: the bridge connects to the bus as the
// agent (with the agent's own credentials, which the child never sees) and
// turns observations into JSON lines on the child's stdin and its act lines
// into actions. Writes go through a bounded queue, so a child that never
// reads its stdin cannot block the host; see StdioBridge for the rest.
//
// # The claude runtime
//
// A claude CLI is started with Stdio too, and served by a ClaudeDriver
// instead of a bridge: it writes prompts to the CLI's stdin as stream-json
// user messages, one at a time (the newest waiting prompt replaces an older
// one), and reads its stream-json output, counting the usage of every
// result (LLMUsage). The CLI reaches the bus only through its MCP server
// (agents/mcpserver), which connects as the agent.
//
// # Costs per agent
//
// Each agent's output pipes are read through a 2 KiB buffer (not io.Copy's
// 32 KiB), so an agent costs the host about 100 KiB in all (measured:
// docs/benchmarks.md). The reaper scans /proc only when waitid reports an
// exited child. Go agent programs ([IsGoProgram]) get [GoDefaults]
// (GOMAXPROCS=1) unless the scenario passes the host's value.
package agents
