package mcpserver_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/agents/mcpserver"
	"github.com/terrarium-sim/terrarium/world"
)

// The test binary doubles as `terrarium mcp`: with TERRARIUM_BUILTIN=mcp
// it is the MCP server, as the host's MCP configs start it.
func TestMain(m *testing.M) {
	builtin.Main()
	os.Exit(m.Run())
}

// stdioSession starts agent id's MCP server as a separate process (this
// binary as `terrarium mcp`, connected to the bus over loopback TCP with
// the agent's own credentials) and talks to it over its stdin and stdout,
// as the claude CLI does. It returns the session and the server's pid.
func (f *fixture) stdioSession(id string) (*mcp.ClientSession, int) {
	t := f.t
	creds, err := f.srv.AddAgent(id)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(),
		agents.EnvBuiltin+"="+mcpserver.BuiltinName, "GOMAXPROCS=1",
		agents.EnvNATSURL+"="+f.srv.ClientURL(), agents.EnvNATSUser+"="+creds.User, agents.EnvNATSPass+"="+creds.Password,
		agents.EnvInboxPrefix+"="+creds.InboxPrefix, agents.EnvRun+"="+run, agents.EnvAgentID+"="+id)
	cmd.Stderr = os.Stderr
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs, cmd.Process.Pid
}

// tickOverStdio is one tick through the separate server: the host
// publishes the observation, the client observes (waiting) and acts, the
// action reaches the host.
func (f *fixture) tickOverStdio(cs *mcp.ClientSession, id string, tick world.Tick) error {
	ctx := context.Background()
	f.observe(id, tick, `{"n":1}`)
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: mcpserver.ToolObserve, Arguments: map[string]any{"wait": true}}); err != nil {
		return err
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: mcpserver.ToolAct, Arguments: map[string]any{"action": map[string]any{"x": int(tick)}}})
	if err != nil {
		return err
	}
	if res.IsError {
		return fmt.Errorf("act at tick %d: %v", tick, res.Content)
	}
	select {
	case <-f.acts:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("tick %d: no action reached the host", tick)
	}
}

// The server as the claude CLI runs it: a separate process on a stdio
// pipe; three ticks go through it.
func TestServerProcessOverStdio(t *testing.T) {
	f := newFixture(t)
	cs, _ := f.stdioSession("a")
	for tick := world.Tick(1); tick <= 3; tick++ {
		if err := f.tickOverStdio(cs, "a", tick); err != nil {
			t.Fatal(err)
		}
	}
}

// The MCP hop as it is in a run: the real stdio pipe to a separate server
// process, which is on the bus over loopback TCP. Reports p50 and p99 of a
// tick (observe with wait, act, the action at the host) and the server
// process's resident memory.
func BenchmarkTickThroughMCPStdio(b *testing.B) {
	f := newBenchFixture(b)
	cs, pid := f.stdioSession("a")
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		t0 := time.Now()
		if err := f.tickOverStdio(cs, "a", world.Tick(i)); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(ds[min(len(ds)-1, len(ds)*99/100)].Microseconds()), "p99-µs")
	if kb := rssKB(pid); kb > 0 {
		b.ReportMetric(float64(kb)/1024, "server-RSS-MB")
	}
}

// rssKB is a process's resident set size (VmRSS), 0 if unknown.
func rssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return 0
}
