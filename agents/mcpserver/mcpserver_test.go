package mcpserver_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/mcpserver"
	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/bus/bustest"
	"github.com/terrarium-sim/terrarium/internal/leaktest"
	"github.com/terrarium-sim/terrarium/world"
)

const run = "mcptest"

// fixture is a real bus with a host connection that answers hellos and
// records actions by subject, and one MCP session per agent.
type fixture struct {
	t    testing.TB
	srv  *bus.Server
	host *nats.Conn
	acts chan *nats.Msg
}

func newFixture(t *testing.T) *fixture {
	leaktest.Goroutines(t)
	return newBenchFixture(t)
}

func newBenchFixture(t testing.TB) *fixture {
	f := &fixture{t: t, srv: bustest.NewServer(t, run), acts: make(chan *nats.Msg, 64)}
	nc, err := f.srv.Connect("host")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	f.host = nc
	if _, err := nc.Subscribe(bus.AllAgents(run, bus.KindHello), func(m *nats.Msg) {
		ack, _ := bus.Encode(bus.Envelope{Kind: bus.KindHello, Run: run})
		_ = m.Respond(ack)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe(bus.AllAgents(run, bus.KindAct), func(m *nats.Msg) { f.acts <- m }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return f
}

// session starts agent id's MCP server (connected with its own bus
// credentials) and returns a client session to it.
func (f *fixture) session(id string, kind world.Kind) *mcp.ClientSession {
	t := f.t
	creds, err := f.srv.AddAgent(id)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := sdk.Connect(ctx, sdk.WithEnv(map[string]string{
		agents.EnvNATSURL: f.srv.ClientURL(), agents.EnvNATSUser: creds.User, agents.EnvNATSPass: creds.Password,
		agents.EnvInboxPrefix: creds.InboxPrefix, agents.EnvRun: run, agents.EnvAgentID: id,
	}))
	if err != nil {
		t.Fatal(err)
	}
	st, ct := mcp.NewInMemoryTransports()
	sctx, scancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- mcpserver.New(a, mcpserver.Config{Kind: kind, WaitLimit: 5 * time.Second}).Run(sctx, st)
	}()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test"}, nil).Connect(context.Background(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.Close()
		scancel()
		if err := <-done; err != nil {
			t.Errorf("server %s: %v", id, err)
		}
		_ = a.Close()
	})
	return cs
}

func (f *fixture) observe(id string, tick world.Tick, obs string) {
	b, err := bus.Encode(bus.Envelope{Kind: bus.KindObs, Run: run, Agent: id, Tick: uint64(tick), Data: json.RawMessage(obs)})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.host.Publish(bus.ToSubject(run, id, bus.KindObs), b); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) nextAct() (subject string, env bus.Envelope) {
	f.t.Helper()
	select {
	case m := <-f.acts:
		e, err := bus.Decode(m.Data, run)
		if err != nil {
			f.t.Fatal(err)
		}
		return m.Subject, e
	case <-time.After(10 * time.Second):
		f.t.Fatal("no action reached the host")
	}
	return "", bus.Envelope{}
}

func call(t *testing.T, cs *mcp.ClientSession, tool string, args any) (string, bool) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", tool, err)
	}
	var sb strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			sb.WriteString(tc.Text)
		}
	}
	return sb.String(), res.IsError
}

var townish = world.Kind{Name: "townish", Tools: []world.Tool{
	{Name: "say", Description: "say it"},
	{Name: "move", Description: "go somewhere", Input: map[string]any{"type": "object", "properties": map[string]any{"to": map[string]any{"type": "string"}}}},
}}

