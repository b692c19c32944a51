package terrarium

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/agents/inproc"
	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/checkpoint"
	"github.com/terrarium-sim/terrarium/dashboard"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

// run is the state of one Run.
type run struct {
	h   *Host
	log hclog.Logger
	res *Result

	dir     string
	events  *events.Writer
	metrics *metricsWriter
	stream  *bus.EventPublisher // the run's event stream; nil before the bus
	srv     *bus.Server
	nc      *nats.Conn
	sup     *agents.Supervisor
	loop    *world.Loop
	w       world.World
	seats   []world.Seat
	agents  map[world.AgentID]*agentRun
	subs    map[*nats.Subscription]world.AgentID // written before any message flows
	// dropReported is what onBusError last reported per subscription; nats.go
	// calls it from one goroutine.
	dropReported map[*nats.Subscription]dropReport
	seq          atomic.Uint64
	watch        sync.WaitGroup
	ended        atomic.Bool // the loop is over: exits are expected from now on
	tickDur      []time.Duration
	lastTick     atomic.Uint64 // last closed tick, for events from outside the loop
	stats        map[world.AgentID]world.AgentStats
	iso          isolation
	wd           *agents.Watchdog   // kills the agents if the host dies; nil if it could not start
	cg           *agents.Cgroups    // the agents' cgroups; nil when no agent has limits
	shim         string             // the binary agents with limits start as
	limitStop    chan struct{}      // stops watchLimits (limits.go); nil when it does not run
	limitDone    chan struct{}      //
	ending       chan struct{}      // closed by markEnded: no more restarts
	bridges      sync.WaitGroup     // stdio bridges; each ends when its process has
	bridgeCtx    context.Context    // cancelled once every agent process is gone
	bridgeCancel context.CancelFunc //
	llmMu        sync.Mutex
	llmTotal     agents.LLMUsage // every LLM agent's usage (llm.go)
	live         chan struct{}   // closed when every agent is ready and the loop runs
	created      chan struct{}   // closed once the loop (and the dashboard, if any) exist
	dash         *dashboard.Server
	dashFed      chan struct{}   // closed when feedDashboard is done
	inproc       *inproc.Runtime // the in-process agents; nil if none
	byID         []*agentRun     // every agent, by id (onTick's, made at the first tick)
	pools        []*poolRun      // runtime "pool" processes (pool.go)
	wsh          *wsHost         // the shared tree; nil until started
	landlock     string          // detect mode: "landlock" when agents are confined by it
	trampoline   string          // the binary that confines agents before running them ("-": none)
	probed       bool            // the trampoline was checked
	pids         pidAgents       // agent processes, for the workspace (pidagents.go)

	from *checkpoint.Checkpoint // resumed or forked from it; nil: from tick 0
	ckpt *checkpoint.Writer
}

type agentRun struct {
	seat  world.Seat
	spec  scenarios.Agent
	creds bus.Credentials
	path  string
	args  []string
	env   []string
	cred  *syscall.Credential // nil: the host's user
	sub   *nats.Subscription  // the host's subscription to its messages
	// bridgeEnv, for the stdio runtime, holds the agent's bus settings, for its bridge.
	bridgeEnv map[string]string
	tracker   *agents.RestartTracker
	jitter    *rand.Rand // the tracker's jitter; only watchExit uses it

	mu        sync.Mutex
	proc      *agents.Process // the current process
	helloSeen bool            // the current process said hello
	restarts  int
	failed    bool
	turns     int          // its own applied actions, over all its processes
	missedRow int          // deadlines missed in a row
	spent     bool         // max_turns reached: stopped, not restarted
	sick      bool         // killed as unhealthy: its exit counts as a failure
	stdio     *StdioCounts // stdio runtime: its bridges' counts
	pool      *poolRun     // runtime "pool": the pool serving it
	llm       *llmAgent    // claude and mcp runtimes (llm.go)

	// Limits (limits.go): set before its first start.
	cgroup  *agents.Cgroup      // its cgroup, when it has limits and the machine has cgroups
	rlimits []agents.Rlimit     // set by the shim for the limits no cgroup enforces
	limits  agents.LimitReports // how each of its limits is enforced (and, at the end, hits); nil without limits

	settleOnce sync.Once
	settled    chan struct{} // closed when the agent will not run again
	readyOnce  sync.Once
	ready      chan struct{}
	exitedIn   atomic.Bool // exited while the run was going on
}

