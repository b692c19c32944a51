package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/workspace"
	"github.com/terrarium-sim/terrarium/world"
)

func init() {
	register(command{name: "files", order: 45, usage: "files RUN_DIR [log PATH | show PATH@V | show sha256:HASH | checkout [--force] PATH@V DEST]", summary: "a run's shared files and every version of them", run: cmdFiles})
}

const filesHelp = `Reads the version store of a run (RUN_DIR/versions): every committed
version of every shared file, content-addressed, nothing ever lost.

  terrarium files RUN_DIR                      every path, its latest version
  terrarium files RUN_DIR log PATH             every version of PATH, then the contents
                                               kept from violations at PATH (not versions)
  terrarium files RUN_DIR show PATH@VERSION    print a version (@latest, or no @, for the latest)
  terrarium files RUN_DIR show sha256:HASH     print any content the store kept (a violation's,
                                               a pending change's), by its hash or a unique prefix
  terrarium files RUN_DIR checkout [--force] PATH@VERSION DEST
                                               write a version to DEST (a file, or a directory to
                                               put it in); an existing file only with --force

PATH is relative to the shared tree; a leading ./ is fine.
`

func cmdFiles(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("files", "files RUN_DIR [log PATH | show PATH@VERSION | show sha256:HASH | checkout [--force] PATH@VERSION DEST]", filesHelp, stderr)
	force := fs.Bool("force", false, "checkout: overwrite DEST if it exists")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	a := fs.Args()
	if len(a) == 0 {
		fmt.Fprintln(stderr, "terrarium files: give a run directory")
		fs.Usage()
		return exitUsage
	}
	store := filepath.Join(a[0], "versions")
	vs, err := workspace.ReadLog(store)
	if err == nil && vs == nil {
		if _, serr := os.Stat(store); serr != nil {
			err = fmt.Errorf("%s has no version store (%v): is it a run directory?", a[0], serr)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "terrarium files:", err)
		return exitFailed
	}
	byPath := map[string][]workspace.Version{}
	var paths []string
	for _, v := range vs {
		if byPath[v.Path] == nil {
			paths = append(paths, v.Path)
		}
		byPath[v.Path] = append(byPath[v.Path], v)
	}
	find := func(ref string) (workspace.Version, error) {
		p, n, err := workspace.ParseRef(ref)
		if err != nil {
			return workspace.Version{}, err
		}
		p = normPath(p)
		log := byPath[p]
		if len(log) == 0 {
			return workspace.Version{}, fmt.Errorf("no versions of %q (terrarium files %s lists the paths)", p, a[0])
		}
		if n == 0 {
			n = len(log)
		}
		if n > len(log) {
			return workspace.Version{}, fmt.Errorf("%s has versions 1 to %d, not %d", p, len(log), n)
		}
		v := log[n-1]
		if v.Deleted {
			return workspace.Version{}, fmt.Errorf("%s@%d records the file's deletion: it has no content", p, n)
		}
		return v, nil
	}
	sub := ""
	if len(a) > 1 {
		sub = a[1]
	}
	switch {
	case sub == "" && len(a) == 1:
		t := world.Table{Columns: []string{"PATH", "VERSIONS", "LATEST", "SIZE", "BY", "SHA256"}}
		for _, p := range paths {
			v := byPath[p][len(byPath[p])-1]
			size, sum := strconv.FormatInt(v.Size, 10), short(v.SHA256)
			if v.Deleted {
				size, sum = "deleted", ""
			}
			t.Rows = append(t.Rows, []string{p, strconv.Itoa(len(byPath[p])), strconv.Itoa(v.N), size, who(v), sum})
		}
		printTable(stdout, t)
	case sub == "log" && len(a) == 3:
		p := normPath(a[2])
		log := byPath[p]
		if len(log) == 0 {
			fmt.Fprintf(stderr, "terrarium files: no versions of %q\n", p)
			return exitFailed
		}
		t := world.Table{Columns: []string{"VERSION", "TIME", "BY", "TOKEN", "REASON", "SIZE", "SHA256"}}
		for _, v := range log {
			size, sum := strconv.FormatInt(v.Size, 10), v.SHA256
			if v.Deleted {
				size, sum = "deleted", ""
			}
			t.Rows = append(t.Rows, []string{strconv.Itoa(v.N), v.Time.UTC().Format(time.RFC3339Nano), who(v), strconv.FormatUint(v.Token, 10), v.Reason, size, sum})
		}
		printTable(stdout, t)
		if k := keptFromViolations(a[0], p); len(k.Rows) > 0 {
			printTable(stdout, k)
		}
	case sub == "show" && len(a) == 3 && strings.HasPrefix(a[2], "sha256:"):
		sum, err := findBlob(store, strings.TrimPrefix(a[2], "sha256:"))
		if err == nil {
			err = copyBlob(store, workspace.Version{SHA256: sum}, stdout)
		}
		if err != nil {
			fmt.Fprintln(stderr, "terrarium files:", err)
			return exitFailed
		}
	case sub == "show" && len(a) == 3:
		v, err := find(a[2])
		if err == nil {
			err = copyBlob(store, v, stdout)
		}
		if err != nil {
			fmt.Fprintln(stderr, "terrarium files:", err)
			return exitFailed
		}
	case sub == "checkout" && len(a) == 4:
		v, err := find(a[2])
		if err == nil {
			err = checkout(store, v, a[3], *force)
		}
		if err != nil {
			fmt.Fprintln(stderr, "terrarium files:", err)
			return exitFailed
		}
		fmt.Fprintf(stdout, "%s@%d -> %s\n", v.Path, v.N, a[3])
	default:
		fmt.Fprintf(stderr, "terrarium files: unknown or incomplete command %q\n", sub)
		fs.Usage()
		return exitUsage
	}
	return exitOK
}