func TestToolsActAsTheirOwnAgentOnly(t *testing.T) {
	f := newFixture(t)
	a := f.session("a", townish)
	b := f.session("b", world.Kind{Name: "plain"})

	tools, err := a.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	if got := strings.Join(names, ","); !strings.Contains(got, "observe") || !strings.Contains(got, "act") || !strings.Contains(got, "say") || !strings.Contains(got, "move") {
		t.Fatalf("tools %s, want observe, act, say and the world's move", got)
	}
	for _, lt := range mcpserver.LeaseTools {
		if !strings.Contains(","+strings.Join(names, ",")+",", ","+lt+",") {
			t.Errorf("tools %v lack %s", names, lt)
		}
	}
	if got, want := len(mcpserver.Tools(townish)), len(names); got != want {
		t.Errorf("Tools(kind) names %d tools, the server offers %d", got, want)
	}

	if out, isErr := call(t, a, "act", map[string]any{"action": map[string]any{"x": 1}}); !isErr || !strings.Contains(out, "no observation yet") {
		t.Errorf("act before any observation: %q (error %v), want a refusal", out, isErr)
	}
	f.observe("a", 1, `{"here":"square"}`)
	out, _ := call(t, a, "observe", map[string]any{"wait": true})
	if !strings.Contains(out, `"tick":1`) || !strings.Contains(out, "square") {
		t.Fatalf("observe = %s, want tick 1 and its observation", out)
	}
	// No tool takes an agent: naming one is refused by the schema.
	if out, isErr := call(t, a, "act", map[string]any{"action": map[string]any{"x": 1}, "agent": "b"}); !isErr || !strings.Contains(out, "agent") {
		t.Errorf("act naming agent b: %q (error %v), want the argument refused", out, isErr)
	}
	if out, isErr := call(t, a, "act", map[string]any{"action": map[string]any{"x": 1}}); isErr {
		t.Fatalf("act: %s", out)
	}
	subj, env := f.nextAct()
	if subj != bus.AgentSubject(run, "a", bus.KindAct) || env.Agent != "a" || env.Tick != 1 {
		t.Fatalf("action on %s as %q at tick %d, want a's subject, agent a, tick 1", subj, env.Agent, env.Tick)
	}
	if out, isErr := call(t, a, "move", map[string]any{"to": "market"}); !isErr || !strings.Contains(out, "already acted at tick 1") {
		t.Errorf("second action at tick 1: %q (error %v), want a refusal", out, isErr)
	}
	f.observe("a", 2, `{"here":"square"}`)
	call(t, a, "observe", map[string]any{"wait": true})
	if out, isErr := call(t, a, "move", map[string]any{"to": "market"}); isErr {
		t.Fatalf("move: %s", out)
	}
	_, env = f.nextAct()
	var act map[string]any
	_ = json.Unmarshal(env.Data, &act)
	if act["do"] != "move" || act["to"] != "market" || env.Tick != 2 {
		t.Errorf("world tool sent %s at tick %d, want {do: move, to: market} at 2", env.Data, env.Tick)
	}

	// b's world has no say: refused, and nothing is sent.
	f.observe("b", 1, `{}`)
	call(t, b, "observe", map[string]any{"wait": true})
	if out, isErr := call(t, b, "say", map[string]any{"text": "hi"}); !isErr || !strings.Contains(out, "has no say") {
		t.Errorf("say without a world say: %q (error %v), want a refusal", out, isErr)
	}
	select {
	case m := <-f.acts:
		t.Errorf("unexpected action on %s", m.Subject)
	default:
	}
}

// observe with wait returns when the next observation comes, and never
// waits past its limit.
func TestObserveWaitsForTheNextTick(t *testing.T) {
	f := newFixture(t)
	a := f.session("a", world.Kind{})
	f.observe("a", 1, `{"n":1}`)
	call(t, a, "observe", map[string]any{"wait": true})
	go func() {
		time.Sleep(50 * time.Millisecond) // the tool call is waiting by then, or not yet started: both must work
		f.observe("a", 2, `{"n":2}`)
	}()
	out, _ := call(t, a, "observe", map[string]any{"wait": true})
	if !strings.Contains(out, `"tick":2`) {
		t.Fatalf("observe(wait) = %s, want tick 2", out)
	}
}