func (r *run) execute(ctx context.Context) (err error) {
	sc := r.h.sc
	defer func() { r.finish(err) }()

	if err := r.makeDir(); err != nil {
		return err
	}
	if err := r.prepareStart(); err != nil {
		return err
	}
	r.seats = sc.Seats()
	r.iso, err = decideIsolation(r.h.cfg.AgentUsers, r.h.cfg.AgentUIDBase, r.dir, len(r.seats))
	if err != nil {
		return err
	}
	r.res.Isolation = r.iso.String()
	if !r.iso.on && r.h.cfg.AgentUsers != AgentUsersOff {
		if os.Geteuid() == 0 {
			r.log.Warn("agents run AS ROOT, with full access to this machine, each other's credentials and the run's files", "why", r.iso.why)
		} else {
			r.log.Warn("agents run as the host's user: they could read each other's environment and files", "why", r.iso.why)
		}
	}
	if err := r.iso.lockDown(r.dir); err != nil {
		return err
	}
	ev, err := r.openEvents()
	if err != nil {
		return err
	}
	r.events = ev
	last, _ := ev.Last()
	r.h.events.opened(filepath.Join(r.dir, "events.jsonl"), last)
	r.h.uiFeed.opened(filepath.Join(r.dir, "events.jsonl"), 0) // the dashboard shows a resumed run from its start
	if err := r.iso.private(filepath.Join(r.dir, "events.jsonl")); err != nil {
		return err
	}
	started := map[string]any{
		"scenario": sc.Name, "seed": sc.Seed, "ticks": sc.Ticks, "stepping": sc.Stepping,
		"world": sc.World.Kind, "agents": len(r.seats), "dir": r.dir, "isolation": r.res.Isolation,
		"host_pid": os.Getpid(),
	}
	if r.h.cfg.World != nil {
		started["embedded_world"] = true // a replay needs the program's world again
	}
	if mode, err := r.enforcement(); err == nil {
		started["enforcement"] = mode
	}
	r.emitStart(started)

	// The world first: a bad world config must fail before any process starts.
	if r.w, err = r.newWorld(); err != nil {
		return err
	}
	if s, ok := r.w.(world.Seeder); ok {
		if err := s.Seed(sc.Seed); err != nil {
			return fmt.Errorf("world %s: seed: %w", sc.World.Kind, err)
		}
	}
	if err := r.restoreWorld(); err != nil {
		return err
	}
	r.metrics, err = r.openMetrics(filepath.Join(r.dir, "metrics.csv"), r.w.Metrics())
	if err != nil {
		return err
	}
	if im, ok := r.w.(world.InitialMetricser); ok && r.from == nil && r.h.cfg.resume == nil {
		if m := im.InitialMetrics(); len(m) > 0 {
			r.metrics.row(0, m)
		}
	}
	if err := r.iso.private(filepath.Join(r.dir, "metrics.csv")); err != nil {
		return err
	}

	r.srv, err = bus.Start(bus.Options{
		Run: r.res.Run, Dir: filepath.Join(r.dir, "jetstream"), Logger: r.h.cfg.Logger,
		OnViolation: r.onViolation, Websocket: r.h.cfg.Websocket,
	})
	if err != nil {
		return fmt.Errorf("start bus: %w", err)
	}
	r.subs = make(map[*nats.Subscription]world.AgentID)
	r.dropReported = make(map[*nats.Subscription]dropReport)
	r.nc, err = r.srv.Connect("host", nats.ErrorHandler(r.onBusError))
	if err != nil {
		return fmt.Errorf("connect host to bus: %w", err)
	}
	if err := r.startObservers(ctx); err != nil {
		return fmt.Errorf("event stream: %w", err)
	}

	r.loop, err = world.NewLoop(world.LoopConfig{
		World: r.w, Agents: r, Events: r.events, Seats: r.seats, Seed: sc.Seed,
		Ticks: world.Tick(sc.Ticks), Deadline: sc.ActionDeadline, Missing: sc.MissingAction,
		OnTick:   r.onTick,
		Stepping: sc.Stepping, TickInterval: tickInterval(sc.TickRate), MaxCatchUp: sc.MaxCatchUp,
		Clock: r.h.cfg.Clock, Manual: r.h.cfg.StepManually,
		From: r.loopFrom(),
	})
	if err != nil {
		return err
	}
	if err := r.startDashboard(); err != nil {
		return err
	}
	close(r.created)
	if err := r.prepareAgents(); err != nil {
		return err
	}
	if err := r.preparePools(); err != nil {
		return err
	}
	if err := r.prepareLimits(); err != nil {
		return err
	}
	if err := r.startInProc(); err != nil {
		return err
	}
	if err := r.startWorkspace(); err != nil {
		return err
	}
	if err := r.subscribe(); err != nil {
		return err
	}
	if err := r.subscribePools(); err != nil {
		return err
	}
	r.startWatchdog()
	r.watchCgroups()
	r.sup = agents.NewSupervisor(agents.Config{Logger: r.h.cfg.Logger, StopGrace: r.h.cfg.StopGrace, Subreaper: true})
	if err := r.spawn(); err != nil {
		return err
	}
	if err := r.spawnPools(); err != nil {
		return err
	}
	r.startLimitWatch()
	if err := r.waitReady(ctx); err != nil {
		return err
	}
	r.log.Info("all agents ready", "agents", len(r.seats))
	close(r.live)

	sum, lerr := r.loop.Run(ctx)
	r.dashboardFrame(world.TickReport{Tick: sum.Ticks}, true)
	r.markEnded()
	r.res.Ticks = sum.Ticks
	r.res.StateHash = sum.Hash
	r.stats = sum.Stats
	return lerr
}

// makeDir creates the run directory and its layout.
func (r *run) makeDir() error {
	dir := r.h.cfg.Dir
	if r.h.cfg.resume == nil {
		if err := checkRunDir(dir); err != nil { // again: it may have appeared since New
			return err
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("run directory %s: %w", dir, err)
	}
	for _, d := range []string{"", "logs", "jetstream", filepath.Join("workspace", "agents"), filepath.Join("workspace", "shared")} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o755); err != nil {
			return fmt.Errorf("create run directory: %w", err)
		}
	}
	r.dir = abs
	r.res.Dir = abs
	if r.h.cfg.resume != nil {
		return nil // the run's own scenario.hcl stays
	}
	if err := os.WriteFile(filepath.Join(abs, "scenario.hcl"), r.h.sc.Source, 0o644); err != nil {
		return fmt.Errorf("copy scenario: %w", err)
	}
	return nil
}

