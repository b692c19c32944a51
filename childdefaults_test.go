package terrarium_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/builtin"
)

// A Go program run as a nats-runtime agent gets GOMAXPROCS=1 (the child
// default for Go agents) unless the scenario's env passes the host's.
func TestGoAgentsGetOneP(t *testing.T) {
	t.Setenv("GOMAXPROCS", "7")
	dir := openTempDir(t)
	exe, err := builtin.InstallExecutable("", filepath.Join(dir, "go-agent")) // this test binary: a Go program
	if err != nil {
		t.Fatal(err)
	}
	sc := writeScenario(t, `
scenario "gomaxprocs" { ticks = 2 }
world "repeated_game" { rounds = 2 }
agent "plain" {
  runtime = "nats"
  command = "`+exe+`"
}
agent "own" {
  runtime = "nats"
  command = "`+exe+`"
  env     = ["GOMAXPROCS"]
}
`)
	env := map[string]string{agents.EnvBuiltin: "test_print_env"} // a nats agent that prints its environment
	for k, v := range raceEnv {
		env[k] = v
	}
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: testLogger(t), Dir: filepath.Join(dir, "run"), Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := h.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	read := func(id string) string {
		b, err := os.ReadFile(filepath.Join(res.Dir, "logs", id+".log"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if plain := read("plain"); !strings.Contains(plain, "env GOMAXPROCS=1: ") {
		t.Errorf("a Go agent did not get GOMAXPROCS=1:\n%s", plain)
	}
	if own := read("own"); !strings.Contains(own, "env GOMAXPROCS=7: ") {
		t.Errorf("a Go agent whose scenario passes GOMAXPROCS did not get the host's 7:\n%s", own)
	}
}