func who(v workspace.Version) string {
	if v.Agent == "" {
		return "(" + v.Reason + ")"
	}
	return v.Agent
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func copyBlob(store string, v workspace.Version, w io.Writer) error {
	f, err := workspace.OpenBlob(store, v.SHA256)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// checkout writes v to dest (into it, when it is a directory), atomically;
// an existing file only with force.
func checkout(store string, v workspace.Version, dest string, force bool) error {
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		dest = filepath.Join(dest, filepath.Base(v.Path))
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if _, err := os.Lstat(dest); err == nil && !force {
		return fmt.Errorf("%s exists: not overwritten (--force overwrites it)", dest)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".checkout-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := copyBlob(store, v, tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dest)
}

// normPath is a shared-tree path as the version log has it ("./a//b" is
// "a/b"); one that is not a valid path is left as given (nothing matches).
func normPath(p string) string {
	if c, err := workspace.CleanPath(p); err == nil {
		return c
	}
	return p
}

// findBlob resolves a full SHA-256 or a unique prefix (at least 6 hex
// digits) to a blob of the store.
func findBlob(store, prefix string) (string, error) {
	prefix = strings.ToLower(prefix)
	if len(prefix) < 6 || strings.Trim(prefix, "0123456789abcdef") != "" {
		return "", fmt.Errorf("sha256:%s: give the hash in hex, at least 6 digits", prefix)
	}
	if len(prefix) > 64 {
		return "", fmt.Errorf("sha256:%s: too long for a SHA-256", prefix)
	}
	m, _ := filepath.Glob(filepath.Join(store, "blobs", prefix[:2], prefix+"*"))
	switch len(m) {
	case 0:
		return "", fmt.Errorf("sha256:%s: no such content in %s", prefix, store)
	case 1:
		return filepath.Base(m[0]), nil
	}
	return "", fmt.Errorf("sha256:%s: %d contents start so: give more digits", prefix, len(m))
}

// keptFromViolations lists what the run's violations at p kept in the
// store (events.jsonl: a violation's sha256, a restore's replaced_sha256):
// content that is not a version but can be shown by its hash.
func keptFromViolations(run, p string) world.Table {
	t := world.Table{Title: fmt.Sprintf("kept from violations at %s (terrarium files %s show sha256:HASH)", p, run),
		Columns: []string{"TIME", "EVENT", "AGENT", "REASON", "SHA256"}}
	recs, err := events.ReadFile(filepath.Join(run, "events.jsonl"))
	if err != nil {
		return t
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if r.Kind != events.Violation && r.Kind != workspace.EventFileRestored {
			continue
		}
		var d struct {
			Path     string `json:"path"`
			Reason   string `json:"reason"`
			SHA      string `json:"sha256"`
			Replaced string `json:"replaced_sha256"`
		}
		if json.Unmarshal(r.Data, &d) != nil || d.Path != p {
			continue
		}
		sum := d.SHA
		if r.Kind == workspace.EventFileRestored {
			sum = d.Replaced
		}
		if sum == "" || seen[sum] {
			continue
		}
		seen[sum] = true
		agent := string(r.Agent)
		if agent == "" {
			agent = "-"
		}
		t.Rows = append(t.Rows, []string{r.Time.UTC().Format(time.RFC3339Nano), r.Kind, agent, d.Reason, sum})
	}
	return t
}
