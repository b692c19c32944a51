package terrarium

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/inproc"
	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/checkpoint"
	"github.com/terrarium-sim/terrarium/dashboard"
	"github.com/terrarium-sim/terrarium/observe"

	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"

	// The built-in world kinds and reference agents register themselves.
	_ "github.com/terrarium-sim/terrarium/agents/builtin"
	_ "github.com/terrarium-sim/terrarium/world/echo"
	_ "github.com/terrarium-sim/terrarium/world/game"
	_ "github.com/terrarium-sim/terrarium/world/grid"
	_ "github.com/terrarium-sim/terrarium/world/town"
	_ "github.com/terrarium-sim/terrarium/world/turns"
)

// Run statuses (Result.Status).
const (
	StatusFinished    = "finished"    // the world ended or the tick limit was reached
	StatusInterrupted = "interrupted" // the context was cancelled (Ctrl-C, SIGTERM, Close)
	StatusAborted     = "aborted"     // the missing-action policy "abort" ended the run
	StatusFailed      = "failed"      // the run could not start or go on
)

// Config configures one run.
type Config struct {
	// Scenario is the loaded scenario (scenarios.Load). Required.
	Scenario *scenarios.Scenario
	// Logger is the root logger; the host derives named loggers from it.
	// Default: a logger that discards everything.
	Logger hclog.Logger
	// Dir is the run directory. Default: RunsDir/RunID. It must not exist or be empty.
	Dir string
	// RunsDir is where run directories are made when Dir is empty (default "runs").
	RunsDir string
	// RunID names the run; it must match [A-Za-z0-9_-]+. Default:
	// <scenario>-<UTC time>-<random>.
	RunID string
	// Progress, if set, is called after every tick from the loop's goroutine.
	// It must return quickly.
	Progress func(Progress)
	// Executable is the binary the builtin runtime re-executes; default
	// os.Executable(). It is copied into the run directory.
	Executable string
	// HostEnv is where allow-listed variables are taken from (default os.Environ()).
	HostEnv []string
	// AgentUsers is AgentUsersAuto (default), AgentUsersOn or AgentUsersOff:
	// whether each agent runs as its own user and group (UID = GID =
	// AgentUIDBase + its index in id order), with a private workspace
	// (mode 0700) and no way to read another agent's environment, files or
	// the host's. It needs root (the container runs the host as root).
	AgentUsers string
	// AgentUIDBase is the first agent's UID and GID (default DefaultAgentUIDBase).
	AgentUIDBase uint32
	// Env holds extra variables given to every agent (after the scenario's
	// allow-list; the TERRARIUM_* variables cannot be overridden).
	Env map[string]string
	// Fork starts the run from another run's checkpoint instead of tick 0
	// (terrarium run --from RUN_DIR@TICK): its world snapshot, loop state
	// and agents' workspaces; the scenario may differ in anything that
	// keeps the world's snapshot valid.
	Fork *Fork
	// CheckpointParts are added to every checkpoint besides the agents'
	// workspaces (the shared tree's versions, the lease table), and put
	// back when the run is resumed or forked.
	CheckpointParts []checkpoint.Part
	// CheckpointHook, if set, is called at each stage of a checkpoint
	// write (see checkpoint.Writer.Hook); tests use it to crash mid-write.
	CheckpointHook func(stage string, t world.Tick)
	// Websocket, if set, is the HOST:PORT of a websocket listener of the
	// bus for browsers (port 0: a random one; loopback only, plain ws://).
	Websocket string
	// UI, if set, is the HOST:PORT the run's dashboard serves on (port 0:
	// a random one); see docs/dashboard.md. Its URL and control token go
	// to Dashboard and into the run directory's dashboard.json.
	UI string
	// Dashboard, if set, is called once the dashboard serves, with its
	// URL and control token.
	Dashboard func(dashboard.Info)
	// Observers, if set, is called once the run's event stream is up,
	// with what observers need to connect (also in observer.json).
	Observers func(observe.Info)
	// StopGrace is how long agents get to exit after the stop message before
	// their process groups and sessions are terminated (default 2s); the same again passes
	// between SIGTERM and SIGKILL.
	StopGrace time.Duration

	// The settings below are for programs that embed the host (see
	// docs/embedding.md).

	// World, if set, is the world the run steps instead of building the
	// scenario's world block: a game's own world.World. The loop's goroutine
	// calls it while the run goes on.
	World world.World
	// InProc supplies the in-process agents: an agent block with runtime
	// "inproc" names one by its command; the factory makes each seat's Agent.
	InProc map[string]inproc.Factory
	// StepManually makes the run tick only when Step is called (the game's
	// loop drives); the clock then decides nothing but deadlines.
	StepManually bool
	// Clock is the loop's clock (default the wall clock); tests pass a
	// worldtest.ManualClock.
	Clock world.Clock
	// EventBuffer, if > 0, makes Events return a channel of every event
	// with room for that many; a full channel waits for its reader without
	// slowing the world (the events wait in the run's stream).
	EventBuffer int

	resume *resumePoint // set by Resume: go on in Dir from a checkpoint
}

