package workspace

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// tree is the host's handle on the shared tree. Every operation is relative
// to a descriptor of the tree's root and walks the path one element at a
// time with O_NOFOLLOW: a symlink anywhere in a path is refused
// (errSymlink), never followed, so an agent that plants links cannot make
// the host (root) read, chown or overwrite anything outside the tree.
type tree struct {
	dir string // absolute path, for the watcher and messages
	fd  int    // O_PATH|O_DIRECTORY descriptor of dir
}

// errSymlink is returned when a path element is a symlink.
var errSymlink = errors.New("a symlink")

func openTree(dir string) (*tree, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("open shared tree %s: %w", dir, err)
	}
	return &tree{dir: dir, fd: fd}, nil
}

func (t *tree) close() error { return unix.Close(t.fd) }

// parent opens the directory holding rel (a cleaned path) and returns its
// descriptor and rel's last element. The caller releases the descriptor
// with closeParent.
func (t *tree) parent(rel string) (int, string, error) {
	els := strings.Split(rel, "/")
	fd := t.fd
	for _, el := range els[:len(els)-1] {
		nfd, err := unix.Openat(fd, el, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			var st unix.Stat_t
			link := unix.Fstatat(fd, el, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
			t.closeParent(fd)
			if link {
				return -1, "", fmt.Errorf("%s: %s is %w", rel, el, errSymlink)
			}
			return -1, "", fmt.Errorf("%s: %w", rel, err)
		}
		t.closeParent(fd)
		fd = nfd
	}
	return fd, els[len(els)-1], nil
}

func (t *tree) closeParent(fd int) {
	if fd != t.fd && fd >= 0 {
		unix.Close(fd)
	}
}

// entry is what lstat says of one path.
type entry struct {
	exists bool
	mode   uint32 // S_IFMT bits and permissions
	uid    uint32
	gid    uint32
	ino    uint64
	nlink  uint64
	size   int64
	mtime  int64 // ns
}

func (e entry) isDir() bool  { return e.mode&unix.S_IFMT == unix.S_IFDIR }
func (e entry) isReg() bool  { return e.mode&unix.S_IFMT == unix.S_IFREG }
func (e entry) isLink() bool { return e.mode&unix.S_IFMT == unix.S_IFLNK }

// kind names a non-regular, non-directory entry for violations.
func (e entry) kind() string {
	switch e.mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "device"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFREG:
		return "file"
	}
	return "unknown"
}

func entryOf(st *unix.Stat_t) entry {
	return entry{exists: true, mode: st.Mode, uid: st.Uid, gid: st.Gid, ino: st.Ino, nlink: uint64(st.Nlink), size: st.Size, mtime: st.Mtim.Nano()}
}

// lstat describes rel without following a final symlink. A missing path
// is entry{exists: false} and no error.
func (t *tree) lstat(rel string) (entry, error) {
	dfd, name, err := t.parent(rel)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return entry{}, nil
		}
		return entry{}, err
	}
	defer t.closeParent(dfd)
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return entry{}, nil
		}
		return entry{}, fmt.Errorf("%s: %w", rel, err)
	}
	return entryOf(&st), nil
}

