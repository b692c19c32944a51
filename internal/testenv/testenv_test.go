package testenv_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/internal/testenv"
)

// The helper test: it runs only when the test below starts it.
func TestMissingHelper(t *testing.T) {
	if os.Getenv("TESTENV_HELPER") != "1" {
		t.Skip("run by TestMissingSkipsOrFailsUnderCI")
	}
	testenv.Missing(t, "no %s here", "widget")
	t.Error("Missing returned")
}

// Missing skips on a developer's machine and fails with CI=true.
func TestMissingSkipsOrFailsUnderCI(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{"", false, "--- SKIP: TestMissingHelper"},
		{"false", false, "--- SKIP: TestMissingHelper"},
		{"true", true, "--- FAIL: TestMissingHelper"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingHelper$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_HELPER=1", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if (err != nil) != tc.wantFail || !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "no widget here") {
			t.Errorf("CI=%q: error %v, want failure %v, output containing %q:\n%s", tc.ci, err, tc.wantFail, tc.want, out)
		}
	}
}
