package observe

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/world"
)

// Filter selects events. The zero Filter selects every event.
type Filter struct {
	// Kinds are glob patterns (path.Match: "agent.*", "tick.closed",
	// "world.*"); an event matches when its kind matches one. Empty: all.
	Kinds []string
	// Agents: an event matches when its agent is one of these. Empty: all.
	Agents []string
	// FromTick and ToTick bound the event's tick, both inclusive; ToTick 0
	// means no upper bound.
	FromTick, ToTick world.Tick
	// AfterSeq selects events with a seq greater than it (give the last
	// seq you saw to resume without a duplicate).
	AfterSeq uint64
}

// Check reports a malformed pattern.
func (f Filter) Check() error {
	for _, k := range f.Kinds {
		if _, err := path.Match(k, ""); err != nil {
			return fmt.Errorf("kind pattern %q: %w", k, err)
		}
	}
	if f.ToTick > 0 && f.ToTick < f.FromTick {
		return fmt.Errorf("tick range %d:%d is empty", f.FromTick, f.ToTick)
	}
	return nil
}

// Match reports whether r is selected.
func (f Filter) Match(r events.Record) bool {
	if r.Seq <= f.AfterSeq {
		return false
	}
	if r.Tick < f.FromTick || (f.ToTick > 0 && r.Tick > f.ToTick) {
		return false
	}
	if len(f.Agents) > 0 && !slices.Contains(f.Agents, string(r.Agent)) {
		return false
	}
	if len(f.Kinds) == 0 {
		return true
	}
	for _, k := range f.Kinds {
		if ok, _ := path.Match(k, r.Kind); ok {
			return true
		}
	}
	return false
}

// Past reports whether no later event can match f's tick range: r closed
// a tick two past ToTick, so every event after it belongs to a later tick
// than ToTick (events outside the loop carry the last closed tick).
func (f Filter) Past(r events.Record) bool {
	return f.ToTick > 0 && r.Kind == world.EventTickClosed && r.Tick >= f.ToTick+2
}

// ParseTicks parses a tick range "A:B", "A:" or ":B" (inclusive).
func ParseTicks(s string) (from, to world.Tick, err error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("tick range %q: want FROM:TO, FROM: or :TO", s)
	}
	parse := func(x string) (world.Tick, error) {
		if x == "" {
			return 0, nil
		}
		n, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("tick range %q: %q is not a tick number", s, x)
		}
		return world.Tick(n), nil
	}
	if from, err = parse(a); err != nil {
		return 0, 0, err
	}
	if to, err = parse(b); err != nil {
		return 0, 0, err
	}
	return from, to, nil
}
