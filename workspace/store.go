package workspace

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Version is one recorded version of a shared file.
type Version struct {
	Path    string    `json:"path"`
	N       int       `json:"version"` // 1, 2, ... per path
	SHA256  string    `json:"sha256"`  // of the content; "" when Deleted
	Size    int64     `json:"size"`
	Deleted bool      `json:"deleted,omitempty"`
	Agent   string    `json:"agent,omitempty"` // who committed it ("" for the seed)
	Token   uint64    `json:"token,omitempty"` // the lease it was committed under
	Reason  string    `json:"reason"`          // seed, commit, release, create
	Time    time.Time `json:"time"`
}

// Store is the content-addressed version store of a run: blobs/<aa>/<sha256>
// holds every content ever recorded (committed versions and the uncommitted
// or violating contents the host replaced), log.jsonl one line per version.
// It lives in the run directory, outside the tree agents can reach.
// Blobs are written to a temporary file and renamed into place; a log line
// is written with one write call and synced, and a partial last line (a
// crash mid-write) is ignored when the log is read. Safe for concurrent use.
type Store struct {
	dir string

	mu     sync.Mutex
	log    *os.File
	byPath map[string][]Version
}

// OpenStore opens (or creates) the store in dir and reads its log.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs"), 0o700); err != nil {
		return nil, fmt.Errorf("version store: %w", err)
	}
	s := &Store{dir: dir, byPath: map[string][]Version{}}
	vs, err := ReadLog(dir)
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		s.byPath[v.Path] = append(s.byPath[v.Path], v)
	}
	f, err := os.OpenFile(filepath.Join(dir, "log.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("version store: %w", err)
	}
	s.log = f
	return s, nil
}

// ReadLog reads a store's log without opening it for writing (terrarium
// files). A partial last line is ignored.
func ReadLog(dir string) ([]Version, error) {
	b, err := os.ReadFile(filepath.Join(dir, "log.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("version log: %w", err)
	}
	var out []Version
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		var v Version
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			if !bytes.HasSuffix(b, []byte("\n")) && line == bytes.Count(b, []byte("\n"))+1 {
				break // a partial last line
			}
			return nil, fmt.Errorf("version log line %d: %w", line, err)
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

// Close closes the log.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return nil
	}
	err := s.log.Close()
	s.log = nil
	return err
}

// blobPath is where content with that hash is kept.
func blobPath(dir, sum string) string {
	return filepath.Join(dir, "blobs", sum[:2], sum)
}

// Put stores content read from r and returns its hash and size. The blob
// is not synced to disk here: Add makes a version's blob durable before
// the version is logged.
func (s *Store) Put(r io.Reader) (string, int64, error) {
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "blobs"), ".put-*")
	if err != nil {
		return "", 0, fmt.Errorf("store blob: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, fmt.Errorf("store blob: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	dst := blobPath(s.dir, sum)
	if _, err := os.Stat(dst); err == nil {
		return sum, n, nil // the same content is there already
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", 0, fmt.Errorf("store blob: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", 0, fmt.Errorf("store blob: %w", err)
	}
	return sum, n, nil
}

// Has reports whether content with that hash is stored.
func (s *Store) Has(sum string) bool {
	if !validSum(sum) {
		return false
	}
	_, err := os.Stat(blobPath(s.dir, sum))
	return err == nil
}

// Open opens the stored content with that hash.
func (s *Store) Open(sum string) (*os.File, error) { return OpenBlob(s.dir, sum) }

// OpenBlob opens the content with that hash in the store at dir.
func OpenBlob(dir, sum string) (*os.File, error) {
	if !validSum(sum) {
		return nil, fmt.Errorf("blob %q: not a sha256", sum)
	}
	f, err := os.Open(blobPath(dir, sum))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", sum, err)
	}
	return f, nil
}

func validSum(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// Add records a new version of v.Path (its content already Put) and
// returns it numbered.
func (s *Store) Add(v Version) (Version, error) {
	vs, err := s.AddAll([]Version{v})
	if err != nil {
		return Version{}, err
	}
	return vs[0], nil
}

// AddAll records several versions at once: their blobs are made durable
// (one syncfs for many, an fsync for one), then their log lines are
// written and the log synced once.
func (s *Store) AddAll(in []Version) ([]Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return nil, ErrClosed
	}
	if err := s.syncBlobs(in); err != nil {
		return nil, err
	}
	out := make([]Version, len(in))
	var buf []byte
	next := map[string]int{}
	for i, v := range in {
		n, ok := next[v.Path]
		if !ok {
			n = len(s.byPath[v.Path])
		}
		v.N = n + 1
		next[v.Path] = v.N
		if v.Time.IsZero() {
			v.Time = time.Now().UTC()
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("version of %s: %w", v.Path, err)
		}
		buf = append(append(buf, b...), '\n')
		out[i] = v
	}
	if _, err := s.log.Write(buf); err != nil {
		return nil, fmt.Errorf("version log: %w", err)
	}
	if err := s.log.Sync(); err != nil {
		return nil, fmt.Errorf("version log: %w", err)
	}
	for _, v := range out {
		s.byPath[v.Path] = append(s.byPath[v.Path], v)
	}
	return out, nil
}

// syncBlobs makes the versions' blobs durable.
func (s *Store) syncBlobs(vs []Version) error {
	var sums []string
	for _, v := range vs {
		if !v.Deleted && v.SHA256 != "" {
			sums = append(sums, v.SHA256)
		}
	}
	if len(sums) > 4 {
		if err := unix.Syncfs(int(s.log.Fd())); err != nil {
			return fmt.Errorf("sync blobs: %w", err)
		}
		return nil
	}
	for _, sum := range sums {
		f, err := os.Open(blobPath(s.dir, sum))
		if err != nil {
			return fmt.Errorf("sync blob: %w", err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("sync blob: %w", err)
		}
	}
	if len(sums) > 0 {
		if d, err := os.Open(filepath.Join(s.dir, "blobs")); err == nil {
			_ = d.Sync()
			d.Close()
		}
	}
	return nil
}

// Latest is the newest version of p.
func (s *Store) Latest(p string) (Version, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.byPath[p]
	if len(vs) == 0 {
		return Version{}, false
	}
	return vs[len(vs)-1], true
}

// Log lists p's versions, oldest first.
func (s *Store) Log(p string) []Version {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Version(nil), s.byPath[p]...)
}

// Paths lists every path with a version, sorted.
func (s *Store) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.byPath))
	for p := range s.byPath {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// ParseRef splits "PATH@VERSION" (VERSION a number, or "latest"; no "@"
// means latest) for terrarium files.
func ParseRef(ref string) (path string, n int, err error) {
	i := strings.LastIndexByte(ref, '@')
	if i < 0 {
		return ref, 0, nil
	}
	path, ver := ref[:i], ref[i+1:]
	if ver == "latest" || ver == "" {
		return path, 0, nil
	}
	n, err = strconv.Atoi(ver)
	if err != nil || n < 1 {
		return "", 0, fmt.Errorf("%q: the version after @ is a number from 1 (see terrarium files RUN_DIR log PATH)", ref)
	}
	return path, n, nil
}
