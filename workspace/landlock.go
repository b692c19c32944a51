package workspace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Landlock confinement for detect mode, where agents share the host's user:
// each agent may read and write only its own directory, the shared tree
// and the scratch places (/tmp, /dev), and read (and run) the rest of the
// system, but nothing else of the run directory: not another agent's
// directory, not the host's files (events, results, the version store).
// Landlock rules only allow, so "the rest of the system" is every sibling
// of each directory on the way down to the run directory.
//
// The host starts such an agent through the terrarium binary with
// EnvConfine set: ConfineExec (called first thing by builtin.Main) applies
// the rules to the process and executes the agent's program, which keeps
// them (they are inherited by every descendant and cannot be lifted).

// EnvConfine carries a Confinement (JSON) to the trampoline.
const EnvConfine = "TERRARIUM_CONFINE"

// ProbeConfine, as the value of EnvConfine, makes ConfineExec print
// probeReply and exit: the host checks that a binary is a trampoline
// before it relies on it (a program embedding the host may not call
// builtin.Main).
const ProbeConfine = "probe"

const probeReply = "terrarium-confine-ok"

// ProbeTrampoline reports whether exe runs ConfineExec (it answers the
// probe within a few seconds).
func ProbeTrampoline(exe string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), EnvConfine+"="+ProbeConfine)
	out, err := cmd.Output()
	return err == nil && strings.TrimSpace(string(out)) == probeReply
}

// Confinement is what one agent may reach.
type Confinement struct {
	ReadWrite []string `json:"rw"`   // directories (or files) it may read and change
	ReadOnly  []string `json:"ro"`   // it may read and execute
	Exec      string   `json:"exec"` // the program ConfineExec runs
}

// LandlockABI is the kernel's Landlock ABI version, 0 when it has none
// (or it is disabled).
func LandlockABI() int {
	r, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if e != 0 {
		return 0
	}
	return int(r)
}

const (
	fsRead    = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	fileRead  = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE
	fileWrite = unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_TRUNCATE
)

// handled is every file-system right of the ABI (ABI 1 to 3; later rights
// are left unhandled, hence allowed).
func handled(abi int) uint64 {
	h := uint64(1<<13 - 1) // ABI 1: EXECUTE .. MAKE_SYM
	if abi >= 2 {
		h |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 {
		h |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	return h
}

// RulesFor computes an agent's confinement: read-write its own directory,
// the shared tree, and whatever the scratch places hold; read-only
// runDir/bin and every other thing on the machine outside runDir.
func RulesFor(runDir, agentDir, shared string) (Confinement, error) {
	c := Confinement{ReadWrite: []string{agentDir, shared}, ReadOnly: []string{filepath.Join(runDir, "bin")}}
	scratch := func(p string) bool {
		for _, s := range []string{"/tmp", "/dev", "/var/tmp", "/run/user"} {
			if p == s || strings.HasPrefix(p, s+"/") {
				return true
			}
		}
		return false
	}
	runDir = filepath.Clean(runDir)
	for dir := "/"; dir != runDir; {
		next := runDir
		if rel, err := filepath.Rel(dir, runDir); err == nil {
			next = filepath.Join(dir, strings.Split(rel, string(filepath.Separator))[0])
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return Confinement{}, fmt.Errorf("landlock rules: %w", err)
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			if p == next {
				continue
			}
			if scratch(p) {
				c.ReadWrite = append(c.ReadWrite, p)
			} else {
				c.ReadOnly = append(c.ReadOnly, p)
			}
		}
		dir = next
	}
	return c, nil
}

// Confine applies c to the calling OS thread (and what it executes): no
// new privileges, then a Landlock domain. The caller locks the thread.
func Confine(c Confinement) error {
	abi := LandlockABI()
	if abi == 0 {
		return errors.New("landlock: not available in this kernel")
	}
	h := handled(abi)
	attr := struct{ fs uint64 }{h}
	rfd, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr), 0)
	if e != 0 {
		return fmt.Errorf("landlock: create ruleset: %w", e)
	}
	defer unix.Close(int(rfd))
	add := func(p string, dirRights, fileRights uint64) error {
		fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil // gone or unreachable: nothing to allow
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return nil
		}
		rights := dirRights
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			rights = fileRights
		}
		rule := unix.LandlockPathBeneathAttr{Allowed_access: rights & h, Parent_fd: int32(fd)}
		if _, _, e := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, rfd, unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&rule)), 0, 0, 0); e != 0 {
			return fmt.Errorf("landlock: rule for %s: %w", p, e)
		}
		return nil
	}
	for _, p := range c.ReadOnly {
		if err := add(p, fsRead, fileRead); err != nil {
			return err
		}
	}
	for _, p := range c.ReadWrite {
		if err := add(p, h, fileRead|fileWrite); err != nil {
			return err
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("landlock: no_new_privs: %w", err)
	}
	if _, _, e := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, rfd, 0, 0); e != 0 {
		return fmt.Errorf("landlock: restrict self: %w", e)
	}
	return nil
}

// ConfineExec is the trampoline: when EnvConfine is set it applies the
// confinement and executes c.Exec with the process's arguments (after the
// first) and environment (without EnvConfine); it returns only on error,
// which the caller reports before exiting. Without EnvConfine it returns
// nil at once.
func ConfineExec() error {
	spec, ok := os.LookupEnv(EnvConfine)
	if !ok {
		return nil
	}
	if spec == ProbeConfine {
		fmt.Println(probeReply)
		os.Exit(0)
	}
	var c Confinement
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		return fmt.Errorf("%s: %w", EnvConfine, err)
	}
	if c.Exec == "" {
		return fmt.Errorf("%s: no program to run", EnvConfine)
	}
	runtime.LockOSThread() // the domain is the thread's: exec from the same one
	if err := Confine(c); err != nil {
		return err
	}
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvConfine+"=") {
			env = append(env, kv)
		}
	}
	args := append([]string{c.Exec}, os.Args[1:]...)
	return fmt.Errorf("landlock: exec %s: %w", c.Exec, syscall.Exec(c.Exec, args, env))
}
