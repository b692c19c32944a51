package terrarium

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/workspace"
	"github.com/terrarium-sim/terrarium/world"
)

// WorkspaceResult is the shared tree's part of result.json.
type WorkspaceResult struct {
	workspace.Stats
	// Private says how agents' private directories are kept from each
	// other: "users" (own UIDs), "landlock" or "unprotected: <why>".
	Private string `json:"private"`
	// EditsCommitted counts the versions agents committed (seed versions
	// not included).
	EditsCommitted int `json:"edits_committed"`
}

// maxLeaseWait caps an acquire's wait.
const maxLeaseWait = 10 * time.Minute

// maxLeaseInflight is how many lease requests of one agent may be served
// at once (waiting acquires included); more are refused as busy.
const maxLeaseInflight = 32

// wsHost is the host's side of the workspace: the lease requests it serves.
type wsHost struct {
	ws       *workspace.Workspace
	cancel   context.CancelFunc // stops ws.Run
	done     chan struct{}      // ws.Run returned
	reqCtx   context.Context    // cancelled when the run ends: waiting acquires give up
	reqStop  context.CancelFunc
	reqs     sync.WaitGroup
	mu       sync.Mutex // guards closing and orders reqs.Add before reqs.Wait
	closing  bool
	inflight map[world.AgentID]*atomic.Int32
	private  string
	seed     int // seed versions, not counted as edits
}

// enforcement decides the scenario's enforcement mode for this run.
func (r *run) enforcement() (string, error) {
	switch mode := r.h.sc.Workspace.Enforcement; mode {
	case scenarios.EnforcementPermissions:
		if !r.iso.on {
			return "", fmt.Errorf(`workspace enforcement = "permissions" needs agents running as their own users (%s); use "detect" or "auto"`, r.iso.String())
		}
		return workspace.Permissions, nil
	case scenarios.EnforcementDetect:
		return workspace.Detect, nil
	default:
		if r.iso.on {
			return workspace.Permissions, nil
		}
		return workspace.Detect, nil
	}
}

