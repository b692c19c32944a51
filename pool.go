package terrarium

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/internal/jsonenc"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

// poolRun is one pool process (runtime "pool") and the members it serves.
// Its members keep their own agentRun (ready, settled, exit status), all
// pointing at the pool's process.
type poolRun struct {
	id      string
	spec    scenarios.Agent
	members []world.AgentID // in id order
	member  map[world.AgentID]*agentRun
	runs    []*agentRun           // members' runs, in members' order
	index   map[world.AgentID]int // member -> its place in members
	creds   bus.Credentials
	path    string
	env     []string
	cred    *syscall.Credential
	ws      string
	sub     *nats.Subscription

	// The batch being built; only the loop's goroutine (Send, SendsDone)
	// touches it.
	buf      []byte
	msg      []byte // the batch's envelope
	lastObs  []byte // the last observation checked to be JSON
	n        int
	tick     world.Tick
	deadline time.Time

	// acts is the action batch being handed to the loop; only the pool's
	// subscription goroutine (onPoolActs) touches it.
	acts []world.Action

	mu        sync.Mutex
	proc      *agents.Process
	helloSeen bool
}

// poolBatchLimit is the largest observation batch in one message; a bigger
// batch is split (each part is answered on its own).
const poolBatchLimit = bus.MaxPayload - 64<<10

// preparePools makes the pools of every runtime "pool" block: credentials,
// program, workspace (its first member's) and environment. Nothing starts.
func (r *run) preparePools() error {
	sc := r.h.sc
	index := make(map[world.AgentID]int, len(r.seats))
	for i, s := range r.seats {
		index[s.ID] = i
	}
	pathEnv := agents.EnvValue(r.h.cfg.HostEnv, "PATH")
	for _, spec := range sc.Agents {
		if spec.Runtime != scenarios.RuntimePool {
			continue
		}
		extra := maps.Clone(r.h.cfg.Env)
		if extra == nil {
			extra = map[string]string{}
		}
		var path string
		if _, ok := builtin.LookupPool(spec.Command); ok {
			p, err := r.builtinExecutable()
			if err != nil {
				return err
			}
			path = p
			extra[agents.EnvBuiltin] = spec.Command
			agents.AddGoDefaults(extra, r.h.cfg.Env, spec.Env)
		} else {
			command := spec.Command
			if spec.Path != "" {
				command = spec.Path
			}
			p, err := agents.LookPath(command, filepath.Dir(sc.Path), pathEnv)
			if err != nil {
				return fmt.Errorf("agent %s: %w", spec.Name, err)
			}
			path = p
			if agents.IsGoProgram(p) {
				agents.AddGoDefaults(extra, r.h.cfg.Env, spec.Env)
			}
		}
		for k, members := range spec.Pools() {
			id := spec.PoolID(k + 1)
			pr := &poolRun{id: id, spec: spec, members: members, member: make(map[world.AgentID]*agentRun, len(members)), path: path,
				runs: make([]*agentRun, len(members)), index: make(map[world.AgentID]int, len(members))}
			for k, m := range members {
				a := r.agents[m]
				a.pool = pr
				pr.member[m] = a
				pr.runs[k], pr.index[m] = a, k
			}
			creds, err := r.srv.AddPool(id)
			if err != nil {
				return fmt.Errorf("pool %s: credentials: %w", id, err)
			}
			pr.creds = creds
			first := index[members[0]]
			pr.ws = filepath.Join(r.dir, "workspace", "agents", string(members[0]))
			if err := os.MkdirAll(pr.ws, 0o755); err != nil {
				return fmt.Errorf("pool %s: workspace: %w", id, err)
			}
			if err := r.iso.giveWorkspace(pr.ws, first); err != nil {
				return fmt.Errorf("pool %s: %w", id, err)
			}
			pr.cred = r.iso.credential(first)
			env := maps.Clone(extra)
			if !slices.Contains(spec.Env, "PATH") && pathEnv != "" {
				env["PATH"] = pathEnv
			}
			if !slices.Contains(spec.Env, "HOME") {
				env["HOME"] = pr.ws
			}
			env[agents.EnvNATSURL] = r.srv.ClientURL()
			env[agents.EnvNATSUser] = creds.User
			env[agents.EnvNATSPass] = creds.Password
			env[agents.EnvInboxPrefix] = creds.InboxPrefix
			env[agents.EnvRun] = r.res.Run
			env[agents.EnvPool] = id
			env[agents.EnvGroup] = spec.Name
			env[agents.EnvWorkspace] = pr.ws
			env[agents.EnvShared] = filepath.Join(r.dir, "workspace", "shared")
			env[agents.EnvSeed] = strconv.FormatUint(world.AgentSeed(sc.Seed, world.AgentID(id)), 10)
			pr.env = agents.BuildEnv(r.h.cfg.HostEnv, spec.Env, env)
			// Confined as an agent would be (detect mode's Landlock), to
			// its workspace: the first member's.
			stand := &agentRun{seat: r.seats[first], spec: spec, path: pr.path, env: pr.env}
			if err := r.confine(stand); err != nil {
				return fmt.Errorf("pool %s: %w", id, err)
			}
			pr.path, pr.env = stand.path, stand.env
			r.pools = append(r.pools, pr)
		}
	}
	return nil
}

