package agents

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// EnvShim, when set, makes the terrarium binary (builtin.Main) run as the
// limits shim: see ShimMain. The shim removes it from the environment the
// program gets.
const EnvShim = "TERRARIUM_SHIM"

// shimFD is the shim's descriptor of the pipe it waits on: the host writes
// one byte once the shim's process is in its cgroup.
const shimFD = 3

// shimGo is the byte that lets the shim go on.
const shimGo = 'g'

// Exit codes of a shim that could not execute the program (as a shell's).
const (
	ShimSetupFailed = 126
	ShimExecFailed  = 127
)

// shimConfig is the shim's part of its environment (EnvShim, as JSON).
type shimConfig struct {
	Path    string   `json:"path"`              // the program to execute, absolute
	Wait    bool     `json:"wait,omitempty"`    // wait on shimFD for shimGo before anything else
	Rlimits []Rlimit `json:"rlimits,omitempty"` // set before executing Path
}

// ShimMain is the body of the shim, the first program of an agent process
// with limits (builtin.Main runs it when EnvShim is set): it waits until
// the host has put its process into the agent's cgroup (so the program
// never runs outside it, not even for an instant), sets the rlimits and
// reads each back (the program does not start unless the kernel holds
// exactly what was asked), and
// executes the agent's program in place of itself, with the same pid,
// arguments (os.Args) and environment less EnvShim. It never returns: on
// failure it writes why on stderr and exits 126 (before exec) or 127 (exec
// failed).
func ShimMain() {
	fail := func(code int, format string, args ...any) {
		fmt.Fprintf(os.Stderr, "terrarium shim: "+format+"\n", args...)
		os.Exit(code)
	}
	var cfg shimConfig
	if err := json.Unmarshal([]byte(os.Getenv(EnvShim)), &cfg); err != nil || cfg.Path == "" {
		fail(ShimSetupFailed, "bad %s: %v", EnvShim, err)
	}
	if cfg.Wait {
		b := make([]byte, 1)
		n, err := unix.Read(shimFD, b)
		if n != 1 || b[0] != shimGo {
			fail(ShimSetupFailed, "the host did not put this process into its cgroup (read %d bytes: %v); not starting %s", n, err, cfg.Path)
		}
		_ = unix.Close(shimFD)
	}
	if err := setRlimits(cfg.Rlimits, unix.Setrlimit, unix.Getrlimit); err != nil {
		fail(ShimSetupFailed, "%v; not starting %s", err, cfg.Path)
	}
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvShim+"=") {
			env = append(env, kv)
		}
	}
	err := syscall.Exec(cfg.Path, os.Args, env)
	fail(ShimExecFailed, "exec %s: %v", cfg.Path, err)
}

// setRlimits sets each rlimit with set and reads it back with get: it
// fails, naming the limit, unless the kernel holds exactly what was asked.
func setRlimits(rls []Rlimit, set, get func(resource int, rlim *unix.Rlimit) error) error {
	for _, r := range rls {
		want := unix.Rlimit{Cur: r.Cur, Max: r.Max}
		if err := set(r.Resource, &want); err != nil {
			return fmt.Errorf("setrlimit %s to %d (hard %d): %w", rlimitName(r.Resource), r.Cur, r.Max, err)
		}
		var got unix.Rlimit
		if err := get(r.Resource, &got); err != nil {
			return fmt.Errorf("getrlimit %s after setting it: %w", rlimitName(r.Resource), err)
		}
		if got != want {
			return fmt.Errorf("setrlimit %s to %d (hard %d): the kernel holds %d (hard %d)", rlimitName(r.Resource), want.Cur, want.Max, got.Cur, got.Max)
		}
	}
	return nil
}

// rlimitName names the resources the host sets, and numbers the others.
func rlimitName(resource int) string {
	switch resource {
	case unix.RLIMIT_AS:
		return "RLIMIT_AS"
	case unix.RLIMIT_NPROC:
		return "RLIMIT_NPROC"
	case unix.RLIMIT_NOFILE:
		return "RLIMIT_NOFILE"
	case unix.RLIMIT_CPU:
		return "RLIMIT_CPU"
	}
	return "rlimit " + strconv.Itoa(resource)
}

// shimEnv is the EnvShim entry for a program and its setup.
func shimEnv(cfg shimConfig) (string, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("shim config: %w", err)
	}
	return EnvShim + "=" + string(b), nil
}