// startWorkspace opens the shared tree and starts its watcher and lessor.
func (r *run) startWorkspace() error {
	mode, err := r.enforcement()
	if err != nil {
		return err
	}
	versions := filepath.Join(r.dir, "versions")
	if err := os.MkdirAll(versions, 0o700); err != nil {
		return fmt.Errorf("version store: %w", err)
	}
	if err := os.Chmod(versions, 0o700); err != nil {
		return fmt.Errorf("version store: %w", err)
	}
	index := make(map[string]int, len(r.seats))
	for i, s := range r.seats {
		index[string(s.ID)] = i
	}
	wcfg := r.h.sc.Workspace
	ws, err := workspace.New(workspace.Config{
		Shared: filepath.Join(r.dir, "workspace", "shared"), Versions: versions,
		Enforcement: mode, Seed: wcfg.Seed, TTL: wcfg.LeaseTTL, LockDelay: wcfg.LockDelay,
		GroupOf: func(agent string) (int, bool) {
			i, ok := index[agent]
			if !ok || !r.iso.on {
				return 0, false
			}
			return int(r.iso.uid(i)), true
		},
		AgentOfUID: func(uid uint32) string {
			if !r.iso.on || uid < r.iso.block.base || int(uid-r.iso.block.base) >= len(r.seats) {
				return ""
			}
			return string(r.seats[uid-r.iso.block.base].ID)
		},
		AgentOfPID: r.pids.agentOf,
		Emit: func(kind, agent string, data map[string]any) {
			r.events.Emit(kind, r.tick(), world.AgentID(agent), data)
		},
		Logger: r.log,
	})
	if err != nil {
		return err
	}
	if err := r.restoreShared(ws); err != nil {
		ws.Close()
		return err
	}
	h := &wsHost{ws: ws, done: make(chan struct{}), inflight: map[world.AgentID]*atomic.Int32{}}
	for _, s := range r.seats {
		h.inflight[s.ID] = &atomic.Int32{}
	}
	h.seed = ws.Stats().Versions
	switch {
	case r.iso.on:
		h.private = "users"
	case r.landlock != "":
		h.private = "landlock"
	default:
		h.private = "unprotected: agents share the host's user and Landlock is not applied, so an agent can read another's private directory"
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.reqCtx, h.reqStop = context.WithCancel(context.Background())
	go func() {
		defer close(h.done)
		if err := ws.Run(ctx); err != nil {
			r.log.Error("workspace", "error", err)
		}
	}()
	r.wsh = h
	r.logEnforcement(mode, h.private)
	return nil
}

// logEnforcement says which enforcement mode the run uses (run.started
// and result.json say it too). When the scenario left it to "auto" and
// auto fell back to detect, that is a warning, so that it shows at the
// default log level: a user who expected agents to be kept from writing
// learns they are only caught afterwards.
func (r *run) logEnforcement(mode, private string) {
	var what string
	switch mode {
	case workspace.Permissions:
		what = "permissions (agents as their own users: a write without a lease fails with EACCES)"
	default:
		what = fmt.Sprintf("detect (agents share the host's user: %s; a write without a lease is undone after the fact, not prevented)", r.iso.String())
	}
	if r.h.sc.Workspace.Enforcement == scenarios.EnforcementPermissions || r.h.sc.Workspace.Enforcement == scenarios.EnforcementDetect {
		r.log.Info("workspace: enforcement "+what, "private", private)
		return
	}
	// The strongest mode is what a user expects: said at info level (and
	// in run.started and result.json); the weaker one is a warning.
	if mode == workspace.Permissions {
		r.log.Info("workspace: enforcement auto picked "+what, "private", private)
		return
	}
	r.log.Warn("workspace: enforcement auto picked "+what, "private", private)
}

// confine routes agent a through the Landlock trampoline (detect mode,
// where agents share the host's user, on a kernel with Landlock): it may
// then reach only its own directory, the shared tree and the rest of the
// system, not another agent's directory or the host's files.
func (r *run) confine(a *agentRun) error {
	if r.iso.on {
		return nil
	}
	if mode, err := r.enforcement(); err != nil || mode != workspace.Detect || workspace.LandlockABI() == 0 {
		return nil
	}
	if r.trampoline == "-" {
		return nil // probed: the binary cannot confine
	}
	if r.trampoline == "" && a.spec.Runtime == scenarios.RuntimeBuiltin {
		r.trampoline = a.path // the builtin runtime's copy of the binary
	}
	if r.trampoline == "" {
		p, err := r.copyExecutable()
		if err != nil {
			return err
		}
		r.trampoline = p
	}
	if !r.probed {
		r.probed = true
		if !workspace.ProbeTrampoline(r.trampoline) {
			r.log.Warn("agents are not confined by Landlock: the binary does not call builtin.Main first in main", "binary", r.trampoline)
			r.trampoline = "-"
			return nil
		}
	}
	ws := filepath.Join(r.dir, "workspace", "agents", string(a.seat.ID))
	c, err := workspace.RulesFor(r.dir, ws, filepath.Join(r.dir, "workspace", "shared"))
	if err != nil {
		return err
	}
	c.Exec = a.path
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	a.env = append(a.env, workspace.EnvConfine+"="+string(b))
	a.path = r.trampoline
	r.landlock = "landlock"
	return nil
}

// onLease serves one lease request on its own goroutine (an acquire may
// wait) and answers on the request's reply subject.
func (r *run) onLease(id world.AgentID, m *nats.Msg) {
	h := r.wsh
	reply := func(rep workspace.Reply) {
		if m.Reply == "" {
			return
		}
		data, _ := json.Marshal(rep)
		b, err := bus.Encode(bus.Envelope{Kind: bus.KindLease, Run: r.res.Run, Agent: string(id), Tick: uint64(r.tick()), Seq: r.seq.Add(1), Data: data})
		if err == nil {
			_ = m.Respond(b)
		}
	}
	fail := func(err error) {
		reply(workspace.Reply{Error: workspace.Code(err), Reason: err.Error()})
	}
	env, err := bus.Decode(m.Data, r.res.Run)
	if err != nil {
		r.events.Emit(events.BadMessage, r.tick(), id, map[string]any{"subject": m.Subject, "reason": err.Error()})
		fail(fmt.Errorf("%w: %v", workspace.ErrBadRequest, err))
		return
	}
	if h == nil {
		fail(workspace.ErrClosed)
		return
	}
	if m.Reply == "" {
		r.events.Emit(events.BadMessage, r.tick(), id, map[string]any{"subject": m.Subject, "reason": "a lease message must be a request (it needs a reply subject)"})
		return
	}
	var req workspace.Request
	if err := json.Unmarshal(env.Data, &req); err != nil {
		fail(fmt.Errorf("%w: %v", workspace.ErrBadRequest, err))
		return
	}
	n := h.inflight[id]
	if n.Add(1) > maxLeaseInflight {
		n.Add(-1)
		fail(fmt.Errorf("%w: at most %d at once", workspace.ErrBusy, maxLeaseInflight))
		return
	}
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		n.Add(-1)
		fail(workspace.ErrClosed)
		return
	}
	h.reqs.Add(1)
	h.mu.Unlock()
	go func() {
		defer h.reqs.Done()
		defer n.Add(-1)
		reply(r.serveLease(h, string(id), req))
	}()
}