// builtinExecutable is the run's copy of the builtin runtime's binary.
func (r *run) builtinExecutable() (string, error) {
	p := filepath.Join(r.dir, "bin", "terrarium")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return r.copyExecutable()
}

// subscribePools installs the host's handler for each pool's messages.
func (r *run) subscribePools() error {
	run := r.res.Run
	for _, pr := range r.pools {
		sub, err := r.nc.Subscribe(bus.PoolPrefix(run, pr.id), func(m *nats.Msg) {
			switch kind := m.Subject[len(bus.PoolSubject(run, pr.id, "")):]; kind {
			case bus.KindActs:
				r.onPoolActs(pr, m)
			case bus.KindHello:
				r.onPoolHello(pr, m)
			case bus.KindBye:
				r.log.Debug("pool said bye", "pool", pr.id)
			default:
				r.poolBad(pr, m.Subject, "unknown message kind "+strconv.Quote(kind))
			}
		})
		if err != nil {
			return fmt.Errorf("subscribe to pool %s: %w", pr.id, err)
		}
		// A pool has a batch or two in flight, each up to MaxPayload.
		if err := sub.SetPendingLimits(256, 64<<20); err != nil {
			return fmt.Errorf("subscribe to pool %s: %w", pr.id, err)
		}
		pr.sub = sub
	}
	return nil
}

// poolBad reports a bad message from a pool, under its first member's id
// (events name agents) with the pool named.
func (r *run) poolBad(pr *poolRun, subject, reason string) {
	r.events.Emit(events.BadMessage, r.tick(), pr.members[0], map[string]any{"subject": subject, "pool": pr.id, "reason": reason})
}

func (r *run) onPoolHello(pr *poolRun, m *nats.Msg) {
	if _, err := bus.Decode(m.Data, r.res.Run); err != nil {
		r.poolBad(pr, m.Subject, err.Error())
		return
	}
	if m.Reply != "" {
		members, _ := json.Marshal(map[string]any{"members": pr.members})
		ack, err := bus.Encode(bus.Envelope{Kind: bus.KindHello, Run: r.res.Run, Agent: pr.id, Seq: r.seq.Add(1), Data: members})
		if err == nil {
			_ = m.Respond(ack)
		}
	}
	pr.mu.Lock()
	first := !pr.helloSeen
	pr.helloSeen = true
	pr.mu.Unlock()
	if !first {
		return
	}
	for _, id := range pr.members {
		a := pr.member[id]
		a.mu.Lock()
		a.helloSeen = true
		a.mu.Unlock()
		r.events.Emit(events.AgentReady, r.tick(), id, map[string]any{"pool": pr.id})
		a.readyOnce.Do(func() { close(a.ready) })
	}
}

// onPoolActs hands each member's action to the loop. An entry for an agent
// that is not one of the pool's members is refused with a violation event:
// a pool may act for its members and nobody else.
func (r *run) onPoolActs(pr *poolRun, m *nats.Msg) {
	env, err := bus.DecodeShared(m.Data, r.res.Run) // the actions alias the message
	if err != nil {
		r.poolBad(pr, m.Subject, err.Error())
		return
	}
	// The batch's actions reach the loop together (one lock round trip),
	// in order; a violation event comes before the actions of its batch.
	// The member's own id string is used: no string made per entry. A
	// pool answers in the order of its batch, which is its members'
	// order: the member after the last one found is tried before the map.
	acts := pr.acts[:0]
	next := 0
	err = bus.EachEntryBytes(env.Data, func(agent, data []byte) {
		var a *agentRun
		if next < len(pr.members) && string(pr.members[next]) == string(agent) {
			a = pr.runs[next]
			next++
		} else if k, ok := pr.index[world.AgentID(agent)]; ok {
			a = pr.runs[k]
			next = k + 1
		}
		if a == nil {
			r.events.Emit(events.Violation, r.tick(), pr.members[0], map[string]any{
				"op": "publish", "user": pr.creds.User, "subject": m.Subject, "pool": pr.id,
				"reason": fmt.Sprintf("pool %s sent an action for %q, which is not one of its members", pr.id, agent)})
			return
		}
		acts = append(acts, world.Action{Agent: a.seat.ID, Tick: world.Tick(env.Tick), Data: data})
	})
	r.loop.DeliverAll(acts)
	clear(acts)
	pr.acts = acts
	if err != nil {
		r.poolBad(pr, m.Subject, err.Error())
	}
}

