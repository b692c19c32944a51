package scenarios_test

import (
	"fmt"

	"github.com/terrarium-sim/terrarium/scenarios"
)

// A game declares its agents in Go, with the options a scenario file has;
// Check holds it to the file's rules and renders it as a scenario file.
func ExampleNew() {
	sc := scenarios.New("arena").Realtime(30)
	sc.Ticks = 600
	guard := scenarios.NewAgent("guard", scenarios.RuntimeBuiltin, "test_prog")
	guard.Count, guard.Restart, guard.MaxTurns = 2, scenarios.RestartOnFailure, 500
	crowd := scenarios.NewAgent("crowd", scenarios.RuntimeInProc, "wanderer")
	crowd.Count = 1000
	sc.Add(guard, crowd)
	if err := sc.Check(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(sc.Seats()), "seats")
	fmt.Print(string(sc.Source))
	// Output:
	// 1002 seats
	// scenario "arena" {
	//   seed            = 1
	//   stepping        = "realtime"
	//   ticks           = 600
	//   action_deadline = "5s"
	//   missing_action  = "default"
	//   ready_timeout   = "30s"
	//   tick_rate       = 30
	//   max_catch_up    = 3
	// }
	//
	// # world: supplied by the embedding program
	//
	// agent "guard" {
	//   runtime        = "builtin"
	//   command        = "test_prog"
	//   count          = 2
	//   restart        = "on-failure"
	//   max_restarts   = 5
	//   restart_window = "1m0s"
	//   restart_delay  = "200ms"
	//   max_turns      = 500
	// }
	//
	// agent "crowd" {
	//   runtime = "inproc"
	//   command = "wanderer"
	//   count   = 1000
	// }
}
