package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium/agents/sdk"
)

// PoolProgram is a reference pool (runtime "pool"): it serves a connected
// pool's members until the run ends or ctx is done. Most are
// ServePool(handler).
type PoolProgram func(ctx context.Context, p *sdk.Pool) error

var pools = map[string]PoolProgram{}

func init() {
	// ack-pool answers every member's observation with {"ok":true}: the
	// pool counterpart of "ack", for the echo world.
	RegisterPool("ack-pool", ServePool(func(context.Context, string, sdk.Observation) (any, error) {
		return ackAction, nil
	}))
	// stay-pool answers every member's observation with {"move":false}:
	// trivial agents for the grid world's Schelling rules (everyone stays
	// where they are), to measure the host on a grid world.
	RegisterPool("stay-pool", ServePool(func(context.Context, string, sdk.Observation) (any, error) {
		return stayAction, nil
	}))
}

var stayAction = json.RawMessage(`{"move":false}`)

// RegisterPool makes a pool program available under name. It panics on a
// duplicate of any program.
func RegisterPool(name string, p PoolProgram) {
	mu.Lock()
	defer mu.Unlock()
	_, dup := programs[name]
	_, dupRaw := raw[name]
	if _, dupPool := pools[name]; dup || dupRaw || dupPool {
		panic(fmt.Sprintf("builtin: %q registered twice", name))
	}
	pools[name] = p
}

// LookupPool returns the pool program registered under name.
func LookupPool(name string) (PoolProgram, bool) {
	mu.RLock()
	defer mu.RUnlock()
	p, ok := pools[name]
	return p, ok
}

// PoolNames lists the registered pool programs, sorted.
func PoolNames() []string {
	mu.RLock()
	defer mu.RUnlock()
	n := make([]string, 0, len(pools))
	for k := range pools {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// ServePool makes a pool program that answers every batch with h.
func ServePool(h sdk.PoolHandler) PoolProgram {
	return func(ctx context.Context, p *sdk.Pool) error { return p.Run(ctx, h) }
}

// runPool connects pool program p, runs it and closes.
func runPool(ctx context.Context, name string, p PoolProgram, stderr io.Writer) error {
	log := hclog.New(&hclog.LoggerOptions{Name: "builtin." + name, Output: stderr, Level: hclog.Info, Color: hclog.ColorOff})
	pl, err := sdk.ConnectPool(ctx, sdk.WithLogger(log))
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	err = p(ctx, pl)
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		err = nil
	}
	return errors.Join(err, pl.Close())
}