// Progress is reported after every tick.
type Progress struct {
	Tick    world.Tick
	Ticks   world.Tick // the scenario's tick limit, 0 if the world decides
	Elapsed time.Duration
	Metrics map[string]float64
}

// Result is what a run produced; it is also written to result.json.
type Result struct {
	V          int           `json:"v"`
	Run        string        `json:"run"`
	Scenario   string        `json:"scenario"`
	Status     string        `json:"status"`
	Error      string        `json:"error,omitempty"`
	Seed       uint64        `json:"seed"`
	Ticks      world.Tick    `json:"ticks"`
	StateHash  string        `json:"state_hash"`
	Started    time.Time     `json:"started"`
	Finished   time.Time     `json:"finished"`
	DurationMS int64         `json:"duration_ms"`
	TickTime   TickTime      `json:"tick_time"`
	Isolation  string        `json:"isolation"` // "users (uid/gid N+)" or "none: <why>"
	Events     EventsSummary `json:"events"`
	Agents     []AgentResult `json:"agents"`
	World      any           `json:"world"`
	// Workspace is what happened in the shared tree: the enforcement mode,
	// leases, commits, violations and restores.
	Workspace *WorkspaceResult `json:"workspace,omitempty"`
	// LLM is the total of every LLM agent's usage (none without LLM agents).
	LLM *agents.LLMUsage `json:"llm,omitempty"`

	// Stream counts the events put in the run's event stream.
	Stream *bus.StreamStats `json:"stream,omitempty"`

	// Dir is the run directory ("" if it could not be made); Table the
	// world's summary table, if it has one.
	Dir   string       `json:"-"`
	Table *world.Table `json:"-"`
}

// EventsSummary pins the end of events.jsonl: its number of events and the
// hash of the last one.
type EventsSummary struct {
	Count    uint64 `json:"count"`
	LastHash string `json:"last_hash"`
}

// StdioCounts is what a stdio agent's bridge saw, over all its processes.
type StdioCounts struct {
	Obs        uint64 `json:"obs"`         // observations written to the child
	ObsDropped uint64 `json:"obs_dropped"` // not written: the child did not read its stdin
	Acts       uint64 `json:"acts"`        // act lines published
	LongLines  uint64 `json:"long_lines"`  // lines over the limit, discarded
	BadLines   uint64 `json:"bad_lines"`   // lines that were not protocol lines, logged
}

func (c *StdioCounts) add(s agents.StdioStats) {
	c.Obs += s.Obs
	c.ObsDropped += s.ObsDropped
	c.Acts += s.Acts
	c.LongLines += s.LongLines
	c.BadLines += s.BadLines
}

// TickTime summarises the wall time of ticks (not deterministic).
type TickTime struct {
	MedianUS int64 `json:"median_us"`
	P95US    int64 `json:"p95_us"`
	MaxUS    int64 `json:"max_us"`
}

// AgentResult is one agent's outcome.
type AgentResult struct {
	ID       string `json:"id"`
	Group    string `json:"group"`
	Pid      int    `json:"pid,omitempty"`
	Status   string `json:"status"` // "stopped" (exited after the end), "exited" (during the run), "failed" (restarted too often), "killed", "not_started"
	ExitCode int    `json:"exit_code"`
	Signal   string `json:"signal,omitempty"`
	Dropped  int    `json:"dropped"`          // its messages the host dropped because it flooded
	Restarts int    `json:"restarts"`         // how often its process was started again
	Reason   string `json:"reason,omitempty"` // why it was stopped early, e.g. "max_turns 10 reached"
	// Stdio counts the stdio runtime's bridge traffic (stdio agents only).
	Stdio *StdioCounts `json:"stdio,omitempty"`
	// LLM counts a claude agent's model turns, tokens and cost, over all its processes.
	LLM *agents.LLMUsage `json:"llm,omitempty"`
	// Limits says, per limit its block sets, what enforces it and how often
	// it bit (agents with limits only; see docs/events.md, agent.limits).
	Limits agents.LimitReports `json:"limits,omitempty"`
	world.AgentStats
}

// Host runs one scenario. Make it with New, call Run once, then Close.
type Host struct {
	cfg Config
	log hclog.Logger
	sc  *scenarios.Scenario

	runMu   sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}

	closeOnce sync.Once
	live      atomic.Pointer[run] // the run, while its event stream is up

	r      *run         // set by Start
	res    *Result      // set before done is closed
	err    error        //
	events *eventFeed   // nil unless Config.EventBuffer > 0
	uiFeed *eventFeed   // the dashboard's; nil unless Config.UI is set
	uiLn   net.Listener // the dashboard's, from New until the run hands it over
}

