package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/world"
)

// Name is the server's name in MCP configs: clients name its tools
// "mcp__terrarium__<tool>" (claude) or similar.
const Name = "terrarium"

// Tool names.
const (
	ToolObserve = "observe"
	ToolAct     = "act"
	ToolSay     = "say"
)

// EnvWorldKind names the run's world kind in the server's environment (the
// host sets it), so the server can offer the kind's tools.
const EnvWorldKind = "TERRARIUM_WORLD_KIND"

// BuiltinName is the builtin program that runs the server over stdio; the
// host's MCP configs start the terrarium binary with agents.EnvBuiltin set
// to it (the same as `terrarium mcp`).
const BuiltinName = "mcp"

// DefaultWaitLimit bounds how long observe waits for the next observation.
const DefaultWaitLimit = 20 * time.Second

// ToolName is the name the claude CLI gives one of this server's tools.
func ToolName(tool string) string { return "mcp__" + Name + "__" + tool }

// Tools lists the names of the tools a server for worlds of kind k offers.
func Tools(k world.Kind) []string {
	out := []string{ToolObserve, ToolAct, ToolSay}
	for _, t := range k.Tools {
		if t.Name != ToolSay {
			out = append(out, t.Name)
		}
	}
	return append(out, LeaseTools...)
}

// Config configures a Server.
type Config struct {
	// Kind is the run's world kind; its Tools are offered (may be zero).
	Kind world.Kind
	// WaitLimit bounds observe's wait (default DefaultWaitLimit).
	WaitLimit time.Duration
	// Logger (nil: none).
	Logger hclog.Logger
}

// Server serves one agent.
type Server struct {
	a   *sdk.Agent
	cfg Config
	log hclog.Logger
	srv *mcp.Server

	mu     sync.Mutex
	last   sdk.Observation
	have   bool
	seen   world.Tick    // the newest tick observe returned
	acted  world.Tick    // the newest tick an action was sent for
	newObs chan struct{} // closed and replaced when an observation arrives
	over   bool
	leases map[uint64]sdk.Lease // granted through this server, by token
}

// New returns the server for the connected agent a.
func New(a *sdk.Agent, cfg Config) *Server {
	if cfg.WaitLimit <= 0 {
		cfg.WaitLimit = DefaultWaitLimit
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	s := &Server{a: a, cfg: cfg, log: cfg.Logger, newObs: make(chan struct{}), leases: map[uint64]sdk.Lease{}}
	s.srv = mcp.NewServer(&mcp.Implementation{Name: Name, Version: "1"}, &mcp.ServerOptions{
		Instructions: fmt.Sprintf("You are agent %s of a Terrarium simulation. Each tick, look with %s and send one action with %s (or a world tool). "+
			"Files under the shared directory %s are changed only under a lease: %s, edit the file, %s, then %s.",
			a.ID(), ToolObserve, ToolAct, a.Shared(), ToolLeaseAcquire, ToolLeaseCommit, ToolLeaseRelease),
	})
	s.addTools()
	s.addLeaseTools()
	return s
}

// Run serves over t until the client disconnects or ctx is done.
func (s *Server) Run(ctx context.Context, t mcp.Transport) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.pump(ctx)
	}()
	err := s.srv.Run(ctx, t)
	cancel()
	wg.Wait()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// pump keeps the newest observation.
func (s *Server) pump(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.a.Done():
			s.mu.Lock()
			s.over = true
			close(s.newObs)
			s.newObs = make(chan struct{})
			s.mu.Unlock()
			return
		case o := <-s.a.Observations():
			s.mu.Lock()
			s.last, s.have = o, true
			close(s.newObs)
			s.newObs = make(chan struct{})
			s.mu.Unlock()
		}
	}
}

type observeIn struct {
	Wait bool `json:"wait,omitempty" jsonschema:"wait for an observation newer than the last one observe returned (bounded)"`
}

type observeOut struct {
	Tick        world.Tick `json:"tick"`
	Deadline    *time.Time `json:"deadline,omitempty"`
	Observation any        `json:"observation,omitempty"`
	Acted       bool       `json:"acted" jsonschema:"whether an action was already sent for this tick"`
	RunOver     bool       `json:"run_over,omitempty"`
	Note        string     `json:"note,omitempty"`
}

type actIn struct {
	Action any `json:"action" jsonschema:"the action for this tick, as the world expects it"`
}

type sayIn struct {
	Text string `json:"text" jsonschema:"what to say"`
	To   string `json:"to,omitempty" jsonschema:"an agent id to say it to only, if the world allows"`
}

type sentOut struct {
	Tick world.Tick `json:"tick"`
	Sent bool       `json:"sent"`
}