// sendPool queues member id's observation in its pool's batch (from the
// loop's goroutine); SendsDone sends the batches.
func (r *run) sendPool(pr *poolRun, id world.AgentID, t world.Tick, deadline time.Time, obs json.RawMessage) error {
	if len(obs) == 0 {
		obs = json.RawMessage("null")
	}
	// The batch is not scanned again when it is sent (bus.EncodeBatch), so
	// each observation is checked here; most worlds send runs of equal
	// observations, checked once.
	if !bytes.Equal(obs, pr.lastObs) {
		if !jsonenc.Canonical(obs) && !json.Valid(obs) { // the first is faster, and says yes to most
			return fmt.Errorf("send observation to %s: the world's observation is not valid JSON", id)
		}
		pr.lastObs = append(pr.lastObs[:0], obs...)
	}
	if pr.n > 0 && (pr.tick != t || len(pr.buf)+len(obs)+len(id)+32 > poolBatchLimit) {
		r.flushPool(pr)
	}
	pr.tick, pr.deadline = t, deadline
	if pr.n == 0 {
		pr.buf = append(pr.buf[:0], '[')
	} else {
		pr.buf = append(pr.buf, ',')
	}
	pr.buf = bus.AppendEntry(pr.buf, string(id), obs) // ids need no escaping (world.IDPattern)
	pr.n++
	return nil
}

// SendsDone implements world.SendBatcher: it sends every pool's batch
// and wakes the in-process agents' workers.
func (r *run) SendsDone(t world.Tick) {
	if r.inproc != nil {
		r.inproc.SendsDone(t)
	}
	for _, pr := range r.pools {
		if pr.n > 0 {
			r.flushPool(pr)
		}
	}
}

func (r *run) flushPool(pr *poolRun) {
	pr.buf = append(pr.buf, ']')
	d := pr.deadline.UTC()
	// The message buffer is reused: Publish copies it.
	b, err := bus.AppendBatch(pr.msg[:0], bus.Envelope{Kind: bus.KindObs, Run: r.res.Run, Agent: pr.id, Tick: uint64(pr.tick), Seq: r.seq.Add(1), Deadline: &d, Data: pr.buf})
	n := pr.n
	pr.n = 0
	if err == nil {
		pr.msg = b
		err = r.nc.Publish(bus.ToPoolSubject(r.res.Run, pr.id, bus.KindObs), b)
	}
	if err != nil { // its members' actions will be missing
		r.log.Warn("send observations to pool", "pool", pr.id, "tick", pr.tick, "members", n, "error", err)
	}
}

// spawnPools starts every pool process.
func (r *run) spawnPools() error {
	for _, pr := range r.pools {
		p, err := r.sup.Start(agents.Spec{
			ID: pr.id, Path: pr.path, Args: pr.spec.Args, Env: pr.env, Credential: pr.cred,
			Dir: pr.ws, LogPath: filepath.Join(r.dir, "logs", pr.id+".log"),
		})
		if err != nil {
			if pr.cred != nil {
				return fmt.Errorf("start pool %s as uid %d: %w (or use --agent-users off)", pr.id, pr.cred.Uid, err)
			}
			return fmt.Errorf("start pool %s: %w", pr.id, err)
		}
		if r.wd != nil && !r.iso.on {
			if err := r.wd.WatchGroup(p.Pid()); err != nil {
				r.log.Warn("the watchdog cannot watch this pool: it may outlive a killed host", "pool", pr.id, "error", err)
			}
		}
		pr.mu.Lock()
		pr.proc = p
		pr.mu.Unlock()
		for _, id := range pr.members {
			a := pr.member[id]
			a.mu.Lock()
			a.proc = p
			a.mu.Unlock()
			r.events.Emit(events.AgentSpawned, r.tick(), id, map[string]any{"pid": p.Pid(), "group": pr.spec.Name, "runtime": scenarios.RuntimePool, "command": pr.spec.Command, "pool": pr.id})
		}
		r.watch.Add(1)
		go r.watchPool(pr, p)
	}
	return nil
}

// watchPool reports a pool process's exit as every member's exit; during
// the run its members leave the loop. A pool is not restarted.
func (r *run) watchPool(pr *poolRun, p *agents.Process) {
	defer r.watch.Done()
	<-p.Done()
	st := p.Exit()
	during := !r.ended.Load()
	if during {
		r.log.Warn("pool exited before the run ended", "pool", pr.id, "members", len(pr.members), "status", st.String())
	}
	for _, id := range pr.members {
		a := pr.member[id]
		d := during || a.exitedIn.Load()
		a.exitedIn.Store(d)
		data := map[string]any{"pid": p.Pid(), "code": st.Code, "clean": st.Clean(), "during_run": d, "pool": pr.id}
		if st.Signal != "" {
			data["signal"] = st.Signal
		}
		if st.Err != nil {
			data["error"] = st.Err.Error()
		}
		r.events.Emit(events.AgentExited, r.tick(), id, data)
		if d {
			r.loop.Gone(id)
		}
		a.settle()
	}
}

// removePools revokes the pools' credentials.
func (r *run) removePools() {
	for _, pr := range r.pools {
		r.srv.RemoveAgent(pr.creds.User)
	}
}
