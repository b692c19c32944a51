package terrarium_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/workspace"
)

// leaseCheckOK is what an mcp client in a lease mode logs when every check
// of its script passed.
const leaseCheckOK = "LEASE-CHECK ok"

// callTool calls a tool; a tool error is returned as an error with its text.
func callTool(ctx context.Context, cs *mcp.ClientSession, name string, args map[string]any) (string, error) {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		return "", fmt.Errorf("call %s: %w", name, err)
	}
	var sb strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			sb.WriteString(tc.Text)
		}
	}
	if res.IsError {
		return sb.String(), &toolErr{sb.String()}
	}
	return sb.String(), nil
}

type toolErr struct{ text string }

func (e *toolErr) Error() string { return "tool error: " + e.text }

var holderToken uint64 // the lease-holder's token (its own process)

// leaseStep plays the lease script of mode at tick, before the tick's act:
//
//   - "lease-holder": tick 1 acquires plan.md, appends a line through the
//     path the tool returned, and commits it with lease_commit (which hashes
//     the file itself); tick 3 releases it.
//   - "lease-thief": tick 2 (while the holder holds plan.md) tries to take
//     plan.md, and to renew, commit and release every token from 1 to 64:
//     all must be refused; a lease_acquire that names another agent is
//     refused by the schema. Then it creates and commits its own file.
//
// Any other mode does nothing.
func leaseStep(ctx context.Context, cs *mcp.ClientSession, mode string, tick uint64) error {
	switch {
	case mode == "lease-holder" && tick == 1:
		out, err := callTool(ctx, cs, "lease_acquire", map[string]any{"path": "plan.md", "wait_ms": 5000})
		if err != nil {
			return err
		}
		var l struct {
			Path, File string
			Token      uint64
		}
		if err := json.Unmarshal([]byte(out), &l); err != nil || l.Token == 0 || l.Path != "plan.md" || !filepath.IsAbs(l.File) {
			return fmt.Errorf("lease_acquire returned %s (%v), want plan.md with a token and its absolute file", out, err)
		}
		holderToken = l.Token
		f, err := os.OpenFile(l.File, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return fmt.Errorf("write the leased file: %w", err)
		}
		_, err = f.WriteString("- the holder brings bread\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write the leased file: %w", err)
		}
		out, err = callTool(ctx, cs, "lease_commit", map[string]any{"token": l.Token})
		if err != nil {
			return err
		}
		if !strings.Contains(out, `"version":2`) {
			return fmt.Errorf("lease_commit returned %s, want version 2 of plan.md", out)
		}
	case mode == "lease-holder" && tick == 3:
		if out, err := callTool(ctx, cs, "lease_release", map[string]any{"token": holderToken}); err != nil {
			return fmt.Errorf("release my own lease: %w (%s)", err, out)
		}
	case mode == "lease-thief" && tick == 2:
		out, err := callTool(ctx, cs, "lease_acquire", map[string]any{"path": "plan.md"})
		if err == nil || !strings.Contains(out, "held") {
			return fmt.Errorf("lease_acquire of the held plan.md: %s (%v), want refused as held", out, err)
		}
		if out, err := callTool(ctx, cs, "lease_acquire", map[string]any{"path": "plan.md", "agent": "holder"}); err == nil || !strings.Contains(out, "agent") {
			return fmt.Errorf("lease_acquire naming the holder: %s (%v), want the argument refused", out, err)
		}
		for tok := 1; tok <= 64; tok++ {
			for _, tool := range []string{"lease_renew", "lease_commit", "lease_release"} {
				out, err := callTool(ctx, cs, tool, map[string]any{"token": tok})
				var te *toolErr
				if !errors.As(err, &te) {
					return fmt.Errorf("%s with token %d, not mine: %s (%v), want a tool error", tool, tok, out, err)
				}
			}
		}
		out, err = callTool(ctx, cs, "lease_create", map[string]any{"path": "thief.md"})
		if err != nil {
			return fmt.Errorf("create my own file: %w", err)
		}
		var l struct{ Token uint64 }
		_ = json.Unmarshal([]byte(out), &l)
		if out, err := callTool(ctx, cs, "lease_release", map[string]any{"token": l.Token}); err != nil {
			return fmt.Errorf("release my own lease: %w (%s)", err, out)
		}
	default:
		return nil
	}
	fmt.Fprintf(os.Stderr, "%s %s tick %d\n", leaseCheckOK, mode, tick)
	return nil
}

// The lease tools over the real host: the holder takes plan.md, edits it
// and commits it through the tools; the thief's endpoint can neither take
// the held file nor use any token but its own (issue 9, test 5's lease
// half); the holder's lease and edit are intact at the end.
func TestMCPLeaseToolsActAsTheirAgentOnly(t *testing.T) {
	bin := testBinary(t)
	seed := filepath.Join(openTempDir(t), "seed")
	if err := os.MkdirAll(seed, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(seed, "plan.md"), []byte("# Plan\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sc := writeScenario(t, fmt.Sprintf(`
scenario "mcp_leases" {
  ticks           = 3
  action_deadline = "60s"
  ready_timeout   = "60s"
}
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 3
}
workspace {
  seed = %q
}
agent "holder" {
  runtime = "mcp"
  command = %q
  args    = [%q, "{mcp_config}", "lease-holder"]
}
agent "thief" {
  runtime = "mcp"
  command = %q
  args    = [%q, "{mcp_config}", "lease-thief"]
}
`, seed, bin, mcpClientArg, bin, mcpClientArg))
	res, recs, err := runScenario(t, sc)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != 3 {
		t.Fatalf("status %s after %d ticks, want finished after 3", res.Status, res.Ticks)
	}
	for id, want := range map[string]int{"holder": 2, "thief": 1} {
		log, _ := os.ReadFile(filepath.Join(res.Dir, "logs", id+".log"))
		if n := strings.Count(string(log), leaseCheckOK); n != want {
			t.Errorf("%s: %d of %d lease steps passed; its log:\n%s", id, n, want, log)
		}
		if ar := agentResult(t, res, id); ar.Actions != 3 {
			t.Errorf("%s: %d actions, want 3", id, ar.Actions)
		}
	}
	b, err := os.ReadFile(filepath.Join(res.Dir, "workspace", "shared", "plan.md"))
	if err != nil || string(b) != "# Plan\n- the holder brings bread\n" {
		t.Errorf("plan.md = %q (%v), want the seed and the holder's line", b, err)
	}
	var refused, released int
	for _, r := range recs {
		switch {
		case r.Kind == workspace.EventLeaseRefused && r.Agent == "thief":
			refused++
		case r.Kind == workspace.EventLeaseReleased && strings.Contains(string(r.Data), `"plan.md"`):
			released++
			if r.Agent != "holder" {
				t.Errorf("plan.md's lease released by %q: %s", r.Agent, r.Data)
			}
		}
	}
	if refused < 1+3*64 { // its own file was created after the loop: no token tried was its own
		t.Errorf("%d lease.refused events for the thief, want its acquire and every foreign token refused", refused)
	}
	if released != 1 {
		t.Errorf("%d releases of plan.md, want the holder's one", released)
	}
}
