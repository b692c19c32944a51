package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/terrarium-sim/terrarium/workspace"
	"github.com/terrarium-sim/terrarium/world"
)

func init() {
	register(command{name: "files", order: 45, usage: "files RUN_DIR [log PATH | show PATH@V | checkout PATH@V DEST]", summary: "a run's shared files and every version of them", run: cmdFiles})
}

const filesHelp = `Reads the version store of a run (RUN_DIR/versions): every committed
version of every shared file, content-addressed, nothing ever lost.

  terrarium files RUN_DIR                      every path, its latest version
  terrarium files RUN_DIR log PATH             every version of PATH
  terrarium files RUN_DIR show PATH@VERSION    print a version (@latest, or no @, for the latest)
  terrarium files RUN_DIR checkout PATH@VERSION DEST
                                               write a version to DEST (a file, or a directory to put it in)
`

func cmdFiles(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("files", "files RUN_DIR [log PATH | show PATH@VERSION | checkout PATH@VERSION DEST]", filesHelp, stderr)
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
		log := byPath[a[2]]
		if len(log) == 0 {
			fmt.Fprintf(stderr, "terrarium files: no versions of %q\n", a[2])
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
			err = checkout(store, v, a[3])
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

// checkout writes v to dest (into it, when it is a directory), atomically.
func checkout(store string, v workspace.Version, dest string) error {
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		dest = filepath.Join(dest, filepath.Base(v.Path))
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
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
