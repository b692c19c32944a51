package terrarium_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/terrarium-sim/terrarium/internal/testenv"
)

// The shipped polyglot scenario: Go (SDK), Python over stdio and Node.js
// over NATS in one world, checked against an independent computation.
func TestPolyglotScenario(t *testing.T) {
	nodeAgent(t) // Node.js and the example's modules, or skip (fail under CI=true)
	if _, err := exec.LookPath("python3"); err != nil {
		testenv.Missing(t, "python3 is not installed (run .ci/deps/python.sh)")
	}
	path := filepath.Join("scenarios", "polyglot.hcl")
	// Agents running as their own users must be able to read the example
	// programs: a checkout under a private directory is copied first.
	if os.Geteuid() == 0 && othersCanRead(filepath.Join("agents", "examples", "node", "tit_for_tat.mjs")) != nil {
		root := openTempDir(t)
		for _, d := range []string{"scenarios", filepath.Join("agents", "examples")} {
			if err := os.CopyFS(filepath.Join(root, d), os.DirFS(d)); err != nil {
				t.Fatal(err)
			}
		}
		path = filepath.Join(root, "scenarios", "polyglot.hcl")
	}
	sc := loadScenario(t, path)
	res, _, err := runScenario(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	strategy := map[string]string{
		"go_tit_for_tat": "tit_for_tat", "python_tit_for_tat": "tit_for_tat", "node_tit_for_tat": "tit_for_tat",
		"defector": "defector", "alternator": "alternator",
	}
	names := make([]string, 0, len(strategy))
	for n := range strategy {
		names = append(names, n)
	}
	sort.Strings(names)
	want := map[string]float64{}
	for i, a := range names {
		for _, b := range names[i+1:] {
			sa, sb := playMatch(referenceStrategies[strategy[a]], referenceStrategies[strategy[b]], 50)
			want[a] += sa
			want[b] += sb
		}
	}
	got := scores(t, res)
	for n, w := range want {
		if got[n] != w {
			t.Errorf("%s scored %v, independent computation says %v", n, got[n], w)
		}
	}
	for _, a := range res.Agents {
		if a.Actions != 50 || a.Missing+a.Late+a.Rejected != 0 || a.Status != "stopped" {
			t.Errorf("agent %s: %+v %s, want 50 clean actions and a normal stop", a.ID, a.AgentStats, a.Status)
		}
	}
	if p := agentResult(t, res, "python_tit_for_tat"); p.Stdio == nil || p.Stdio.Obs != 50 || p.Stdio.Acts != 50 || p.Stdio.BadLines != 0 {
		t.Errorf("python agent's stdio bridge: %+v, want 50 observations and 50 actions", p.Stdio)
	}
}
