// Command terrarium runs multi-agent simulations described by scenario files.
//
//	terrarium run scenarios/axelrod.hcl
//	terrarium validate scenarios/*.hcl
//	terrarium version
//
// Exit codes: 0 ok, 1 the run failed, 2 bad usage or scenario, 130 interrupted.
package main

import (
	"os"

	"github.com/terrarium-sim/terrarium/agents/builtin"
)

func main() {
	builtin.Main() // the builtin runtime re-executes this binary as an agent
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}
