package agents

import (
	"encoding/json"
	"fmt"
	"os"
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
// never runs outside it, not even for an instant), sets the rlimits, and
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
	for _, r := range cfg.Rlimits {
		if err := unix.Setrlimit(r.Resource, &unix.Rlimit{Cur: r.Cur, Max: r.Max}); err != nil {
			fail(ShimSetupFailed, "setrlimit %d to %d: %v", r.Resource, r.Cur, err)
		}
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

// shimEnv is the EnvShim entry for a program and its setup.
func shimEnv(cfg shimConfig) (string, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("shim config: %w", err)
	}
	return EnvShim + "=" + string(b), nil
}
