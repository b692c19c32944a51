package agents

import (
	"os"
	"path/filepath"
	"testing"
)

func TestIsGoProgram(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !IsGoProgram(exe) {
		t.Errorf("the test binary %s is a Go program", exe)
	}
	script := filepath.Join(t.TempDir(), "agent.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{script, "/bin/sh", filepath.Join(t.TempDir(), "missing")} {
		if IsGoProgram(p) {
			t.Errorf("%s is not a Go program", p)
		}
	}
}

func TestAddGoDefaults(t *testing.T) {
	vars := map[string]string{}
	AddGoDefaults(vars, nil, nil)
	if vars["GOMAXPROCS"] != "1" {
		t.Errorf("GOMAXPROCS %q, want 1", vars["GOMAXPROCS"])
	}
	vars = map[string]string{}
	AddGoDefaults(vars, nil, []string{"GOMAXPROCS"}) // the scenario passes the host's
	if _, set := vars["GOMAXPROCS"]; set {
		t.Errorf("GOMAXPROCS set although the scenario's env names it")
	}
	vars = map[string]string{"GOMAXPROCS": "4"} // given by the embedding program
	AddGoDefaults(vars, map[string]string{"GOMAXPROCS": "4"}, nil)
	if vars["GOMAXPROCS"] != "4" {
		t.Errorf("GOMAXPROCS %q, want the embedding program's 4", vars["GOMAXPROCS"])
	}
}