func (s *Server) addTools() {
	mcp.AddTool(s.srv, &mcp.Tool{Name: ToolObserve, Description: "Your current observation of the world and the tick. With wait=true, waits for the next tick's observation."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in observeIn) (*mcp.CallToolResult, observeOut, error) {
			return nil, s.observe(ctx, in.Wait), nil
		})
	mcp.AddTool(s.srv, &mcp.Tool{Name: ToolAct, Description: "Send your action for the current tick (one per tick)."},
		func(_ context.Context, _ *mcp.CallToolRequest, in actIn) (*mcp.CallToolResult, sentOut, error) {
			if in.Action == nil {
				return nil, sentOut{}, errors.New("act needs an action")
			}
			t, err := s.send(in.Action)
			return nil, sentOut{Tick: t, Sent: err == nil}, err
		})
	var sayTool *world.Tool
	for i := range s.cfg.Kind.Tools {
		wt := s.cfg.Kind.Tools[i]
		if wt.Name == ToolSay {
			sayTool = &wt
			continue
		}
		schema := wt.Input
		if schema == nil {
			schema = map[string]any{"type": "object"}
		}
		s.srv.AddTool(&mcp.Tool{Name: wt.Name, Description: wt.Description, InputSchema: schema},
			func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				in := map[string]any{}
				if len(req.Params.Arguments) > 0 {
					if err := json.Unmarshal(req.Params.Arguments, &in); err != nil {
						return toolError(fmt.Errorf("%s: the input must be a JSON object: %w", wt.Name, err)), nil
					}
				}
				in["do"] = wt.Name
				t, err := s.send(in)
				if err != nil {
					return toolError(err), nil
				}
				return text(fmt.Sprintf("%s sent as your action for tick %d", wt.Name, t)), nil
			})
	}
	desc := "Say something to the others, through the world (who hears it is the world's rule)."
	if sayTool != nil && sayTool.Description != "" {
		desc = sayTool.Description
	}
	mcp.AddTool(s.srv, &mcp.Tool{Name: ToolSay, Description: desc},
		func(_ context.Context, _ *mcp.CallToolRequest, in sayIn) (*mcp.CallToolResult, sentOut, error) {
			if sayTool == nil {
				return nil, sentOut{}, fmt.Errorf("this world (%q) has no say: its agents cannot message each other", s.cfg.Kind.Name)
			}
			act := map[string]any{"do": ToolSay, "text": in.Text}
			if in.To != "" {
				act["to"] = in.To
			}
			t, err := s.send(act)
			return nil, sentOut{Tick: t, Sent: err == nil}, err
		})
}

func (s *Server) observe(ctx context.Context, wait bool) observeOut {
	deadline := time.NewTimer(s.cfg.WaitLimit)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch, have, last, over := s.newObs, s.have, s.last, s.over
		fresh := have && last.Tick > s.seen
		if have && (!wait || fresh || over) {
			s.seen = last.Tick
			out := observeOut{Tick: last.Tick, Acted: s.acted >= last.Tick && s.acted > 0, RunOver: over}
			if err := json.Unmarshal(last.Data, &out.Observation); err != nil {
				out.Observation = string(last.Data) // not JSON: given as text
			}
			if !last.Deadline.IsZero() {
				d := last.Deadline
				out.Deadline = &d
			}
			s.mu.Unlock()
			return out
		}
		s.mu.Unlock()
		if over {
			return observeOut{RunOver: true, Note: "the run is over"}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return observeOut{Note: "cancelled while waiting for an observation"}
		case <-deadline.C:
			return observeOut{Tick: last.Tick, Note: fmt.Sprintf("no new observation within %s", s.cfg.WaitLimit)}
		}
	}
}

// send sends action for the newest observation's tick.
func (s *Server) send(action any) (world.Tick, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.over:
		return 0, errors.New("the run is over: no more actions")
	case !s.have:
		return 0, errors.New("no observation yet: the first tick has not started (call observe with wait=true)")
	case s.acted >= s.last.Tick:
		return s.last.Tick, fmt.Errorf("you already acted at tick %d: one action per tick; wait for the next observation (observe with wait=true)", s.last.Tick)
	}
	t := s.last.Tick
	if err := s.a.Act(t, action); err != nil {
		return t, fmt.Errorf("send action for tick %d: %w", t, err)
	}
	s.acted = t
	s.log.Debug("action sent", "tick", t)
	return t, nil
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func toolError(err error) *mcp.CallToolResult {
	r := text(err.Error())
	r.IsError = true
	return r
}

// Main serves the agent whose settings are in the environment over stdio.
// It is the builtin program BuiltinName and `terrarium mcp`.
func Main(ctx context.Context, a *sdk.Agent) error {
	kind, _ := world.LookupKind(os.Getenv(EnvWorldKind))
	log := hclog.New(&hclog.LoggerOptions{Name: "mcp", Output: os.Stderr, Level: hclog.Info, Color: hclog.ColorOff})
	return New(a, Config{Kind: kind, Logger: log}).Run(ctx, &mcp.StdioTransport{})
}

func init() { builtin.Register(BuiltinName, Main) }
