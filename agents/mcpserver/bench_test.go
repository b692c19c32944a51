package mcpserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/world"
)

// The per-tick cost of the MCP hop: observation published by the host ->
// (observe with wait, then act, through an MCP session) -> action at the
// host, against the same round trip by a Go SDK agent acting directly.
func BenchmarkTickThroughMCP(b *testing.B) {
	f := newBenchFixture(b)
	cs := f.session("a", world.Kind{})
	ctx := context.Background()
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		f.observe("a", world.Tick(i), `{"n":1}`)
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "observe", Arguments: map[string]any{"wait": true}}); err != nil {
			b.Fatal(err)
		}
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "act", Arguments: map[string]any{"action": map[string]any{"x": i}}}); err != nil {
			b.Fatal(err)
		}
		<-f.acts
	}
}

func BenchmarkTickDirect(b *testing.B) {
	f := newBenchFixture(b)
	creds, err := f.srv.AddAgent("a")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := sdk.Connect(ctx, sdk.WithEnv(map[string]string{
		agents.EnvNATSURL: f.srv.ClientURL(), agents.EnvNATSUser: creds.User, agents.EnvNATSPass: creds.Password,
		agents.EnvInboxPrefix: creds.InboxPrefix, agents.EnvRun: run, agents.EnvAgentID: "a",
	}))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		f.observe("a", world.Tick(i), `{"n":1}`)
		o := <-a.Observations()
		if err := a.Act(o.Tick, map[string]any{"x": i}); err != nil {
			b.Fatal(err)
		}
		<-f.acts
	}
}
