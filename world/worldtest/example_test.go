package worldtest_test

import (
	"fmt"
	"time"

	"github.com/terrarium-sim/terrarium/world/worldtest"
)

// The manual clock moves only when the test says so; its timers fire on
// Advance.
func ExampleManualClock() {
	c := worldtest.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tm := c.NewTimer(50 * time.Millisecond)
	c.Advance(30 * time.Millisecond)
	select {
	case <-tm.C():
		fmt.Println("fired early")
	default:
		fmt.Println("pending:", len(c.Timers()))
	}
	c.Advance(20 * time.Millisecond)
	fmt.Println("fired at", (<-tm.C()).Format("15:04:05.000"))
	// Output:
	// pending: 1
	// fired at 00:00:00.050
}
