package scenarios

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/builtin"
)

// program resolves the command of a runtime "nats" agent to the absolute
// path of an executable file (agents.LookPath, as the host does when it
// starts the agent). On failure it reports the problem at r, says what to
// do, and returns "".
func (d *decoder) program(agent, command string, r hcl.Range) string {
	p, err := agents.LookPath(command, d.dir, d.pathEnv)
	if err == nil {
		return p
	}
	d.errorf(r, "Invalid command", "agent %q: %v; %s.", agent, err, d.commandAdvice(command))
	return ""
}

// commandAdvice says how to fix a command that cannot be run.
func (d *decoder) commandAdvice(command string) string {
	if !strings.Contains(command, "/") {
		advice := fmt.Sprintf(`install %q or add its directory to PATH, or give its path (a relative path is taken from %s, the scenario file's directory)`, command, d.dir)
		if _, found := builtin.Lookup(command); found {
			advice = fmt.Sprintf(`%q is the name of a builtin agent: add runtime = "builtin" to run it, or else %s`, command, advice)
		}
		return advice
	}
	p := command
	if !filepath.IsAbs(p) {
		p = filepath.Join(d.dir, p)
	}
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if filepath.IsAbs(command) {
			return "check the path, or build the program first"
		}
		return fmt.Sprintf("check the path, or build the program first; a relative path is taken from %s, the scenario file's directory", d.dir)
	case err != nil:
		return "check the path and its permissions"
	case fi.IsDir():
		return "give the path of the program inside that directory"
	case !fi.Mode().IsRegular():
		return "give the path of a regular file"
	default:
		return fmt.Sprintf("make it executable (chmod +x %s)", p)
	}
}
