package terrarium

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Agent user modes (Config.AgentUsers).
const (
	AgentUsersAuto = "auto" // own users when the host runs as root and the run directory allows it
	AgentUsersOn   = "on"   // own users, or the run fails
	AgentUsersOff  = "off"  // agents run as the host's user
)

// DefaultAgentUIDBase is the first agent's user and group id: agent i (in id
// order, from 0) runs as UID = GID = base + i.
const DefaultAgentUIDBase = 100000

// isolation is whether, and how, agents run as their own users.
type isolation struct {
	on    bool
	block uidBlock // when on: the UIDs this run holds
	why   string   // when off: the reason
}

// decideIsolation settles the agent-user mode for a run directory.
func decideIsolation(mode string, base uint32, dir string, agents int) (isolation, error) {
	if mode == "" {
		mode = AgentUsersAuto
	}
	off := func(why string) (isolation, error) {
		if mode == AgentUsersOn {
			return isolation{}, fmt.Errorf("agent users: %s (or use --agent-users off)", why)
		}
		return isolation{why: why}, nil
	}
	switch mode {
	case AgentUsersOff:
		return isolation{why: "turned off (--agent-users off)"}, nil
	case AgentUsersAuto, AgentUsersOn:
	default:
		return isolation{}, fmt.Errorf("agent users: unknown mode %q (auto, on, off)", mode)
	}
	if os.Geteuid() != 0 {
		return off("the host is not running as root, so it cannot give agents their own users")
	}
	if uint64(base)+uint64(agents) > 1<<31 {
		return off(fmt.Sprintf("uid base %d leaves no room for %d agents", base, agents))
	}
	if blocker := unreachable(dir); blocker != "" {
		return off(fmt.Sprintf("%s is not searchable by other users (mode o-x), so agents running as their own users could not reach their workspaces; choose --out under a directory others can enter (such as /tmp or /opt)", blocker))
	}
	block, err := reserveUIDs(base, agents)
	if err != nil {
		return off(err.Error())
	}
	return isolation{on: true, block: block}, nil
}

// checkAgentUsers refuses, before anything runs, an "on" mode that cannot be
// met.
func checkAgentUsers(mode, dir string) error {
	if mode != AgentUsersOn {
		return nil
	}
	if os.Geteuid() != 0 {
		return errors.New("--agent-users on: the host must run as root to give agents their own users")
	}
	if blocker := unreachable(dir); blocker != "" {
		return fmt.Errorf("--agent-users on: %s is not searchable by other users (mode o-x), so agents could not reach their workspaces; choose --out under a directory others can enter", blocker)
	}
	return nil
}

// unreachable returns the first directory from dir up to / that other users
// cannot search, or "".
func unreachable(dir string) string {
	dir, _ = filepath.Abs(dir)
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		switch {
		case errors.Is(err, os.ErrNotExist):
			// made later, searchable by all (0755 or 0711)
		case err != nil || fi.Mode().Perm()&0o001 == 0:
			return d
		}
		if d == filepath.Dir(d) {
			return ""
		}
	}
}

// uid is the user (and group) id of the agent at index i of the sorted seats.
func (iso isolation) uid(i int) uint32 { return iso.block.base + uint32(i) }

// credential is what agent i runs as, nil when isolation is off. It has no
// supplementary groups (the host's are dropped).
func (iso isolation) credential(i int) *syscall.Credential {
	if !iso.on {
		return nil
	}
	return &syscall.Credential{Uid: iso.uid(i), Gid: iso.uid(i), Groups: []uint32{}}
}

// String describes the mode for result.json and events.
func (iso isolation) String() string {
	if iso.on {
		return fmt.Sprintf("users (uid/gid %d+)", iso.block.base)
	}
	return "none: " + iso.why
}

// lockDown makes the run directory private to the host where agents run as
// their own users: they may pass through it to their workspace and to bin/,
// but not list it or read the host's files (events, results, logs, the bus
// store, other agents' workspaces).
func (iso isolation) lockDown(runDir string) error {
	if !iso.on {
		return nil
	}
	modes := []struct {
		path string
		mode os.FileMode
	}{
		{"", 0o711}, {"workspace", 0o711}, {filepath.Join("workspace", "agents"), 0o711},
		{"logs", 0o700}, {"jetstream", 0o700}, {"scenario.hcl", 0o600},
	}
	var errs []error
	for _, m := range modes {
		if err := os.Chmod(filepath.Join(runDir, m.path), m.mode); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("make run directory private: %w", err)
	}
	return nil
}

// private restricts a host file of the run to the host where agents run as
// their own users.
func (iso isolation) private(path string) error {
	if !iso.on {
		return nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("make %s private: %w", filepath.Base(path), err)
	}
	return nil
}

// giveWorkspace makes agent i the owner of its workspace, mode 0700.
func (iso isolation) giveWorkspace(dir string, i int) error {
	if !iso.on {
		return nil
	}
	if err := os.Chown(dir, int(iso.uid(i)), int(iso.uid(i))); err != nil {
		return fmt.Errorf("give workspace to uid %d: %w", iso.uid(i), err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("workspace mode: %w", err)
	}
	return nil
}

// end cleans up after the agents of the run: it kills whatever still runs
// under their UIDs (descendants that escaped every process group and
// session), gives their workspaces back to root (mode 0700) so that no later
// holder of the same UID can reach them, and releases the UIDs.
func (iso *isolation) end(workspaces []string) error {
	if !iso.on || iso.block.lock == nil {
		return nil
	}
	var errs []error
	if err := iso.block.killAll(len(workspaces)); err != nil {
		errs = append(errs, err)
	}
	for _, ws := range workspaces {
		if err := os.Chown(ws, 0, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	iso.block.release()
	return errors.Join(errs...)
}

// giveFile hands a file or directory the host made inside agent i's
// workspace to that agent's user.
func (iso isolation) giveFile(path string, i int) error {
	if !iso.on {
		return nil
	}
	if err := os.Chown(path, int(iso.uid(i)), int(iso.uid(i))); err != nil {
		return fmt.Errorf("give %s to uid %d: %w", filepath.Base(path), iso.uid(i), err)
	}
	return nil
}
