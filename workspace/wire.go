package workspace

import (
	"errors"
	"time"
)

// The lease protocol's messages (docs/protocol.md, "Leases"): an agent sends
// a Request as the data of a "lease" envelope on its own subject
// sim.<run>.agent.<id>.lease, as a request; the host answers with a Reply.
// Identity is the subject: the host never trusts an agent id in the data.

// Lease operations (Request.Op).
const (
	OpAcquire = "acquire"
	OpRenew   = "renew"
	OpRelease = "release"
	OpCreate  = "create"
	OpCommit  = "commit"
)

// Request is one lease operation.
type Request struct {
	Op     string `json:"op"`
	Path   string `json:"path,omitempty"`    // acquire, create; commit (optional: a file under a prefix)
	Prefix bool   `json:"prefix,omitempty"`  // acquire: a directory and everything under it; create: make a directory
	WaitMS int64  `json:"wait_ms,omitempty"` // acquire: how long to wait for a held lease (0: fail fast)
	Token  uint64 `json:"token,omitempty"`   // renew, release, commit
	SHA256 string `json:"sha256,omitempty"`  // commit: the content's hash (hex)
}

// LeaseInfo is a lease on the wire.
type LeaseInfo struct {
	Path    string    `json:"path"`
	Prefix  bool      `json:"prefix"`
	Token   uint64    `json:"token"`
	Expires time.Time `json:"expires"`
}

// VersionInfo is a recorded version on the wire.
type VersionInfo struct {
	Path    string `json:"path"`
	Version int    `json:"version"`
	SHA256  string `json:"sha256,omitempty"`
	Deleted bool   `json:"deleted,omitempty"`
}

// Reply answers a Request. OK false carries Error (a code) and Reason.
type Reply struct {
	OK       bool          `json:"ok"`
	Lease    *LeaseInfo    `json:"lease,omitempty"`
	Versions []VersionInfo `json:"versions,omitempty"`
	Error    string        `json:"error,omitempty"`
	Reason   string        `json:"reason,omitempty"`
}

// Error codes (Reply.Error).
const (
	CodeHeld         = "held"
	CodeStaleToken   = "stale_token"
	CodeBadPath      = "bad_path"
	CodeExists       = "exists"
	CodeHashMismatch = "hash_mismatch"
	CodeClosed       = "closed"
	CodeBadRequest   = "bad_request"
	CodeBusy         = "busy"
	CodeUndone       = "undone"
)

// ErrBadRequest: a malformed lease request; ErrBusy: too many of an
// agent's requests are in flight.
var (
	ErrBadRequest = errors.New("bad lease request")
	ErrBusy       = errors.New("too many lease requests in flight")
)

var codes = []struct {
	code string
	err  error
}{
	{CodeHeld, ErrLeaseHeld}, {CodeStaleToken, ErrStaleToken}, {CodeBadPath, ErrBadPath},
	{CodeExists, ErrExists}, {CodeHashMismatch, ErrHashMismatch}, {CodeClosed, ErrClosed},
	{CodeBadRequest, ErrBadRequest}, {CodeBusy, ErrBusy}, {CodeUndone, ErrUndone},
}

// Code is the wire code of an error from the workspace ("" if none fits).
func Code(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}

// CodeError is the sentinel for a wire code (nil if unknown).
func CodeError(code string) error {
	for _, c := range codes {
		if c.code == code {
			return c.err
		}
	}
	return nil
}

// Info puts a lease on the wire.
func (l Lease) Info() *LeaseInfo {
	return &LeaseInfo{Path: l.Path, Prefix: l.Prefix, Token: l.Token, Expires: l.Expires.UTC()}
}

// Infos puts versions on the wire.
func Infos(vs []Version) []VersionInfo {
	out := make([]VersionInfo, 0, len(vs))
	for _, v := range vs {
		out = append(out, VersionInfo{Path: v.Path, Version: v.N, SHA256: v.SHA256, Deleted: v.Deleted})
	}
	return out
}