// prepareAgents resolves every agent's command, credentials and environment.
// Nothing is started: a bad command fails the run before any process runs.
func (r *run) prepareAgents() error {
	sc := r.h.sc
	blocks := make(map[string]scenarios.Agent, len(sc.Agents))
	for _, a := range sc.Agents {
		blocks[a.Name] = a
	}
	pathEnv := agents.EnvValue(r.h.cfg.HostEnv, "PATH")
	scenarioDir := filepath.Dir(sc.Path)
	var builtinPath string
	goProgram := map[string]bool{} // path -> built by Go, checked once per path
	var errs []error
	r.agents = make(map[world.AgentID]*agentRun, len(r.seats))
	for i, seat := range r.seats {
		spec := blocks[seat.Group]
		a := &agentRun{seat: seat, spec: spec, ready: make(chan struct{}), settled: make(chan struct{}), args: spec.Args,
			tracker: agents.NewRestartTracker(agents.RestartPolicy{Mode: spec.Restart, Attempts: restartAttempts(spec.MaxRestarts), Window: spec.RestartWindow, Delay: spec.RestartDelay}),
			jitter:  rand.New(rand.NewPCG(sc.Seed, world.AgentSeed(sc.Seed, seat.ID))),
		}
		r.agents[seat.ID] = a
		if spec.Runtime == scenarios.RuntimeInProc {
			a.readyOnce.Do(func() { close(a.ready) }) // a Go value: ready at once
			continue
		}
		if spec.Runtime == scenarios.RuntimePool {
			continue // preparePools
		}
		extra := map[string]string{}
		for k, v := range r.h.cfg.Env {
			extra[k] = v
		}
		switch spec.Runtime {
		case scenarios.RuntimeBuiltin:
			if _, ok := builtin.Lookup(spec.Command); !ok {
				errs = append(errs, fmt.Errorf("agent %s: no builtin agent %q (have %v)", seat.ID, spec.Command, builtin.Names()))
				continue
			}
			if builtinPath == "" {
				p, err := r.copyExecutable()
				if err != nil {
					return err
				}
				builtinPath = p
			}
			a.path = builtinPath
			extra[agents.EnvBuiltin] = spec.Command
			agents.AddGoDefaults(extra, r.h.cfg.Env, spec.Env) // reference agents are Go programs
		default:
			command := spec.Command
			if spec.Path != "" {
				command = spec.Path // resolved when the scenario was loaded; checked again now
			}
			p, err := agents.LookPath(command, scenarioDir, pathEnv)
			if err != nil {
				errs = append(errs, fmt.Errorf("agent %s: %w", seat.ID, err))
				continue
			}
			a.path = p
			isGo, seen := goProgram[p]
			if !seen {
				isGo = agents.IsGoProgram(p)
				goProgram[p] = isGo
			}
			if isGo { // GOMAXPROCS=1 unless the scenario says otherwise
				agents.AddGoDefaults(extra, r.h.cfg.Env, spec.Env)
			}
		}
		creds, err := r.srv.AddAgent(string(seat.ID))
		if err != nil {
			return fmt.Errorf("agent %s: credentials: %w", seat.ID, err)
		}
		a.creds = creds
		ws := filepath.Join(r.dir, "workspace", "agents", string(seat.ID))
		if err := os.MkdirAll(ws, 0o755); err != nil {
			return fmt.Errorf("agent %s: workspace: %w", seat.ID, err)
		}
		if err := r.iso.giveWorkspace(ws, i); err != nil {
			return fmt.Errorf("agent %s: %w", seat.ID, err)
		}
		a.cred = r.iso.credential(i)
		// Every agent gets the host's PATH (programs need it; it is no secret)
		// and its workspace as HOME, unless the scenario's env says otherwise.
		if !slices.Contains(spec.Env, "PATH") && pathEnv != "" {
			extra["PATH"] = pathEnv
		}
		if !slices.Contains(spec.Env, "HOME") {
			extra["HOME"] = ws
		}
		extra[agents.EnvNATSURL] = r.srv.ClientURL()
		extra[agents.EnvNATSUser] = creds.User
		extra[agents.EnvNATSPass] = creds.Password
		extra[agents.EnvInboxPrefix] = creds.InboxPrefix
		extra[agents.EnvRun] = r.res.Run
		extra[agents.EnvAgentID] = string(seat.ID)
		extra[agents.EnvGroup] = seat.Group
		extra[agents.EnvWorkspace] = ws
		extra[agents.EnvShared] = filepath.Join(r.dir, "workspace", "shared")
		extra[agents.EnvSeed] = strconv.FormatUint(world.AgentSeed(sc.Seed, seat.ID), 10)
		if err := r.resumeAgent(a, i, ws, extra); err != nil {
			return err
		}
		if spec.Runtime == scenarios.RuntimeClaude || spec.Runtime == scenarios.RuntimeMCP {
			if builtinPath == "" {
				p, err := r.copyExecutable()
				if err != nil {
					return err
				}
				builtinPath = p
			}
			if err := r.prepareLLM(a, i, ws, builtinPath, extra); err != nil {
				return err
			}
		}
		if spec.Runtime == scenarios.RuntimeStdio {
			// The bridge speaks to the bus for the agent: the process itself
			// gets no bus credentials.
			a.bridgeEnv = maps.Clone(extra)
			for _, k := range []string{agents.EnvNATSURL, agents.EnvNATSUser, agents.EnvNATSPass, agents.EnvInboxPrefix} {
				delete(extra, k)
			}
		}
		a.env = agents.BuildEnv(r.h.cfg.HostEnv, spec.Env, extra)
		if err := r.confine(a); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// copyExecutable puts the builtin runtime's binary into the run directory,
// so it stays executable for agents running under other users.
func (r *run) copyExecutable() (string, error) {
	dir := filepath.Join(r.dir, "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("copy executable: %w", err)
	}
	return builtin.InstallExecutable(r.h.cfg.Executable, filepath.Join(dir, "terrarium"))
}

// subscribe installs the host's handlers for agents' messages: one
// subscription per agent, so an agent that floods the host can only make
// its own messages drop (each subscription has its own pending limit), never
// another agent's.
func (r *run) subscribe() error {
	run := r.res.Run
	for _, seat := range r.seats {
		id, a := seat.ID, r.agents[seat.ID]
		if a.spec.Runtime == scenarios.RuntimePool {
			continue // subscribePools
		}
		sub, err := r.nc.Subscribe(bus.AgentPrefix(run, string(id)), func(m *nats.Msg) {
			_, kind, _ := bus.AgentFromSubject(run, m.Subject)
			switch kind {
			case bus.KindAct:
				r.onAct(id, a, m)
			case bus.KindHello:
				r.onHello(id, a, m)
			case bus.KindLease:
				r.onLease(id, m)
			case bus.KindBye:
				r.log.Debug("agent said bye", "agent", id)
			default:
				r.events.Emit(events.BadMessage, r.tick(), id, map[string]any{"subject": m.Subject, "reason": "unknown message kind " + strconv.Quote(kind)})
			}
		})
		if err != nil {
			return fmt.Errorf("subscribe to agent %s: %w", id, err)
		}
		// In lockstep an honest agent has a message or two in flight; past
		// this, the agent is flooding and its own excess is dropped.
		if err := sub.SetPendingLimits(agentPendingMsgs, agentPendingBytes); err != nil {
			return fmt.Errorf("subscribe to agent %s: %w", id, err)
		}
		r.subs[sub] = id
		a.sub = sub
	}
	if err := r.nc.Flush(); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	return nil
}

// dropReport is the last message.dropped report for one agent.
type dropReport struct {
	dropped int
	tick    world.Tick
}

// Per-agent limits of messages waiting for the host.
const (
	agentPendingMsgs  = 4096
	agentPendingBytes = 16 << 20
)

// onBusError reports messages the host's client had to drop because an
// agent sent faster than the host could take them (a slow consumer).
func (r *run) onBusError(_ *nats.Conn, sub *nats.Subscription, err error) {
	if sub == nil || !errors.Is(err, nats.ErrSlowConsumer) {
		r.log.Warn("bus client error", "error", err)
		return
	}
	id, ok := r.subs[sub]
	if !ok {
		r.log.Warn("bus client error", "subject", sub.Subject, "error", err)
		return
	}
	dropped, _ := sub.Dropped()
	rep := r.dropReported[sub]
	if dropped <= rep.dropped || (rep.dropped > 0 && rep.tick == r.tick()) {
		return // reported already, or at this tick: one event per agent per tick
	}
	if rep.dropped == 0 {
		r.log.Warn("dropping messages from a flooding agent", "agent", id, "dropped", dropped)
	} else {
		r.log.Debug("dropping messages from a flooding agent", "agent", id, "dropped", dropped)
	}
	r.dropReported[sub] = dropReport{dropped: dropped, tick: r.tick()}
	r.events.Emit(events.MessagesDropped, r.tick(), id, map[string]any{"dropped": dropped, "reason": "the agent sent faster than the host reads (slow consumer)"})
}

func (r *run) onHello(id world.AgentID, a *agentRun, m *nats.Msg) {
	if _, err := bus.Decode(m.Data, r.res.Run); err != nil {
		r.events.Emit(events.BadMessage, r.tick(), id, map[string]any{"subject": m.Subject, "reason": err.Error()})
		return
	}
	if m.Reply != "" {
		ack, err := bus.Encode(bus.Envelope{Kind: bus.KindHello, Run: r.res.Run, Agent: string(id), Seq: r.seq.Add(1)})
		if err == nil {
			_ = m.Respond(ack)
		}
	}
	a.mu.Lock()
	first := !a.helloSeen
	a.helloSeen = true
	restarted := a.restarts > 0
	a.mu.Unlock()
	if !first {
		return
	}
	r.events.Emit(events.AgentReady, r.tick(), id, nil)
	a.readyOnce.Do(func() { close(a.ready) })
	if restarted {
		r.loop.Back(id) // a restarted agent plays again from the next tick
	}
}

func (r *run) onAct(id world.AgentID, _ *agentRun, m *nats.Msg) {
	env, err := bus.DecodeShared(m.Data, r.res.Run) // the action aliases the message
	if err != nil {
		r.events.Emit(events.BadMessage, r.tick(), id, map[string]any{"subject": m.Subject, "reason": err.Error()})
		return
	}
	r.loop.Deliver(world.Action{Agent: id, Tick: world.Tick(env.Tick), Data: env.Data})
}

// Send implements world.Agents: it publishes an observation to one agent.
func (r *run) Send(id world.AgentID, t world.Tick, deadline time.Time, obs json.RawMessage) error {
	// (Has is left out when every agent is in-process: one lookup less.)
	if r.inproc != nil && (r.inproc.Len() == len(r.seats) || r.inproc.Has(id)) {
		return r.inproc.Send(id, t, deadline, obs)
	}
	if a := r.agents[id]; a != nil && a.pool != nil {
		return r.sendPool(a.pool, id, t, deadline, obs)
	}
	d := deadline.UTC()
	b, err := bus.Encode(bus.Envelope{Kind: bus.KindObs, Run: r.res.Run, Agent: string(id), Tick: uint64(t), Seq: r.seq.Add(1), Deadline: &d, Data: obs})
	if err != nil {
		return err
	}
	if err := r.nc.Publish(bus.ToSubject(r.res.Run, string(id), bus.KindObs), b); err != nil {
		r.log.Warn("send observation", "agent", id, "tick", t, "error", err)
		return fmt.Errorf("send observation to %s: %w", id, err)
	}
	if a := r.agents[id]; a != nil && a.llm != nil && a.llm.claude {
		r.promptLLM(a, t, deadline, obs)
	}
	return nil
}

func (r *run) onViolation(v bus.Violation) {
	if r.events == nil {
		return
	}
	r.events.Emit(events.Violation, r.tick(), world.AgentID(v.Agent), map[string]any{"op": v.Op, "user": v.User, "subject": v.Subject, "reason": v.Reason})
}

// spawn starts every agent process.
func (r *run) spawn() error {
	for _, seat := range r.seats {
		a := r.agents[seat.ID]
		if a.spec.Runtime == scenarios.RuntimeInProc || a.spec.Runtime == scenarios.RuntimePool || r.stayDown(a) {
			continue
		}
		if err := r.start(a); err != nil {
			return err
		}
		r.watch.Add(1)
		go r.watchExit(a)
	}
	return nil
}

// start starts (or restarts) one agent's process.
func (r *run) start(a *agentRun) error {
	id := a.seat.ID
	args, claude := a.args, a.llm != nil && a.llm.claude
	if claude {
		args = r.claudeArgs(a)
	}
	p, err := r.sup.Start(agents.Spec{
		ID: string(id), Path: a.path, Args: args, Env: a.env, Credential: a.cred, Stdio: a.bridgeEnv != nil || claude,
		Dir:     filepath.Join(r.dir, "workspace", "agents", string(id)),
		LogPath: filepath.Join(r.dir, "logs", string(id)+".log"),
		Cgroup:  a.cgroup, Rlimits: a.rlimits, Shim: r.shim,
	})
	if err != nil {
		if a.cred != nil {
			return fmt.Errorf("start agent %s as uid %d: %w (agents run as their own users: the program and every directory above it must be readable and executable by others; or use --agent-users off)", id, a.cred.Uid, err)
		}
		return fmt.Errorf("start agent %s: %w", id, err)
	}
	// With agents as their own users the watchdog kills by UID, which
	// catches every descendant; so does the agent's cgroup, when it has
	// one (limits.go); otherwise it tracks the agent's group.
	if r.wd != nil && !r.iso.on && a.cgroup == nil {
		if err := r.wd.WatchGroup(p.Pid()); err != nil {
			r.log.Warn("the watchdog cannot watch this agent: it may outlive a killed host", "agent", id, "error", err)
		}
	}
	if a.bridgeEnv != nil {
		br, err := agents.NewStdioBridge(p, agents.StdioConfig{Env: a.bridgeEnv, MaxLineBytes: int(a.spec.MaxLine)})
		if err != nil {
			_ = p.Terminate(context.Background())
			return fmt.Errorf("start agent %s: stdio bridge: %w", id, err)
		}
		r.bridges.Add(1)
		go func() {
			defer r.bridges.Done()
			if err := br.Run(r.bridgeCtx); err != nil && r.bridgeCtx.Err() == nil {
				r.log.Warn("stdio bridge ended", "agent", id, "error", err)
			}
			a.mu.Lock()
			if a.stdio == nil {
				a.stdio = &StdioCounts{}
			}
			a.stdio.add(br.Stats())
			a.mu.Unlock()
		}()
	}
	if claude {
		if err := r.startClaude(a, p); err != nil {
			_ = p.Terminate(context.Background())
			return fmt.Errorf("start agent %s: %w", id, err)
		}
	}
	r.pids.add(p, id)
	a.mu.Lock()
	a.proc = p
	a.helloSeen = false
	a.missedRow = 0 // a new process starts healthy
	restarts := a.restarts
	a.mu.Unlock()
	data := map[string]any{"pid": p.Pid(), "group": a.seat.Group, "runtime": a.spec.Runtime, "command": a.spec.Command}
	if restarts > 0 {
		data["restart"] = restarts
	}
	r.events.Emit(events.AgentSpawned, r.tick(), id, data)
	return nil
}

// restartAttempts maps a scenario's max_restarts onto the tracker's
// Attempts, where 0 means its default: max_restarts = 0 allows none.
func restartAttempts(maxRestarts int) int {
	if maxRestarts == 0 {
		return -1
	}
	return maxRestarts
}

// startWatchdog starts the process that kills the run's agents (their
// process groups, descendants and UIDs) if the host dies, even by SIGKILL.
// Without one (a program embedding the host that does not call
// builtin.Main), the run goes on with a warning.
func (r *run) startWatchdog() {
	if r.inproc != nil && r.inproc.Len() == len(r.seats) {
		return // in-process agents only: no process to watch
	}
	exe := r.h.cfg.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			r.log.Warn("no watchdog: agents may outlive a killed host", "error", err)
			return
		}
	}
	wd, err := agents.StartWatchdog(exe, r.log.Named("watchdog"))
	if err != nil {
		r.log.Warn("no watchdog: agents may outlive a killed host (call builtin.Main first in main)", "error", err)
		return
	}
	if r.iso.on {
		if err := wd.WatchUIDs(r.iso.block.base, len(r.seats)); err != nil {
			r.log.Warn("the watchdog cannot watch the agents' users", "error", err)
		}
	}
	r.wd = wd
}

