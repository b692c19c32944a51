package bustest

import (
	"testing"

	"github.com/terrarium-sim/terrarium/internal/leaktest"
)

// CheckGoroutines fails the test if goroutines started after this call are
// still running once the test and its other cleanups are done; call it first
// in the test. See leaktest.Goroutines.
func CheckGoroutines(t testing.TB) {
	t.Helper()
	leaktest.Goroutines(t)
}
