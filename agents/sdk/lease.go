package sdk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/workspace"
)

// Lease is a granted lease: its path (relative to the shared tree), whether
// it is a directory prefix, its fencing token and when it expires unless
// renewed.
type Lease = workspace.LeaseInfo

// Version is a recorded version of a shared file.
type Version = workspace.VersionInfo

// The errors lease operations wrap, for errors.Is.
var (
	ErrLeaseHeld    = workspace.ErrLeaseHeld    // held by another agent (or waited in vain)
	ErrStaleToken   = workspace.ErrStaleToken   // the lease expired, was released or revoked
	ErrBadPath      = workspace.ErrBadPath      // "..", absolute, a symlink, missing, wrong kind
	ErrExists       = workspace.ErrExists       // Create of a path that exists
	ErrHashMismatch = workspace.ErrHashMismatch // Commit's hash is not the file's content
)

// LeaseError is a refused lease operation: Code is the protocol's error
// code, Reason the host's explanation. It unwraps to the sentinel of Code.
type LeaseError struct {
	Op, Code, Reason string
}

func (e *LeaseError) Error() string {
	return fmt.Sprintf("lease %s refused (%s): %s", e.Op, e.Code, e.Reason)
}

// Unwrap returns the sentinel error of the code.
func (e *LeaseError) Unwrap() error { return workspace.CodeError(e.Code) }

// AcquireOptions shape Acquire.
type AcquireOptions struct {
	// Prefix asks for a directory and everything under it.
	Prefix bool
	// Wait is how long the host may queue the request behind a holder
	// (first come, first served); 0 fails at once with ErrLeaseHeld.
	Wait time.Duration
}

// leaseTimeout bounds a lease request beyond its wait, when ctx has no deadline.
const leaseTimeout = 10 * time.Second

// Shared is the shared tree's directory (EnvShared); lease paths are
// relative to it.
func (a *Agent) Shared() string { return a.shared }

// Acquire asks for the lease on path (a file, or with o.Prefix a directory
// and everything under it), waiting up to o.Wait for its holder.
func (a *Agent) Acquire(ctx context.Context, path string, o AcquireOptions) (Lease, error) {
	rep, err := a.lease(ctx, workspace.Request{Op: workspace.OpAcquire, Path: path, Prefix: o.Prefix, WaitMS: o.Wait.Milliseconds()}, o.Wait)
	if err != nil {
		return Lease{}, err
	}
	return *rep.Lease, nil
}

// Create makes a new empty file (dir false) or directory at path, already
// leased to this agent (a directory as a prefix lease).
func (a *Agent) Create(ctx context.Context, path string, dir bool) (Lease, error) {
	rep, err := a.lease(ctx, workspace.Request{Op: workspace.OpCreate, Path: path, Prefix: dir}, 0)
	if err != nil {
		return Lease{}, err
	}
	return *rep.Lease, nil
}

// Renew extends the lease by its TTL from now.
func (a *Agent) Renew(ctx context.Context, token uint64) (Lease, error) {
	rep, err := a.lease(ctx, workspace.Request{Op: workspace.OpRenew, Token: token}, 0)
	if err != nil {
		return Lease{}, err
	}
	return *rep.Lease, nil
}

// Release commits what changed under the lease (a release is an implicit
// commit) and gives the lease up. It returns the versions recorded.
func (a *Agent) Release(ctx context.Context, token uint64) ([]Version, error) {
	rep, err := a.lease(ctx, workspace.Request{Op: workspace.OpRelease, Token: token}, 0)
	if err != nil {
		return nil, err
	}
	return rep.Versions, nil
}

// Commit declares the content of path final under the lease token: it
// becomes a new version. path "" is the lease's own path; for a prefix
// lease, a file under it, or "" (with sha256 "") for every changed file.
// sha256 is the content's hex SHA-256 as the agent wrote it (HashFile):
// the host refuses the commit with ErrHashMismatch if the file holds
// anything else.
func (a *Agent) Commit(ctx context.Context, token uint64, path, sha256 string) ([]Version, error) {
	rep, err := a.lease(ctx, workspace.Request{Op: workspace.OpCommit, Token: token, Path: path, SHA256: sha256}, 0)
	if err != nil {
		return nil, err
	}
	return rep.Versions, nil
}

// HashFile returns the hex SHA-256 of a file's content, as Commit wants it.
func HashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// HashBytes returns the hex SHA-256 of b: commit the hash of what you
// wrote, so that a write by anyone else in between is caught.
func HashBytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// lease sends one lease request and decodes the reply.
func (a *Agent) lease(ctx context.Context, req workspace.Request, wait time.Duration) (workspace.Reply, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return workspace.Reply{}, fmt.Errorf("lease %s: %w", req.Op, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait+leaseTimeout)
		defer cancel()
	}
	a.pubMu.Lock()
	msg, err := a.encode(bus.KindLease, 0, data)
	a.pubMu.Unlock()
	if err != nil {
		return workspace.Reply{}, err
	}
	m, err := a.nc.RequestWithContext(ctx, bus.AgentSubject(a.run, a.id, bus.KindLease), msg)
	if err != nil {
		return workspace.Reply{}, fmt.Errorf("agent %s: lease %s %s: %w", a.id, req.Op, req.Path, err)
	}
	env, err := bus.Decode(m.Data, a.run)
	if err != nil {
		return workspace.Reply{}, fmt.Errorf("lease %s reply: %w", req.Op, err)
	}
	var rep workspace.Reply
	if err := json.Unmarshal(env.Data, &rep); err != nil {
		return workspace.Reply{}, fmt.Errorf("lease %s reply: %w", req.Op, err)
	}
	if !rep.OK {
		return rep, &LeaseError{Op: req.Op, Code: rep.Error, Reason: rep.Reason}
	}
	if (req.Op == workspace.OpAcquire || req.Op == workspace.OpCreate || req.Op == workspace.OpRenew) && rep.Lease == nil {
		return rep, fmt.Errorf("lease %s reply: no lease", req.Op)
	}
	return rep, nil
}