// stopSpent stops an agent whose max_turns are spent: it is told to stop,
// not observed again, and not restarted.
func (r *run) stopSpent(a *agentRun) {
	id := a.seat.ID
	r.events.Emit(events.AgentSpent, r.tick(), id, map[string]any{"max_turns": a.spec.MaxTurns})
	r.loop.Gone(id)
	stop, err := bus.Encode(bus.Envelope{Kind: bus.KindStop, Run: r.res.Run, Agent: string(id), Tick: uint64(r.tick()), Seq: r.seq.Add(1)})
	if err == nil {
		_ = r.nc.Publish(bus.ToSubject(r.res.Run, string(id), bus.KindStop), stop)
	}
	if a.llm != nil && a.llm.claude {
		r.endLLMProcess(a)
	}
}

// watchExit reports each exit of an agent's process as an event and to the
// loop, and restarts the agent as its policy says while the run goes on.
func (r *run) watchExit(a *agentRun) {
	defer r.watch.Done()
	defer a.settle()
	id := a.seat.ID
	for {
		p := a.process()
		<-p.Done()
		st := p.Exit()
		during := !r.ended.Load() || a.exitedIn.Load()
		a.exitedIn.Store(during)
		data := map[string]any{"pid": p.Pid(), "code": st.Code, "clean": st.Clean(), "during_run": during}
		if st.Signal != "" {
			data["signal"] = st.Signal
		}
		if st.Err != nil {
			data["error"] = st.Err.Error()
		}
		if st.Reason != "" {
			data["reason"] = st.Reason
		}
		r.events.Emit(events.AgentExited, r.tick(), id, data)
		r.agentGone(id)
		if !during {
			return
		}
		r.loop.Gone(id)
		a.mu.Lock()
		spent := a.spent
		a.mu.Unlock()
		if spent {
			a.exitedIn.Store(false) // it left because it was told to
			return
		}
		r.log.Warn("agent exited before the run ended", "agent", id, "status", st.String())

		a.mu.Lock()
		clean := st.Clean() && !a.sick
		a.sick = false
		a.mu.Unlock()
		d := a.tracker.Exited(time.Now(), clean, a.jitter)
		switch {
		case d.Failed:
			a.mu.Lock()
			a.failed = true
			n := a.restarts
			a.mu.Unlock()
			r.log.Error("agent failed: too many restarts", "agent", id, "restarts", n)
			r.events.Emit(events.AgentFailed, r.tick(), id, map[string]any{"restarts": n, "reason": fmt.Sprintf("more than %d restarts within %s", a.spec.MaxRestarts, a.spec.RestartWindow)})
			return
		case !d.Restart:
			return
		}
		r.events.Emit(events.AgentRestarting, r.tick(), id, map[string]any{"attempt": d.Attempt, "delay_ms": d.Delay.Milliseconds(), "after": st.String()})
		wait := time.NewTimer(d.Delay)
		select {
		case <-wait.C:
		case <-r.ending:
			wait.Stop()
			return
		}
		a.mu.Lock()
		a.restarts++
		a.mu.Unlock()
		a.exitedIn.Store(false) // judged again by how the new process ends
		if err := r.start(a); err != nil {
			if !r.ended.Load() {
				r.events.Emit(events.AgentFailed, r.tick(), id, map[string]any{"restarts": d.Attempt, "reason": err.Error()})
			}
			a.mu.Lock()
			a.failed = true
			a.mu.Unlock()
			return
		}
	}
}

