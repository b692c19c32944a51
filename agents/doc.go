// Package agents turns agent specs into operating-system processes and owns
// each process until it is dead.
//
// # Processes
//
// [Supervisor.Start] runs one agent program as its own process, in its own
// process group (Setpgid), in the working directory of its [Spec], with exactly
// the environment of the Spec (nothing of the host's environment leaks; build
// it with [BuildEnv]). The program is resolved with [LookPath] against the PATH
// of that environment, never the host's.
//
// Guarantees:
//
//   - A process group does not outlive its leader: as soon as the agent process
//     exits (and before it is reaped, so the group id cannot have been reused)
//     every process left in its group gets SIGKILL.
//   - [Process.Terminate] sends SIGTERM to the group, waits [Config.StopGrace]
//     (or until its context is done), then sends SIGKILL to the group, and
//     returns only after [Process.Done] is closed. It is safe to call more than
//     once, concurrently, and after the process has exited.
//   - [Supervisor.Shutdown] terminates every process still running, in parallel,
//     and waits for all of them; after it returns no process started by the
//     supervisor, nor any process of their groups, is running, and no goroutine
//     of the supervisor is left. A second call waits for the same outcome and
//     returns nil. Start after Shutdown fails with [ErrShutdown].
//   - Each process is always waited for (no zombies). A grandchild that left the
//     group (setsid) but still holds the output pipes cannot hang [Process.Done]:
//     the pipes are closed [Config.WaitDelay] after the process exits
//     (exec.Cmd.WaitDelay) and [ExitStatus.Err] reports exec.ErrWaitDelay.
//   - Pdeathsig=SIGKILL makes the kernel kill the agent process when the host
//     dies, even by SIGKILL or a crash. Caveat: Linux sends the signal when the
//     OS thread that forked the child exits, not when the host process exits. Go
//     only ends a thread when a goroutine locked to it (runtime.LockOSThread)
//     returns, so Start forks from a fresh, unlocked goroutine: the thread that
//     forks is never one that a locked goroutine could take down. Pdeathsig is
//     cleared when the child executes a set-user-id program, and it does not reach
//     grandchildren: after a host crash, processes the agent itself spawned
//     survive unless the agent arranges otherwise (cgroups would close this gap).
//
// # Output
//
// stdout and stderr are read by the exec package's copying goroutines (one per
// pipe, waited for by exec.Cmd.Wait) and split into lines. Each line becomes one
// record in the Spec's LogPath (an hclog logger writing to that file, key
// stream=stdout|stderr) and a Debug record on the agent's logger
// (Config.Logger.Named("agent").With("agent", id)). A line longer than
// [MaxLineBytes] is cut there; the rest of it is discarded and counted
// (truncated_bytes=N), so a child writing huge lines is never blocked. Lines of
// one stream keep their order; lines of stdout and stderr may interleave
// differently from how the child wrote them. A final line without a newline is
// still written. [Process.Done] is closed only after all output is written.
//
// All methods are safe for concurrent use.
package agents
