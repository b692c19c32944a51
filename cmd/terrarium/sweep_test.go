package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sweepScenario = `
variable "strategy" { default = "tit_for_tat" }
scenario "sw" {
  ticks         = 3
  ready_timeout = "20s"
}
world "repeated_game" { rounds = 3 }
agent "me" {
  # "false": a program that exits at once, the deliberately failing value.
  runtime = var.strategy == "false" ? "nats" : "builtin"
  command = var.strategy == "false" ? "/bin/false" : var.strategy
}
agent "random" {
  runtime = "builtin"
  command = "random"
}
`

// sweepCLI runs terrarium sweep in dir (the default layout is relative to
// the working directory) and returns its exit code, stdout and stderr.
func sweepCLI(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd, stdout, stderr := cli(t, append([]string{"sweep"}, args...)...)
	cmd.Path, cmd.Dir = exe, dir
	code := exitCode(t, cmd.Run())
	return code, stdout.String(), stderr.String()
}

// terrarium sweep: a value that fails and one the scenario refuses are
// reported and the others go on (exit 1); progress goes to stderr, one
// line per run; the runs are in sweeps/<scenario>/<var=value>/seed-<n>/;
// the summary counts what ran, what the scenario refused and what was
// done before; a second invocation runs nothing new. Bad flags exit 2.
func TestSweepCLI(t *testing.T) {
	dir := openDir(t)
	if err := os.WriteFile(filepath.Join(dir, "sw.hcl"), []byte(sweepScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--var", "strategy=pavlov", "--seeds", "3..1", "sw.hcl"}, `--seeds "3..1"`},
		{[]string{"--var", "nope=1,2", "sw.hcl"}, `declares no variable "nope"`},
		{[]string{"--var", "strategy", "sw.hcl"}, "want name=v1,v2"},
		{[]string{"--seeds", "1"}, "give exactly one scenario file"},
		{[]string{"--var", "strategy=pavlov,,grudger", "sw.hcl"}, "empty value"},
		{[]string{"--var", "strategy=pavlov,pavlov", "sw.hcl"}, `names the value "pavlov" twice`},
		{[]string{"--var", "strategy=pavlov", "--var", "strategy=grudger", "sw.hcl"}, "strategy is given twice"},
		{[]string{"--seeds", "1,1", "sw.hcl"}, "seed 1 is given twice"},
		{[]string{"--parallel", "0", "sw.hcl"}, "--parallel 0"},
	} {
		code, _, stderr := sweepCLI(t, dir, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("sweep %v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, exitUsage, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "sweeps")); !os.IsNotExist(err) {
		t.Fatalf("a refused sweep left sweeps/ behind: %v", err)
	}

	args := []string{"--var", "strategy=pavlov,false,no_such_strategy", "--seeds", "1..2", "--parallel", "2", "sw.hcl"}
	code, stdout, stderr := sweepCLI(t, dir, args...)
	if code != exitFailed {
		t.Fatalf("sweep with failing values: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitFailed, stdout, stderr)
	}
	out := filepath.Join("sweeps", "sw")
	wantSummary := "sweep " + out + ": 6 points (4 run now, 2 refused by the scenario, 0 done before), 4 failed; table in " + out + "/sweep.csv\n"
	if stdout != wantSummary {
		t.Errorf("summary %q, want %q", stdout, wantSummary)
	}
	// Progress: one line when the refused points are counted, then one per run.
	var progress []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "runs ") {
			progress = append(progress, l)
		}
	}
	if len(progress) != 5 || !strings.HasPrefix(progress[0], "runs 2/6 (2 failed, 0 done before)") || !strings.HasPrefix(progress[4], "runs 6/6 (4 failed, 0 done before)  ticks 6/12") {
		t.Errorf("progress lines %q", progress)
	}
	for _, p := range []string{"strategy=false/seed-1", "strategy=false/seed-2", "strategy=no_such_strategy/seed-1", "strategy=no_such_strategy/seed-2"} {
		if !strings.Contains(stderr, filepath.Join(out, p)+": failed: ") {
			t.Errorf("stderr does not report %s as failed:\n%s", p, stderr)
		}
	}
	for p, file := range map[string]string{
		"strategy=pavlov/seed-1": "result.json", "strategy=pavlov/seed-2": "result.json",
		"strategy=false/seed-1": "result.json", "strategy=no_such_strategy/seed-2": "failed.json",
	} {
		if _, err := os.Stat(filepath.Join(dir, out, p, file)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	f, err := os.Open(filepath.Join(dir, out, "sweep.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 7 || rows[0][0] != "strategy" || rows[1][2] != "finished" || rows[3][2] != "failed" {
		t.Errorf("sweep.csv: %v %v", rows, err)
	}
	before := snapshotFiles(t, filepath.Join(dir, out))

	code, stdout, _ = sweepCLI(t, dir, args...)
	if code != exitFailed || stdout != "sweep "+out+": 6 points (0 run now, 0 refused by the scenario, 6 done before), 4 failed; table in "+out+"/sweep.csv\n" {
		t.Errorf("second invocation: exit %d, %q", code, stdout)
	}
	after := snapshotFiles(t, filepath.Join(dir, out))
	for name, b := range before {
		if after[name] != b {
			t.Errorf("the second invocation changed %s", name)
		}
	}
	if len(after) != len(before) {
		t.Errorf("the second invocation made %d files, had %d", len(after), len(before))
	}
}

// snapshotFiles reads every regular file under dir (by relative path).
func snapshotFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