// workspaces lists the agents' workspace directories, in seat order.
func (r *run) workspaces() []string {
	if r.dir == "" {
		return nil
	}
	ws := make([]string, len(r.seats))
	for i, seat := range r.seats {
		ws[i] = filepath.Join(r.dir, "workspace", "agents", string(seat.ID))
	}
	return ws
}

func (a *agentRun) process() *agents.Process {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proc
}

func (a *agentRun) settle() { a.settleOnce.Do(func() { close(a.settled) }) }

// markEnded records that the run is over: exits from now on are expected,
// and no agent is restarted. An agent whose process has already exited left
// during the run, whether or not its watcher has looked yet.
func (r *run) markEnded() {
	if r.ended.Load() {
		return
	}
	for _, a := range r.agents {
		p := a.process()
		if p == nil {
			continue
		}
		select {
		case <-p.Done():
			a.exitedIn.Store(true)
		default:
		}
	}
	r.ended.Store(true)
	close(r.ending)
}

// waitReady waits until every agent said hello. It fails as soon as one
// agent exits before saying hello, or when ready_timeout passes.
func (r *run) waitReady(ctx context.Context) error {
	timeout := time.NewTimer(r.h.sc.ReadyTimeout)
	defer timeout.Stop()
	// One goroutine per agent turns "ready" or "exited" into one message.
	type outcome struct {
		a     *agentRun
		ready bool
	}
	out := make(chan outcome, len(r.seats))
	stop := make(chan struct{})
	defer close(stop)
	for _, seat := range r.seats {
		a := r.agents[seat.ID]
		go func() {
			select {
			case <-a.ready:
				out <- outcome{a, true}
			case <-a.settled: // exited, and will not be restarted
				select {
				case <-a.ready: // said hello, then left: still counts as ready
					out <- outcome{a, true}
				default:
					out <- outcome{a, false}
				}
			case <-stop:
			}
		}()
	}
	for pending := len(r.seats); pending > 0; pending-- {
		select {
		case o := <-out:
			if !o.ready {
				o.a.mu.Lock()
				failed := o.a.failed
				o.a.mu.Unlock()
				if failed {
					continue // restarted and failed again and again: marked failed, the others play on
				}
				st := o.a.process().Exit()
				how := st.String()
				if st.Reason != "" {
					how += ": " + st.Reason
				}
				hint := ""
				if o.a.spec.Restart == scenarios.RestartNever {
					hint = `; with restart = "never" the run cannot start without it (restart = "on-failure" would retry it)`
				}
				return fmt.Errorf("agent %s exited before it was ready (%s); its output is in %s%s",
					o.a.seat.ID, how, filepath.Join(r.dir, "logs", string(o.a.seat.ID)+".log"), hint)
			}
		case <-timeout.C:
			var late []string
			for _, s := range r.seats {
				select {
				case <-r.agents[s.ID].ready:
				default:
					late = append(late, string(s.ID))
				}
			}
			return fmt.Errorf("agents not ready after ready_timeout %s: %s (an agent must connect and send hello: see docs/protocol.md and logs/<agent>.log)",
				r.h.sc.ReadyTimeout, strings.Join(late, ", "))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// tick is the last closed tick: the tick process events belong to.
func (r *run) tick() world.Tick { return world.Tick(r.lastTick.Load()) }

func (r *run) onTick(tr world.TickReport) {
	r.lastTick.Store(uint64(tr.Tick))
	if r.byID == nil {
		r.byID = make([]*agentRun, 0, len(r.agents))
		for _, a := range r.agents {
			r.byID = append(r.byID, a)
		}
		slices.SortFunc(r.byID, func(a, b *agentRun) int { return strings.Compare(string(a.seat.ID), string(b.seat.ID)) })
	}
	// Answered and Missing are sorted by id: a walk along byID finds
	// each agent without a map lookup (thousands per tick in a crowd).
	var j int
	find := func(id world.AgentID) *agentRun {
		for j < len(r.byID) && r.byID[j].seat.ID < id {
			j++
		}
		if j < len(r.byID) && r.byID[j].seat.ID == id {
			return r.byID[j]
		}
		return r.agents[id]
	}
	for _, id := range tr.Answered {
		a := find(id)
		a.mu.Lock()
		a.turns++
		a.missedRow = 0
		spent := a.spec.MaxTurns > 0 && a.turns == a.spec.MaxTurns
		a.spent = a.spent || spent
		a.mu.Unlock()
		if spent {
			r.stopSpent(a)
		}
	}
	j = 0
	for _, id := range tr.Missing {
		a := find(id)
		a.mu.Lock()
		a.missedRow++
		unhealthy := a.spec.UnhealthyAfter > 0 && a.missedRow == a.spec.UnhealthyAfter
		p := a.proc
		a.mu.Unlock()
		if unhealthy {
			r.log.Warn("agent unhealthy: missed its deadline too often in a row", "agent", id, "missed", a.spec.UnhealthyAfter)
			r.events.Emit(events.AgentUnhealthy, tr.Tick, id, map[string]any{"missed": a.spec.UnhealthyAfter, "restart": a.spec.RestartUnhealthy})
			if a.spec.RestartUnhealthy && p != nil {
				// Its restart policy decides what happens next; however it
				// exits, it counts as a failure.
				a.mu.Lock()
				a.sick = true
				a.mu.Unlock()
				go func() { _ = p.Terminate(context.Background()) }()
			}
		}
	}
	r.tickDur = append(r.tickDur, tr.Elapsed)
	if r.metrics != nil {
		r.metrics.row(tr.Tick, tr.Metrics)
	}
	r.dashboardFrame(tr, false)
	if p := r.h.cfg.Progress; p != nil {
		p(Progress{Tick: tr.Tick, Ticks: world.Tick(r.h.sc.Ticks), Elapsed: time.Since(r.res.Started), Metrics: tr.Metrics})
	}
	if k := r.h.sc.CheckpointEvery; k > 0 && uint64(tr.Tick)%k == 0 {
		r.writeCheckpoint("every")
	}
}

// finish shuts everything down in order and writes the results. It runs
// whatever happened before, so partial results always reach the disk.
func (r *run) finish(runErr error) {
	r.markEnded()
	res := r.res
	switch {
	case runErr == nil:
		res.Status = StatusFinished
	case errors.Is(runErr, context.Canceled) || errors.Is(runErr, context.DeadlineExceeded):
		res.Status = StatusInterrupted
	case errors.Is(runErr, world.ErrAborted):
		res.Status = StatusAborted
	default:
		res.Status = StatusFailed
	}
	if runErr != nil {
		res.Error = runErr.Error()
		if res.Status == StatusInterrupted {
			res.Error = "interrupted before the run ended"
		}
	}
	if r.loop != nil {
		r.loop.Stop()
	}
	r.stopInProc()
	r.stopAgents()
	if res.Status == StatusInterrupted {
		r.writeCheckpoint("stop") // orderly stop: terrarium resume goes on from here
	}
	r.stopWorkspace()
	r.closeLimits()
	if r.wd != nil {
		// Before the UIDs are released: a watchdog still watching them could
		// kill the agents of the next run that takes them.
		if err := r.wd.Close(); err != nil {
			r.log.Warn("close watchdog", "error", err)
		}
	}
	if err := r.iso.end(r.workspaces()); err != nil {
		r.log.Error("clean up agent users", "error", err)
	}
	if r.w != nil {
		res.World = r.w.Result()
		if t, ok := r.w.(world.Tabler); ok {
			tb := t.Table()
			res.Table = &tb
		}
		if res.StateHash == "" {
			res.StateHash = r.w.StateHash()
		}
	}
	res.Finished = time.Now().UTC()
	res.DurationMS = res.Finished.Sub(res.Started).Milliseconds()
	res.TickTime = summarize(r.tickDur)
	res.Agents = r.agentResults()
	res.LLM = r.llmResults(res.Agents)
	if r.metrics != nil {
		if err := r.metrics.close(); err != nil {
			r.log.Error("metrics", "error", err)
		}
	}
	if r.srv != nil {
		// Every agent is gone: revoke their credentials, then let the bus
		// hand over the violations still queued, so none is lost.
		for _, seat := range r.seats {
			r.srv.RemoveAgent(string(seat.ID))
		}
		r.removePools()
		r.srv.Settle()
	}
	if r.events != nil {
		r.events.Emit(events.RunFinished, res.Ticks, "", map[string]any{"status": res.Status, "error": res.Error, "ticks": res.Ticks, "state_hash": res.StateHash})
		r.events.SetPublisher(nil)
		r.closeStream()
		if err := r.events.Close(); err != nil {
			r.log.Error("event log", "error", err)
		}
		// result.json pins the event log's end: a truncated or re-sealed
		// events.jsonl no longer matches it (terrarium verify).
		res.Events.Count, res.Events.LastHash = r.events.Last()
	}
	// result.json is written last: when it exists, everything else is complete.
	if r.dir != "" {
		mode := os.FileMode(0o644)
		if r.iso.on {
			mode = 0o600
		}
		if err := writeJSON(filepath.Join(r.dir, "result.json"), res, mode); err != nil {
			r.log.Error("write result", "error", err)
		}
	}
	if r.nc != nil {
		_ = r.nc.Drain()
		r.nc.Close()
	}
	if r.srv != nil {
		if err := r.srv.Close(); err != nil {
			r.log.Warn("close bus", "error", err)
		}
	}
}

// stopAgents tells agents the run is over, gives them StopGrace to leave,
// then terminates what is left, and waits for every exit to be recorded.
func (r *run) stopAgents() {
	if r.sup == nil {
		return
	}
	if r.nc != nil && !r.nc.IsClosed() {
		end, _ := bus.Encode(bus.Envelope{Kind: bus.KindEnd, Run: r.res.Run, Tick: uint64(r.res.Ticks), Seq: r.seq.Add(1)})
		_ = r.nc.Publish(bus.WorldSubject(r.res.Run, bus.KindEnd), end)
		for _, seat := range r.seats {
			stop, _ := bus.Encode(bus.Envelope{Kind: bus.KindStop, Run: r.res.Run, Agent: string(seat.ID), Tick: uint64(r.res.Ticks), Seq: r.seq.Add(1)})
			_ = r.nc.Publish(bus.ToSubject(r.res.Run, string(seat.ID), bus.KindStop), stop)
		}
		_ = r.nc.Flush()
	}
	r.endLLM()
	grace := time.NewTimer(r.h.cfg.StopGrace)
	defer grace.Stop()
wait:
	for _, seat := range r.seats {
		a := r.agents[seat.ID]
		if a == nil || a.process() == nil {
			continue
		}
		a.mu.Lock()
		p, heard := a.proc, a.helloSeen
		a.mu.Unlock()
		if !heard {
			continue // never said hello, so never heard the stop: no grace
		}
		select {
		case <-p.Done():
		case <-grace.C:
			break wait
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*r.h.cfg.StopGrace+5*time.Second)
	defer cancel()
	if err := r.sup.Shutdown(ctx); err != nil {
		r.log.Error("shut down agents", "error", err)
	}
	r.watch.Wait()
	r.bridgeCancel()
	r.bridges.Wait()
}

func (r *run) agentResults() []AgentResult {
	out := make([]AgentResult, 0, len(r.seats))
	for _, seat := range r.seats {
		ar := AgentResult{ID: string(seat.ID), Group: seat.Group, Status: "not_started", AgentStats: r.stats[seat.ID]}
		if a := r.agents[seat.ID]; a != nil && a.sub != nil {
			ar.Dropped, _ = a.sub.Dropped()
		}
		if a := r.agents[seat.ID]; a != nil && a.process() != nil {
			p := a.process()
			st := p.Exit()
			ar.Pid, ar.ExitCode, ar.Signal = p.Pid(), st.Code, st.Signal
			a.mu.Lock()
			failed := a.failed
			ar.Restarts = a.restarts
			ar.Stdio = a.stdio
			if a.spent {
				ar.Reason = fmt.Sprintf("max_turns %d reached", a.spec.MaxTurns)
			}
			ar.Limits = a.limits
			a.mu.Unlock()
			switch {
			case failed:
				ar.Status = "failed"
			case ar.Reason != "":
				ar.Status = "stopped" // told to, when its budget was spent
			case a.exitedIn.Load():
				ar.Status = "exited"
			case st.Signal != "":
				ar.Status = "killed"
			default:
				ar.Status = "stopped"
			}
			if ar.Reason == "" {
				ar.Reason = st.Reason // a limit ended its last process
			}
		}
		if a := r.agents[seat.ID]; a != nil && a.spec.Runtime == scenarios.RuntimeInProc {
			ar.Status = "stopped" // a Go value: it ends with the run
		}
		out = append(out, ar)
	}
	return out
}

func summarize(ds []time.Duration) TickTime {
	if len(ds) == 0 {
		return TickTime{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) int64 { return s[int(p*float64(len(s)-1))].Microseconds() }
	return TickTime{MedianUS: q(0.5), P95US: q(0.95), MaxUS: s[len(s)-1].Microseconds()}
}

func writeJSON(path string, v any, mode os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), mode); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return os.Rename(tmp, path)
}
