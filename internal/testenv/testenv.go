// Package testenv decides what a test does when the machine lacks
// something it needs (root, cgroups, a program that .ci/deps/ installs):
// on a developer's machine it skips, saying what is missing and how to get
// it; in CI (CI=true, which .ci/run exports) it fails, because CI runs as
// root with every dependency installed and must run every test.
//
// Skips that are opt-in (a test that runs only when a variable asks for
// it) are not for this package: they skip everywhere.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// CI reports whether the tests run in CI: the environment variable CI is
// "true".
func CI() bool { return os.Getenv("CI") == "true" }

// Missing skips t (fails it under CI) because the environment lacks what
// it needs; the message says what, and how to get it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("%s (CI=true: CI must run this test)", msg)
	}
	t.Skip(msg)
}
