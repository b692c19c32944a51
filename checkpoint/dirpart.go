package checkpoint

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// DirPart is a Part that copies a directory tree (the agents' workspaces):
// regular files with their modes, directories and symlinks (as links).
type DirPart struct {
	PartName string
	Path     string
}

// Name implements Part.
func (p DirPart) Name() string { return p.PartName }

// Save implements Part: it copies Path into dir.
func (p DirPart) Save(dir string) error { return CopyTree(p.Path, dir) }

// Restore implements Part: the tree at Path is moved aside to
// Path.superseded-N (nothing is lost), then dir is copied to Path.
func (p DirPart) Restore(dir string) error {
	if _, err := os.Lstat(p.Path); err == nil {
		for n := 1; ; n++ {
			aside := p.Path + ".superseded-" + strconv.Itoa(n)
			if _, err := os.Lstat(aside); os.IsNotExist(err) {
				if err := os.Rename(p.Path, aside); err != nil {
					return fmt.Errorf("move %s aside: %w", p.Path, err)
				}
				break
			}
		}
	}
	if err := os.MkdirAll(p.Path, 0o755); err != nil {
		return err
	}
	return CopyTree(dir, p.Path)
}

// CopyTree copies the tree under src into dst (which must exist).
func CopyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == src {
				return nil // nothing to copy
			}
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(to, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(t, to)
		case d.Type().IsRegular():
			return copyFile(p, to, info.Mode().Perm())
		}
		return nil // sockets, fifos, devices: not part of a workspace's state
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
