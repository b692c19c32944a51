package workspace

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// CleanPath normalises a lease path: a slash-separated path relative to the
// shared tree, without "." elements, duplicate or trailing slashes. It
// refuses (wrapping ErrBadPath, with the reason) an empty path, an absolute
// path, a path with a ".." element, a NUL byte, and the tree itself.
func CleanPath(p string) (string, error) {
	switch {
	case p == "":
		return "", fmt.Errorf("%w: empty path", ErrBadPath)
	case strings.ContainsRune(p, 0):
		return "", fmt.Errorf("%w: %q has a NUL byte", ErrBadPath, p)
	case strings.HasPrefix(p, "/"):
		return "", fmt.Errorf("%w: %q is absolute: lease paths are relative to the shared tree", ErrBadPath, p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", fmt.Errorf("%w: %q has a \"..\" element: lease paths stay inside the shared tree", ErrBadPath, p)
		}
	}
	c := path.Clean(p)
	if c == "." {
		return "", fmt.Errorf("%w: %q names the shared tree itself: name a file or a directory in it", ErrBadPath, p)
	}
	if len(c) > 4096 {
		return "", fmt.Errorf("%w: path longer than 4096 bytes", ErrBadPath)
	}
	return c, nil
}

// within reports whether p is prefix or below it (both cleaned).
func within(p, prefix string) bool {
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// overlaps reports whether two leases' scopes share a path.
func overlaps(a string, aPrefix bool, b string, bPrefix bool) bool {
	switch {
	case a == b:
		return true
	case aPrefix && within(b, a):
		return true
	case bPrefix && within(a, b):
		return true
	}
	return false
}

// tempName reports whether a file name looks like an editor's or a tool's
// temporary file, which the watcher ignores until it is renamed into place.
func tempName(name string) bool {
	switch {
	case strings.HasPrefix(name, ".#"), // emacs lock
		strings.HasSuffix(name, "~"),                                     // backups
		strings.HasSuffix(name, ".swp"), strings.HasSuffix(name, ".swx"), // vim
		name == "4913",                  // vim's write test
		strings.HasSuffix(name, ".tmp"), // foo.tmp
		strings.Contains(name, ".tmp."), // foo.tmp.1234 (Claude Code, many tools)
		strings.HasPrefix(name, ".~"),   // libreoffice
		strings.HasSuffix(name, ".part"):
		return true
	}
	return false
}

// tempPID is the process id a temporary file's name carries, as the
// claude CLI names the file its Write and Edit tools rename over their
// target (<name>.tmp.<pid>.<hex>) and other tools <name>.tmp.<pid>; 0 if
// none.
func tempPID(name string) int {
	_, rest, ok := strings.Cut(name, ".tmp.")
	if !ok {
		return 0
	}
	digits, _, _ := strings.Cut(rest, ".")
	pid, err := strconv.Atoi(digits)
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
