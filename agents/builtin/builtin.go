// Package builtin holds the reference agents the terrarium binary runs when
// it re-executes itself (the "builtin" runtime): the tournament strategies and
// the test doubles. Programs register at init; Main runs the one the host asked for.
//
// Main never returns when agents.EnvBuiltin is set: it runs the program and
// exits the process, 0 when the run ended (stop, world end, or SIGTERM/SIGINT
// from the supervisor), 1 with a message on stderr otherwise. When
// agents.EnvWatchdog is "1" (checked first) it runs the process as the run's
// watchdog (agents.WatchdogMain) and exits with its code. When neither is set
// it returns at once and does nothing. With agents.EnvShim set (checked
// second) it is the limits shim of an agent process (agents.ShimMain) and
// executes the agent's program in its place.
package builtin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/workspace"
)

// Program is a reference agent. It runs on a connected SDK agent until the
// run ends or ctx is done. Most programs are Respond(handler).
type Program func(ctx context.Context, a *sdk.Agent) error

// RawProgram is a reference agent that does without the SDK and the
// envelope: it reads the agent's settings from the environment and speaks
// to the bus itself. The benchmark baseline's "echo" is one. Raw programs
// are not for scenarios (Lookup and Names do not report them; their
// messages are not protocol messages): a harness starts them by setting
// agents.EnvBuiltin itself. It returns when told to stop or ctx is done.
type RawProgram func(ctx context.Context) error

var (
	mu       sync.RWMutex
	programs = map[string]Program{}
	raw      = map[string]RawProgram{}
)

// RegisterRaw makes a raw program available to Main under name. It panics
// on a duplicate of any program.
func RegisterRaw(name string, p RawProgram) {
	mu.Lock()
	defer mu.Unlock()
	_, dup := programs[name]
	if _, dupRaw := raw[name]; dup || dupRaw {
		panic(fmt.Sprintf("builtin: %q registered twice", name))
	}
	raw[name] = p
}

// Register makes a program available under name. It panics on a duplicate.
func Register(name string, p Program) {
	mu.Lock()
	defer mu.Unlock()
	_, dup := programs[name]
	_, dupPool := pools[name]
	if _, dupRaw := raw[name]; dup || dupRaw || dupPool {
		panic(fmt.Sprintf("builtin: %q registered twice", name))
	}
	programs[name] = p
}

// Lookup returns the program registered under name.
func Lookup(name string) (Program, bool) {
	mu.RLock()
	defer mu.RUnlock()
	p, ok := programs[name]
	return p, ok
}

// Names lists the registered programs, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	n := make([]string, 0, len(programs))
	for k := range programs {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Respond makes a program that answers every observation with h's action.
func Respond(h sdk.Handler) Program {
	return func(ctx context.Context, a *sdk.Agent) error { return a.Run(ctx, h) }
}

// Main runs the builtin program named by agents.EnvBuiltin and exits the
// process (0 on a clean end, 1 on error, with the message on stderr) if that
// variable is set; otherwise it returns at once. cmd/terrarium's main and the
// TestMain of packages that run the host call it first thing, so the builtin
// runtime can re-execute os.Executable(). With agents.EnvWatchdog=1 it runs
// the watchdog instead (see agents.StartWatchdog).
func Main() {
	if os.Getenv(agents.EnvWatchdog) == "1" {
		os.Exit(agents.WatchdogMain())
	}
	if _, ok := os.LookupEnv(agents.EnvShim); ok {
		agents.ShimMain() // never returns: executes the agent's program
	}
	// Detect mode's Landlock trampoline (after the shim, which executes
	// it inside the agent's cgroup): confine, then run the agent.
	if err := workspace.ConfineExec(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	name, ok := os.LookupEnv(agents.EnvBuiltin)
	if !ok {
		return
	}
	stopServerStats()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	endProfile := startProfile()
	err := runProgram(ctx, name, os.Stderr)
	endProfile()
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "builtin %s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// EnvCPUProfile, when set to a directory, makes a builtin agent write its
// CPU profile to <dir>/<agent id>.pprof (a pool: <pool id>.pprof) (for `go tool pprof`) when it
// ends cleanly. The directory must be writable by the agent's user.
const EnvCPUProfile = "TERRARIUM_BUILTIN_CPUPROFILE"

// startProfile starts the CPU profile EnvCPUProfile asks for; the function
// it returns stops and writes it.
func startProfile() func() {
	dir := os.Getenv(EnvCPUProfile)
	if dir == "" {
		return func() {}
	}
	name := os.Getenv(agents.EnvAgentID)
	if name == "" {
		name = os.Getenv(agents.EnvPool) // a pool: named by its pool id
	}
	f, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "builtin: cpu profile: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "builtin: cpu profile: %v\n", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// runProgram connects, runs the program and closes. A signal (ctx done) is a
// clean end.
func runProgram(ctx context.Context, name string, stderr io.Writer) error {
	mu.RLock()
	rp, isRaw := raw[name]
	mu.RUnlock()
	if isRaw {
		return rp(ctx)
	}
	if pp, isPool := LookupPool(name); isPool {
		return runPool(ctx, name, pp, stderr)
	}
	p, ok := Lookup(name)
	if !ok {
		return fmt.Errorf("unknown program %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	log := hclog.New(&hclog.LoggerOptions{
		Name:   "builtin." + name,
		Output: stderr,
		Level:  hclog.Info,
		Color:  hclog.ColorOff,
	})
	a, err := sdk.Connect(ctx, sdk.WithLogger(log))
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before the run began
		}
		return err
	}
	err = p(ctx, a)
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		err = nil
	}
	return errors.Join(err, a.Close())
}

// CopyExecutable puts the running executable at dst, so agents run from
// inside the run directory (and keep running when the original goes away, as
// `go run`'s does). See InstallExecutable.
func CopyExecutable(dst string) (string, error) { return InstallExecutable("", dst) }

// InstallExecutable puts the program src ("" for os.Executable()) at dst:
// a hard link when src is on the same file system and executable by
// everyone (no copy of a 20 MB binary per run), else a copy with mode 0755,
// made atomically (a temporary file in dst's directory renamed over dst).
// It returns dst.
func InstallExecutable(src, dst string) (string, error) {
	if src == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("copy executable: %w", err)
		}
		src = exe
	}
	if fi, err := os.Stat(src); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o555 == 0o555 {
		if err := os.Link(src, dst); err == nil {
			return dst, nil
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("copy executable: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("copy executable to %s: %w", dst, err)
	}
	fail := func(err error) (string, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", fmt.Errorf("copy executable %s to %s: %w", src, dst, err)
	}
	if _, err := io.Copy(tmp, in); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("copy executable %s to %s: %w", src, dst, err)
	}
	return dst, nil
}
