// Package builtin holds the reference agents the terrarium binary runs when
// it re-executes itself (the "builtin" runtime): the tournament strategies and
// the test doubles. Programs register at init; Main runs the one the host asked for.
package builtin

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/terrarium-sim/terrarium/agents/sdk"
)

// Program is a reference agent. It runs on a connected SDK agent until the
// run ends or ctx is done. Most programs are Respond(handler).
type Program func(ctx context.Context, a *sdk.Agent) error

var (
	mu       sync.RWMutex
	programs = map[string]Program{}
)

// Register makes a program available under name. It panics on a duplicate.
func Register(name string, p Program) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := programs[name]; dup {
		panic(fmt.Sprintf("builtin: %q registered twice", name))
	}
	programs[name] = p
}

// Lookup returns the program registered under name.
func Lookup(name string) (Program, bool) {
	mu.RLock()
	defer mu.RUnlock()
	p, ok := programs[name]
	return p, ok
}

// Names lists the registered programs, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	n := make([]string, 0, len(programs))
	for k := range programs {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Respond makes a program that answers every observation with h's action.
func Respond(h sdk.Handler) Program {
	return func(ctx context.Context, a *sdk.Agent) error { return a.Run(ctx, h) }
}
