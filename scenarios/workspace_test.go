package scenarios_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/scenarios"
)

const wsBase = `scenario "s" {}
world "test_kind" {}
agent "solo" {
  command = "./bot"
}
`

func TestWorkspaceBlock(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed")
	if err := os.Mkdir(seed, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "s.hcl")
	src := strings.Replace(wsBase, `command = "./bot"`, `command = "`+testdataBot(t)+`"`, 1) +
		"workspace {\n  enforcement = \"detect\"\n  seed = \"seed\"\n  lease_ttl = \"3s\"\n  lock_delay = \"100ms\"\n}\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	s, diags := scenarios.Load(path)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := scenarios.Workspace{Enforcement: "detect", Seed: seed, LeaseTTL: 3 * time.Second, LockDelay: 100 * time.Millisecond}
	if s.Workspace != want {
		t.Fatalf("Workspace = %+v, want %+v", s.Workspace, want)
	}
}

func TestWorkspaceBlockErrors(t *testing.T) {
	src := strings.Replace(wsBase, `command = "./bot"`, `command = "`+testdataBot(t)+`"`, 1) + `workspace {
  enforcement = "locks"
  seed        = "no-such-dir"
  lease_ttl   = "forever"
}
workspace {}
`
	_, diags := scenarios.Parse([]byte(src), "ws.hcl")
	var all []string
	for _, d := range diags {
		all = append(all, d.Subject.String()+": "+d.Detail+" "+d.Summary)
	}
	got := strings.Join(all, "\n")
	for _, want := range []string{"ws.hcl:7", "enforcement must be one of", "ws.hcl:8", "seed directory", "ws.hcl:9", "lease_ttl must be", "ws.hcl:11", "Duplicate workspace block"} {
		if !strings.Contains(got, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, got)
		}
	}
}