// New checks cfg and prepares a host. It starts nothing.
func New(cfg Config) (*Host, error) {
	if cfg.Scenario == nil {
		return nil, errors.New("new host: no scenario")
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.RunsDir == "" {
		cfg.RunsDir = "runs"
	}
	if cfg.RunID == "" {
		cfg.RunID = NewRunID(cfg.Scenario.Name, time.Now())
	}
	if !world.IDPattern.MatchString(cfg.RunID) {
		return nil, fmt.Errorf("new host: run id %q must match %s", cfg.RunID, world.IDPattern)
	}
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(cfg.RunsDir, cfg.RunID)
	}
	if cfg.resume == nil {
		if err := checkRunDir(cfg.Dir); err != nil {
			return nil, err
		}
		if cfg.Fork != nil {
			if err := checkFork(cfg.Fork, cfg.Scenario); err != nil {
				return nil, err
			}
		}
	}
	if err := checkAgentUsers(cfg.AgentUsers, cfg.Dir); err != nil {
		return nil, err
	}
	if cfg.HostEnv == nil {
		cfg.HostEnv = os.Environ()
	}
	if cfg.AgentUIDBase == 0 {
		cfg.AgentUIDBase = DefaultAgentUIDBase
	}
	if b := uint64(cfg.AgentUIDBase); b < minAgentUID || b+uidBlockSize > 1<<31 {
		return nil, fmt.Errorf("new host: agent uid base %d: want %d to %d (agents' users are never system users; blocks of %d are aligned, a base inside one is rounded up)",
			b, minAgentUID, uint64(1<<31)-uidBlockSize, uidBlockSize)
	}
	switch cfg.AgentUsers {
	case "", AgentUsersAuto, AgentUsersOn, AgentUsersOff:
	default:
		return nil, fmt.Errorf("new host: agent users %q: want auto, on or off", cfg.AgentUsers)
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 2 * time.Second
	}
	if err := checkEmbedding(&cfg); err != nil {
		return nil, err
	}
	h := &Host{cfg: cfg, log: cfg.Logger.Named("host").With("run", cfg.RunID), sc: cfg.Scenario, done: make(chan struct{})}
	if cfg.EventBuffer > 0 {
		h.events = newEventFeed(cfg.EventBuffer, h.log.Named("events"))
	}
	if cfg.UI != "" {
		// Listen now: a taken address is a usage error before anything
		// (the run directory) is made.
		ln, err := dashboard.Listen(cfg.UI)
		if err != nil {
			return nil, fmt.Errorf("new host: %w", err)
		}
		h.uiLn = ln
		h.uiFeed = newEventFeed(dashboardBuffer, h.log.Named("dashboard"))
	}
	return h, nil
}

// checkRunDir refuses a run directory that cannot be a new run's: an
// existing non-empty directory (another run's results are never mixed in or
// overwritten) or something that is not a directory.
func checkRunDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("run directory %s: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("run directory %s exists and is not a directory: choose another --out", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("run directory %s: %w", dir, err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("run directory %s exists and is not empty: choose another --out or remove it", dir)
	}
	return nil
}

// NewRunID makes a run id from a scenario name and a time:
// name-YYYYMMDDTHHMMSS-xxxxxxxx. The 32 random bits keep the ids of many
// hosts started in the same second (one per game room) apart.
func NewRunID(scenario string, t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return scenario + "-" + t.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

// RunID returns the run's id.
func (h *Host) RunID() string { return h.cfg.RunID }

// Dir returns the run directory.
func (h *Host) Dir() string { return h.cfg.Dir }

// Close stops a running Run and waits until it returned. Safe to call any
// number of times, from any goroutine, before, during or after Run.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.runMu.Lock()
		started, cancel := h.started, h.cancel
		if !started {
			h.started = true // a later Run refuses to start
			close(h.done)
		}
		h.runMu.Unlock()
		if started && cancel != nil {
			cancel()
		}
	})
	<-h.done
	if h.uiLn != nil {
		_ = h.uiLn.Close() // harmless once the dashboard closed it
	}
	h.runMu.Lock()
	ran := h.r != nil // the events feed runs
	h.runMu.Unlock()
	if ran {
		h.events.close()
		h.uiFeed.close()
	}
	return nil
}

// Run runs the scenario to its end. It returns the result (also written to
// result.json) and, unless the run finished, an error saying why: it wraps
// ctx.Err() when interrupted and world.ErrAborted when aborted. It is Start
// followed by Wait.
func (h *Host) Run(ctx context.Context) (*Result, error) {
	if h.cfg.StepManually {
		return nil, errors.New("run: the host steps manually (Config.StepManually): call Start, then Step")
	}
	if err := h.Start(ctx); errors.Is(err, errStarted) {
		return nil, err
	}
	return h.Wait()
}

// newRun makes the state of the host's one run.
func (h *Host) newRun() *run {
	bctx, bcancel := context.WithCancel(context.Background())
	return &run{h: h, log: h.log, ending: make(chan struct{}), live: make(chan struct{}), created: make(chan struct{}), dashFed: make(chan struct{}), bridgeCtx: bctx, bridgeCancel: bcancel, res: &Result{
		V: 1, Run: h.cfg.RunID, Scenario: h.sc.Name, Seed: h.sc.Seed,
		Started: time.Now().UTC(),
	}}
}