func (r *run) serveLease(h *wsHost, agent string, req workspace.Request) workspace.Reply {
	var l workspace.Lease
	var vs []workspace.Version
	var err error
	switch req.Op {
	case workspace.OpAcquire:
		wait := time.Duration(req.WaitMS) * time.Millisecond
		if wait > maxLeaseWait {
			wait = maxLeaseWait
		}
		l, err = h.ws.Acquire(h.reqCtx, agent, req.Path, workspace.AcquireOptions{Prefix: req.Prefix, Wait: wait})
	case workspace.OpCreate:
		l, err = h.ws.Create(agent, req.Path, req.Prefix)
	case workspace.OpRenew:
		l, err = h.ws.Renew(agent, req.Token)
	case workspace.OpRelease:
		vs, err = h.ws.Release(agent, req.Token)
	case workspace.OpCommit:
		vs, err = h.ws.Commit(agent, req.Token, req.Path, req.SHA256)
	default:
		err = fmt.Errorf("%w: unknown op %q (acquire, renew, release, create, commit)", workspace.ErrBadRequest, req.Op)
	}
	if err != nil {
		code := workspace.Code(err)
		if code == "" {
			code = workspace.CodeClosed
			if h.reqCtx.Err() == nil {
				code = workspace.CodeBadRequest
			}
		}
		return workspace.Reply{Error: code, Reason: err.Error()}
	}
	rep := workspace.Reply{OK: true, Versions: workspace.Infos(vs)}
	if l.Token != 0 {
		rep.Lease = l.Info()
	}
	return rep
}

// agentGone revokes the leases of an agent whose process exited.
func (r *run) agentGone(id world.AgentID) {
	if r.wsh != nil {
		r.wsh.ws.AgentGone(string(id))
	}
}

// stopWorkspace settles the watcher (every change made is accounted for),
// stops it and fills in the result.
func (r *run) stopWorkspace() {
	h := r.wsh
	if h == nil {
		return
	}
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	h.reqStop()
	h.reqs.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	h.ws.Sync(ctx)
	cancel()
	h.cancel()
	<-h.done
	st := h.ws.Stats()
	if err := h.ws.Close(); err != nil {
		r.log.Warn("close workspace", "error", err)
	}
	r.res.Workspace = &WorkspaceResult{Stats: st, Private: h.private, EditsCommitted: st.Versions - h.seed}
}
