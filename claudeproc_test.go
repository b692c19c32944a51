package terrarium_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/llmtest"
	"github.com/terrarium-sim/terrarium/agents/mcpserver"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/world"
)

// procView is what /proc says of a running process.
type procView struct {
	exe  string
	argv []string
	env  map[string]string
}

func readProc(pid int) (procView, error) {
	var v procView
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return v, err
	}
	v.exe = exe
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return v, err
	}
	v.argv = strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return v, err
	}
	v.env = map[string]string{}
	for _, kv := range bytes.Split(env, []byte{0}) {
		if k, val, ok := strings.Cut(string(kv), "="); ok {
			v.env[k] = val
		}
	}
	return v, nil
}

// argAfter is the argument following flag in argv ("" if none).
func argAfter(argv []string, flag string) string {
	i := slices.Index(argv, flag)
	if i < 0 || i+1 >= len(argv) {
		return ""
	}
	return argv[i+1]
}

// The claude processes the host starts, as the kernel sees them while they
// run (/proc/<pid>/cmdline and environ, read when each first calls the
// model): print mode with stream-json both ways, our MCP config only
// (--strict-mcp-config; the file names one server, ours), the allowed tools
// (ours plus the block's), the permission mode and model, each agent its
// own CLAUDE_CONFIG_DIR in its own workspace, no nonessential traffic, and
// no bus credentials in the CLI's environment.
func TestClaudeProcessArgvAndEnv(t *testing.T) {
	cli := claudeCLI(t)
	var mu sync.Mutex
	seen := map[string]procView{}
	var dir string
	look := func(id string) llmtest.Script {
		play := pdPlayer("C")
		return func(c *llmtest.Call) llmtest.Reply {
			mu.Lock()
			if _, ok := seen[id]; !ok {
				recs, _ := events.ReadFile(filepath.Join(dir, "events.jsonl"))
				for _, r := range recs {
					if r.Kind == events.AgentSpawned && string(r.Agent) == id {
						pid := int(data(r)["pid"].(float64))
						v, err := readProc(pid)
						if err != nil {
							t.Errorf("%s: /proc/%d: %v", id, pid, err)
						}
						seen[id] = v
					}
				}
			}
			mu.Unlock()
			return play(c)
		}
	}
	srv := startLLM(t, map[string]llmtest.Script{"x": look("x"), "y": look("y")})
	sc := writeScenario(t, fmt.Sprintf(`
scenario "llm_argv" {
  ticks           = 1
  action_deadline = "60s"
  ready_timeout   = "60s"
}
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 1
}
agent "x" {
  runtime       = "claude"
  command       = %q
  allowed_tools = ["Read"]
  model         = "claude-haiku-4-5"
}
agent "y" {
  runtime = "claude"
  command = %q
}
`, cli, cli))
	dir = filepath.Join(openTempDir(t), "run")
	res, _, err := runLLM(t, sc, srv, func(c *terrarium.Config) { c.Dir = dir })
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	kind, _ := world.LookupKind("repeated_game")
	var ours []string
	for _, tool := range mcpserver.Tools(kind) {
		ours = append(ours, mcpserver.ToolName(tool))
	}
	cliReal, _ := filepath.EvalSymlinks(cli)
	configs := map[string]bool{}
	for _, id := range []string{"x", "y"} {
		v, ok := seen[id]
		if !ok {
			t.Fatalf("%s: its process was never seen", id)
		}
		ws := filepath.Join(res.Dir, "workspace", "agents", id)
		if v.exe != cliReal {
			t.Errorf("%s: /proc exe %s, want the CLI %s", id, v.exe, cliReal)
		}
		for _, f := range []string{"-p", "--verbose", "--strict-mcp-config"} {
			if !slices.Contains(v.argv, f) {
				t.Errorf("%s: argv lacks %s: %q", id, f, v.argv)
			}
		}
		for flag, want := range map[string]string{
			"--input-format": "stream-json", "--output-format": "stream-json",
			"--mcp-config": filepath.Join(ws, terrarium.MCPConfigFile), "--permission-mode": "dontAsk",
			"--add-dir": filepath.Join(res.Dir, "workspace", "shared"),
		} {
			if got := argAfter(v.argv, flag); got != want {
				t.Errorf("%s: %s %q, want %q", id, flag, got, want)
			}
		}
		wantModel := map[string]string{"x": "claude-haiku-4-5", "y": "claude-sonnet-4-5"}[id]
		if got := argAfter(v.argv, "--model"); got != wantModel {
			t.Errorf("%s: --model %q, want %q", id, got, wantModel)
		}
		tools := strings.Split(argAfter(v.argv, "--allowedTools"), ",")
		want := slices.Clone(ours)
		if id == "x" {
			want = append(want, "Read")
		}
		sort.Strings(tools)
		sort.Strings(want)
		if !slices.Equal(tools, want) {
			t.Errorf("%s: --allowedTools %v, want %v", id, tools, want)
		}
		// The MCP config names our server only.
		b, err := os.ReadFile(filepath.Join(ws, terrarium.MCPConfigFile))
		if err != nil {
			t.Fatal(err)
		}
		var mc struct {
			MCPServers map[string]json.RawMessage `json:"mcpServers"`
		}
		if err := json.Unmarshal(b, &mc); err != nil || len(mc.MCPServers) != 1 || mc.MCPServers[mcpserver.Name] == nil {
			t.Errorf("%s: MCP config %s, want the %q server only", id, b, mcpserver.Name)
		}
		if got := v.env["CLAUDE_CONFIG_DIR"]; got != filepath.Join(ws, terrarium.ClaudeConfigDir) {
			t.Errorf("%s: CLAUDE_CONFIG_DIR %q, want its own %s", id, got, filepath.Join(ws, terrarium.ClaudeConfigDir))
		}
		configs[v.env["CLAUDE_CONFIG_DIR"]] = true
		if v.env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] != "1" {
			t.Errorf("%s: CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=%q, want 1", id, v.env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"])
		}
		for k := range v.env {
			if strings.HasPrefix(k, "TERRARIUM_NATS") || k == "TERRARIUM_INBOX_PREFIX" {
				t.Errorf("%s: the CLI's environment holds %s (only its MCP server gets bus credentials)", id, k)
			}
		}
	}
	if len(configs) != 2 {
		t.Errorf("config directories %v, want one per agent", configs)
	}
}
