package agents

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LookPath resolves a command for a spec. A command containing a slash
// (absolute, or relative such as ./bin/agent, taken relative to dir) is
// checked: it must exist, be a regular file and be executable. A bare name is
// looked up in the directories of pathEnv (a PATH value; empty and relative
// entries are skipped). The result is an absolute path. Errors say what is
// wrong: `command "foo" not found in PATH ("/usr/bin:/bin")`.
func LookPath(command, dir, pathEnv string) (string, error) {
	if command == "" {
		return "", errors.New("no command given")
	}
	if strings.Contains(command, "/") {
		p := command
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", fmt.Errorf("command %q: %w", command, err)
		}
		if err := checkProgram(abs); err != nil {
			return "", fmt.Errorf("command %q: %w", command, err)
		}
		return abs, nil
	}
	if pathEnv == "" {
		return "", fmt.Errorf("command %q not found: PATH is empty", command)
	}
	var firstProblem error
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		p := filepath.Join(d, command)
		err := checkProgram(p)
		if err == nil {
			return p, nil
		}
		if firstProblem == nil && !errors.Is(err, os.ErrNotExist) {
			firstProblem = err
		}
	}
	if firstProblem != nil {
		return "", fmt.Errorf("command %q not found in PATH (%q); %w", command, pathEnv, firstProblem)
	}
	return "", fmt.Errorf("command %q not found in PATH (%q)", command, pathEnv)
}

// checkProgram reports why path cannot be executed, or nil.
func checkProgram(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s does not exist: %w", path, os.ErrNotExist)
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%s is a directory, not a program", path)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file (%v)", path, fi.Mode().Type())
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s is not executable (mode %v)", path, fi.Mode().Perm())
	}
	return nil
}
