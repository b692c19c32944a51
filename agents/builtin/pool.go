package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/world"
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

// PoolSuffix names the pool counterpart of a reference agent: "schelling"
// runs one agent per process, "schelling-pool" (runtime "pool") serves
// many with the same code.
const PoolSuffix = "-pool"

// makerPool serves every member of a pool with its own handler, made by mk
// with the pool's arguments and the member's seed: world.AgentSeed of the
// pool's seed (its TERRARIUM_SEED) and the member's id. A pool's members
// therefore draw other numbers than the same agents run as processes (whose
// seeds derive from the scenario's seed, which no agent sees), but a pool
// run is as reproducible as any: same scenario and seed, same run.
func makerPool(name string, mk handlerMaker) PoolProgram {
	return func(ctx context.Context, p *sdk.Pool) error {
		prm, err := parseParams(os.Args[1:])
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		var seed uint64
		if s := os.Getenv(agents.EnvSeed); s != "" {
			if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
				return fmt.Errorf("%s: %s: %w", name, agents.EnvSeed, err)
			}
		}
		hs := make(map[string]sdk.Handler, len(p.Members()))
		for _, m := range p.Members() {
			h, err := mk(world.AgentSeed(seed, world.AgentID(m)), prm)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			hs[m] = h
		}
		if err := prm.unused(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return p.Run(ctx, func(ctx context.Context, agent string, obs sdk.Observation) (any, error) {
			h, ok := hs[agent]
			if !ok {
				return nil, fmt.Errorf("%s: an observation for %s, who is not a member", name, agent)
			}
			return h(ctx, obs)
		})
	}
}
