package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docCommands returns the terrarium command lines of a Markdown file's sh
// blocks, in order, without their comments.
func docCommands(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cmds [][]string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case !in && trimmed == "```sh":
			in = true
		case in && trimmed == "```":
			in = false
		case in && strings.HasPrefix(trimmed, "terrarium "):
			cmd, _, _ := strings.Cut(trimmed, "#")
			cmds = append(cmds, strings.Fields(cmd)[1:])
		}
	}
	return cmds
}

// Every command of docs/reproducibility.md runs as written, in order, at
// the root of a clone (here: a directory with the repository's
// scenarios/), and does what the text says.
func TestReproducibilityDocCommands(t *testing.T) {
	cmds := docCommands(t, filepath.Join("..", "..", "docs", "reproducibility.md"))
	if len(cmds) < 5 {
		t.Fatalf("found %d commands in docs/reproducibility.md: the test must be reading it wrong", len(cmds))
	}
	scenariosDir, err := filepath.Abs(filepath.Join("..", "..", "scenarios"))
	if err != nil {
		t.Fatal(err)
	}
	root := openDir(t)
	if err := os.Symlink(scenariosDir, filepath.Join(root, "scenarios")); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range cmds {
		cmd, stdout, stderr := cli(t, append([]string{args[0], "--quiet"}, args[1:]...)...)
		if args[0] == "replay" {
			cmd, stdout, stderr = cli(t, args...) // replay has no --quiet
		}
		cmd.Path, cmd.Dir = exe, root
		if code := exitCode(t, cmd.Run()); code != 0 {
			t.Fatalf("terrarium %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
		}
	}
	base := readFinal(t, filepath.Join(root, "runs", "base"))
	fork := readFinal(t, filepath.Join(root, "runs", "tft-defects"))
	if base.Status != "finished" || base.Ticks != 200 || fork.Status != "finished" || fork.Ticks != 200 || fork.StateHash == base.StateHash {
		t.Errorf("base %s after %d ticks (%.12s), fork %s after %d ticks (%.12s): want both finished at 200, different", base.Status, base.Ticks, base.StateHash, fork.Status, fork.Ticks, fork.StateHash)
	}
	if b, err := os.ReadFile(filepath.Join(root, "tick100.json")); err != nil || !strings.Contains(string(b), `"matches"`) {
		t.Errorf("replay --to 100 --state tick100.json: %v", err)
	}
	f, err := os.Open(filepath.Join(root, "sweeps", "axelrod_random", "sweep.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 16 {
		t.Fatalf("sweep.csv: %d rows, %v", len(rows), err)
	}
	for _, r := range rows[1:] {
		if r[2] != "finished" || r[3] != "200" {
			t.Errorf("sweep.csv row %v: want finished after 200 ticks", r)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "sweeps", "axelrod_random", "payoff_t=5.5", "seed-5", "result.json")); err != nil {
		t.Error(err)
	}
}
