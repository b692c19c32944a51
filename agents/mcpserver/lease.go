package mcpserver

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/workspace"
)

// Lease tool names: files of the shared tree (workspace/shared) are
// written only under a lease (docs/workspace.md, docs/llm-agents.md).
const (
	ToolLeaseAcquire = "lease_acquire"
	ToolLeaseCreate  = "lease_create"
	ToolLeaseRenew   = "lease_renew"
	ToolLeaseRelease = "lease_release"
	ToolLeaseCommit  = "lease_commit"
)

// LeaseTools lists the lease tools' names, in the order they are offered.
var LeaseTools = []string{ToolLeaseAcquire, ToolLeaseCreate, ToolLeaseRenew, ToolLeaseRelease, ToolLeaseCommit}

// MaxLeaseWait bounds lease_acquire's wait, so that a tool call cannot
// outlive the client's tool timeout.
const MaxLeaseWait = 15 * time.Second

type acquireIn struct {
	Path   string `json:"path" jsonschema:"the shared file (or with prefix=true the directory), relative to the shared directory; an absolute path inside it is accepted too"`
	Prefix bool   `json:"prefix,omitempty" jsonschema:"lease the directory and everything under it"`
	WaitMS int64  `json:"wait_ms,omitempty" jsonschema:"how long to queue behind the current holder, in milliseconds (at most 15000); 0 fails at once if it is held"`
}

type createIn struct {
	Path string `json:"path" jsonschema:"the new file (or with dir=true directory), relative to the shared directory; an absolute path inside it is accepted too"`
	Dir  bool   `json:"dir,omitempty" jsonschema:"make a directory (leased to you with everything under it)"`
}

type tokenIn struct {
	Token uint64 `json:"token" jsonschema:"the lease's fencing token, as lease_acquire or lease_create returned it"`
}

type commitIn struct {
	Token uint64 `json:"token" jsonschema:"the lease's fencing token"`
	Path  string `json:"path,omitempty" jsonschema:"the file to commit (default: the lease's own file; for a directory lease, every changed file under it)"`
}

// leaseOut is a granted lease as the tools return it.
type leaseOut struct {
	Path    string    `json:"path"`
	File    string    `json:"file" jsonschema:"the absolute path to edit with your file tools"`
	Prefix  bool      `json:"prefix,omitempty"`
	Token   uint64    `json:"token"`
	Expires time.Time `json:"expires" jsonschema:"when the lease ends unless renewed (lease_renew)"`
}

type versionsOut struct {
	Versions []sdk.Version `json:"versions" jsonschema:"the versions recorded (none if nothing changed)"`
}

// relShared makes p relative to the shared tree: a model often names the
// file by the absolute path it edits. Anything else is left to the host,
// which refuses bad paths with its reason.
func (s *Server) relShared(p string) string {
	root := s.a.Shared()
	if root == "" || !filepath.IsAbs(p) {
		return p
	}
	if rel, err := filepath.Rel(root, p); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return filepath.ToSlash(rel)
	}
	return p
}

func (s *Server) leaseOut(l sdk.Lease) leaseOut {
	s.mu.Lock()
	s.leases[l.Token] = l
	s.mu.Unlock()
	return leaseOut{Path: l.Path, File: filepath.Join(s.a.Shared(), filepath.FromSlash(l.Path)), Prefix: l.Prefix, Token: l.Token, Expires: l.Expires}
}

func (s *Server) forget(token uint64) {
	s.mu.Lock()
	delete(s.leases, token)
	s.mu.Unlock()
}

func (s *Server) addLeaseTools() {
	a := s.a
	shared := a.Shared()
	where := fmt.Sprintf(" Paths are relative to the shared directory %s.", shared)
	mcp.AddTool(s.srv, &mcp.Tool{Name: ToolLeaseAcquire, Description: "Take the write lease on a shared file (or with prefix=true a directory): while you hold it only you may change it; anyone else's change is refused or undone. Wait up to wait_ms behind its holder (first come, first served). Returns the lease with its fencing token; edit the file with your file tools, then lease_commit or lease_release." + where},
		func(ctx context.Context, _ *mcp.CallToolRequest, in acquireIn) (*mcp.CallToolResult, leaseOut, error) {
			wait := min(max(time.Duration(in.WaitMS)*time.Millisecond, 0), MaxLeaseWait)
			l, err := a.Acquire(ctx, s.relShared(in.Path), sdk.AcquireOptions{Prefix: in.Prefix, Wait: wait})
			if err != nil {
				return nil, leaseOut{}, err
			}
			return nil, s.leaseOut(l), nil
		})
	mcp.AddTool(s.srv, &mcp.Tool{Name: ToolLeaseCreate, Description: "Create a new, empty shared file (or with dir=true a directory), leased to you. Fails if it exists: then take its lease with lease_acquire." + where},
		func(ctx context.Context, _ *mcp.CallToolRequest, in createIn) (*mcp.CallToolResult, leaseOut, error) {
			l, err := a.Create(ctx, s.relShared(in.Path), in.Dir)
			if err != nil {
				return nil, leaseOut{}, err
			}
			return nil, s.leaseOut(l), nil
		})
	mcp.AddTool(s.srv, &mcp.Tool{Name: ToolLeaseRenew, Description: "Extend a lease you hold by its time to live, from now. A lease not renewed before it expires is taken back and its uncommitted changes undone."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in tokenIn) (*mcp.CallToolResult, leaseOut, error) {
			l, err := a.Renew(ctx, in.Token)
			if err != nil {
				return nil, leaseOut{}, err
			}
			return nil, s.leaseOut(l), nil
		})
	mcp.AddTool(s.srv, &mcp.Tool{Name: ToolLeaseRelease, Description: "Give a lease up so others can edit: what you changed under it is committed first (recorded as new versions)."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in tokenIn) (*mcp.CallToolResult, versionsOut, error) {
			v, err := a.Release(ctx, in.Token)
			if err != nil {
				return nil, versionsOut{}, err
			}
			s.forget(in.Token)
			return nil, versionsOut{Versions: nonNil(v)}, nil
		})
	mcp.AddTool(s.srv, &mcp.Tool{Name: ToolLeaseCommit, Description: "Record a shared file you hold as a new version, with its content as it is now (the server hashes it, so a later change by anyone else is caught). You keep the lease; release it when done." + where},
		func(ctx context.Context, _ *mcp.CallToolRequest, in commitIn) (*mcp.CallToolResult, versionsOut, error) {
			path := s.relShared(in.Path)
			file := path
			if file == "" {
				s.mu.Lock()
				l, ok := s.leases[in.Token]
				s.mu.Unlock()
				if ok && !l.Prefix {
					file = l.Path
				}
			}
			sum := ""
			if file != "" {
				if _, err := workspace.CleanPath(file); err != nil {
					return nil, versionsOut{}, fmt.Errorf("lease_commit: %w", err)
				}
				h, err := sdk.HashFile(filepath.Join(shared, filepath.FromSlash(file)))
				if err != nil {
					return nil, versionsOut{}, fmt.Errorf("lease_commit: read the shared file %s: %w", file, err)
				}
				sum = h
			}
			v, err := a.Commit(ctx, in.Token, path, sum)
			if err != nil {
				return nil, versionsOut{}, err
			}
			return nil, versionsOut{Versions: nonNil(v)}, nil
		})
}

func nonNil(v []sdk.Version) []sdk.Version {
	if v == nil {
		return []sdk.Version{}
	}
	return v
}
