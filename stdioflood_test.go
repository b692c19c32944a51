package terrarium_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Case 6, the stdio half: an agent that writes 10 MB without a newline is
// cut at the line limit, the rest discarded and counted in result.json;
// the other agent loses no tick.
func TestStdioFloodIsCountedInResult(t *testing.T) {
	sc := writeScenario(t, `
scenario "stdio_flood" {
  ticks           = 4
  action_deadline = "10s"
}
world "repeated_game" {
  rounds = 4
}
agent "flood" {
  runtime = "stdio"
  command = "/bin/sh"
  args    = ["-c", <<-EOT
    head -c 10000000 /dev/zero | tr '\000' x; echo
    while read -r line; do
      case "$line" in *'"type":"obs"'*) ;; *) continue ;; esac
      tick=$(printf '%s' "$line" | sed 's/.*"tick":\([0-9]*\).*/\1/')
      printf '{"type":"act","tick":%s,"data":{"moves":{"m01":"C"}}}\n' "$tick"
    done
    EOT
  ]
}
agent "honest" {
  runtime = "builtin"
  command = "tit_for_tat"
}
`)
	res, _, err := runScenario(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	if h := agentResult(t, res, "honest"); h.Actions != 4 || h.Missing != 0 {
		t.Errorf("honest agent %+v: the flood must not cost it a tick", h.AgentStats)
	}
	if f := agentResult(t, res, "flood"); f.Actions != 4 {
		t.Errorf("flood agent %+v: it goes on acting after its long line", f.AgentStats)
	}
	// As written on disk, not only in memory.
	b, err := os.ReadFile(filepath.Join(res.Dir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	var disk struct {
		Agents []struct {
			ID    string `json:"id"`
			Stdio *struct {
				Obs       uint64 `json:"obs"`
				Acts      uint64 `json:"acts"`
				LongLines uint64 `json:"long_lines"`
			} `json:"stdio"`
		} `json:"agents"`
	}
	if err := json.Unmarshal(b, &disk); err != nil {
		t.Fatal(err)
	}
	for _, a := range disk.Agents {
		if a.ID != "flood" {
			continue
		}
		if a.Stdio == nil || a.Stdio.LongLines != 1 || a.Stdio.Obs != 4 || a.Stdio.Acts != 4 {
			t.Errorf("flood agent stdio counts %+v, want 4 observations, 4 acts and the one long line counted", a.Stdio)
		}
		return
	}
	t.Fatal("no flood agent in result.json")
}