// readlink returns a symlink's target (for violation reports).
func (t *tree) readlink(rel string) string {
	dfd, name, err := t.parent(rel)
	if err != nil {
		return ""
	}
	defer t.closeParent(dfd)
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(dfd, name, buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// open opens rel for reading (a regular file or a directory), never
// following a link and never blocking on a FIFO.
func (t *tree) open(rel string) (*os.File, entry, error) {
	dfd, name, err := t.parent(rel)
	if err != nil {
		return nil, entry{}, err
	}
	defer t.closeParent(dfd)
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, entry{}, fmt.Errorf("%s is %w", rel, errSymlink)
		}
		return nil, entry{}, fmt.Errorf("open %s: %w", rel, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, entry{}, fmt.Errorf("stat %s: %w", rel, err)
	}
	e := entryOf(&st)
	if !e.isReg() && !e.isDir() {
		unix.Close(fd)
		return nil, e, fmt.Errorf("%s is a %s", rel, e.kind())
	}
	return os.NewFile(uintptr(fd), t.dir+"/"+rel), e, nil
}

// chown sets owner, group and mode of rel (a file or directory) through a
// descriptor opened without following links.
func (t *tree) chown(rel string, uid, gid int, mode uint32) error {
	f, _, err := t.open(rel)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fchown(int(f.Fd()), uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", rel, err)
	}
	if err := unix.Fchmod(int(f.Fd()), mode); err != nil {
		return fmt.Errorf("chmod %s: %w", rel, err)
	}
	return nil
}

// remove unlinks rel (not a directory tree: an empty directory or any
// non-directory).
func (t *tree) remove(rel string, dir bool) error {
	dfd, name, err := t.parent(rel)
	if err != nil {
		return err
	}
	defer t.closeParent(dfd)
	flags := 0
	if dir {
		flags = unix.AT_REMOVEDIR
	}
	if err := unix.Unlinkat(dfd, name, flags); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s: %w", rel, err)
	}
	return nil
}

// removeAll removes rel and everything under it, without following links.
func (t *tree) removeAll(rel string) error {
	e, err := t.lstat(rel)
	if err != nil || !e.exists {
		return err
	}
	if e.isDir() {
		names, err := t.list(rel)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := t.removeAll(rel + "/" + n); err != nil {
				return err
			}
		}
	}
	return t.remove(rel, e.isDir())
}

// list returns the names in directory rel ("" for the root).
func (t *tree) list(rel string) ([]string, error) {
	var f *os.File
	if rel == "" {
		fd, err := unix.Openat(t.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("list shared tree: %w", err)
		}
		f = os.NewFile(uintptr(fd), t.dir)
	} else {
		var e entry
		var err error
		f, e, err = t.open(rel)
		if err != nil {
			return nil, err
		}
		if !e.isDir() {
			f.Close()
			return nil, fmt.Errorf("%s is not a directory", rel)
		}
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// mkdir makes directory rel with mode, owned by uid:gid.
func (t *tree) mkdir(rel string, uid, gid int, mode uint32) error {
	dfd, name, err := t.parent(rel)
	if err != nil {
		return err
	}
	defer t.closeParent(dfd)
	if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
		return fmt.Errorf("mkdir %s: %w", rel, err)
	}
	return t.chown(rel, uid, gid, mode)
}

// write replaces rel with the content of r atomically: a new file in the
// same directory, renamed over rel (rename replaces whatever rel is, a link
// included, without following it). It returns the new file as it was
// before the rename, so a change made right after it is not mistaken for
// the host's own.
func (t *tree) write(rel string, r io.Reader, uid, gid int, mode uint32) (entry, error) {
	var written entry
	err := t.writeTo(rel, r, uid, gid, mode, &written)
	return written, err
}

func (t *tree) writeTo(rel string, r io.Reader, uid, gid int, mode uint32, written *entry) error {
	dfd, name, err := t.parent(rel)
	if err != nil {
		return err
	}
	defer t.closeParent(dfd)
	tmp := fmt.Sprintf(".terrarium-restore-%d.tmp", os.Getpid())
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, unix.EEXIST) {
		_ = unix.Unlinkat(dfd, tmp, 0)
		fd, err = unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, err = io.Copy(f, r)
	if err == nil {
		err = unix.Fchown(fd, uid, gid)
	}
	if err == nil {
		err = unix.Fchmod(fd, mode)
	}
	if err == nil {
		var st unix.Stat_t
		if err = unix.Fstat(fd, &st); err == nil {
			*written = entryOf(&st)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// A directory in the way (planted where a file was) goes first.
		var st unix.Stat_t
		if unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = t.removeAll(rel)
		}
	}
	if err == nil {
		err = unix.Renameat(dfd, tmp, dfd, name)
	}
	if err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return fmt.Errorf("write %s: %w", rel, err)
	}
	return nil
}
