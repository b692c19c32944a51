package builtin

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/terrarium-sim/terrarium/agents/sdk"
)

// A handlerMaker builds a reference agent's handler from its seed (the
// agent's TERRARIUM_SEED) and its parameters (the scenario's args, each
// "name=value"). Agents that keep state between ticks keep it in the handler.
type handlerMaker func(seed uint64, p params) (sdk.Handler, error)

// registerMaker registers a program that builds its handler from the
// process's seed and arguments, and its pool counterpart NAME-pool (see
// makerPool).
func registerMaker(name string, mk handlerMaker) {
	makers[name] = mk
	makers[name+PoolSuffix] = mk
	RegisterPool(name+PoolSuffix, makerPool(name+PoolSuffix, mk))
	Register(name, func(ctx context.Context, a *sdk.Agent) error {
		p, err := parseParams(os.Args[1:])
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		h, err := mk(a.Seed(), p)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := p.unused(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return a.Run(ctx, h)
	})
}

// makers holds the handler makers by program name (for in-process tests).
var makers = map[string]handlerMaker{}

// CheckArgs reports whether the program name accepts args (its "name=value"
// parameters), so that a scenario with a bad one is refused when it is
// loaded rather than when its agents start. Programs that take no
// parameters, and unknown names, are not checked.
func CheckArgs(name string, args []string) error {
	mk, ok := makers[name]
	if !ok {
		return nil
	}
	p, err := parseParams(args)
	if err != nil {
		return err
	}
	if _, err := mk(0, p); err != nil {
		return err
	}
	return p.unused()
}

// params are a program's "name=value" arguments.
type params struct {
	v    map[string]string
	used map[string]bool
}

func parseParams(args []string) (params, error) {
	p := params{v: map[string]string{}, used: map[string]bool{}}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return p, fmt.Errorf("argument %q: want name=value", a)
		}
		if _, dup := p.v[k]; dup {
			return p, fmt.Errorf("argument %q given twice", k)
		}
		p.v[k] = v
	}
	return p, nil
}

func (p params) float(name string, def float64) (float64, error) {
	s, ok := p.v[name]
	if !ok {
		return def, nil
	}
	p.used[name] = true
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("argument %s=%q: want a number", name, s)
	}
	return f, nil
}

func (p params) int(name string, def, lo, hi int) (int, error) {
	s, ok := p.v[name]
	if !ok {
		return def, nil
	}
	p.used[name] = true
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("argument %s=%q: want a whole number from %d to %d", name, s, lo, hi)
	}
	return n, nil
}

func (p params) unused() error {
	for k := range p.v {
		if !p.used[k] {
			return fmt.Errorf("unknown argument %q", k)
		}
	}
	return nil
}

// tickRNG is an agent's generator for one tick: a function of its seed and
// the tick only, so a restarted agent draws the same numbers.
func tickRNG(seed uint64, tick uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, tick^0x5eed5eed5eed5eed))
}

// marshal encodes a handler's action as the SDK does.
func marshal(v any) (json.RawMessage, error) {
	if raw, ok := v.(json.RawMessage); ok {
		return raw, nil
	}
	return json.Marshal(v)
}
