package scenarios

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Bounds of the agent limits.
const (
	MinMemory = 4 << 20 // memory = "4MiB": less cannot start a process
	MaxPids   = 4194304 // the kernel's largest pid_max
	MinCPU    = 0.01    // 1 % of a core: the kernel's smallest CFS quota (1ms per 100ms)
	MaxCPU    = 1024
)

// memoryPattern is a memory size: a number and a unit.
var memoryPattern = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$`)

// memoryUnits are the units memory sizes may use: binary (KiB) and decimal (KB).
var memoryUnits = map[string]float64{
	"B":   1,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
	"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
}

// ParseMemory parses a memory size such as "256MiB", "1.5GiB" or "512MB"
// into bytes. The unit is required (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB).
func ParseMemory(s string) (int64, error) {
	m := memoryPattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size: want a number and a unit, like \"256MiB\"", s)
	}
	unit, ok := memoryUnits[m[2]]
	if !ok {
		if m[2] == "" {
			return 0, fmt.Errorf("%q has no unit: write \"%sMiB\" or another of B, KiB, MiB, GiB, TiB, KB, MB, GB, TB", s, m[1])
		}
		return 0, fmt.Errorf("%q: unknown unit %q (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB; units are case-sensitive)", s, m[2])
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: %v", s, err)
	}
	b := math.Round(n * unit)
	if b >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(b), nil
}

// limits decodes an agent block's memory, pids and cpu settings.
func (d *decoder) limits(attrs hcl.Attributes, a *Agent) {
	if attr := optional(attrs, "memory"); attr != nil {
		const want = `a size with a unit, at least 4MiB, like memory = "256MiB"`
		if s, ok := d.str(attr, want); ok {
			n, err := ParseMemory(s)
			switch {
			case err != nil:
				d.errorf(attr.Expr.Range(), invalid("memory"), "memory must be %s; %v.", want, err)
			case n < MinMemory:
				d.errorf(attr.Expr.Range(), invalid("memory"), "memory must be %s; got %q (%d bytes), too little for any process.", want, s, n)
			default:
				a.Memory = n
			}
		}
	}
	if attr := optional(attrs, "pids"); attr != nil {
		if v, ok := d.whole(attr, 1, MaxPids, fmt.Sprintf("a whole number from 1 to %d (processes and threads the agent may have at once, all its descendants included), like pids = 64", MaxPids)); ok {
			a.Pids = int64(v)
		}
	}
	if attr := optional(attrs, "cpu"); attr != nil {
		want := fmt.Sprintf("a number from %g to %d (the share of one core: 0.5 is half a core, 2 two cores), like cpu = 0.5", MinCPU, MaxCPU)
		v, ok := d.eval(attr.Expr)
		if !ok {
			return
		}
		if v.IsNull() || v.Type() != cty.Number {
			d.errorf(attr.Expr.Range(), invalid("cpu"), "cpu must be %s; got %s.", want, describe(v))
			return
		}
		f, _ := v.AsBigFloat().Float64()
		if f < MinCPU || f > MaxCPU {
			d.errorf(attr.Expr.Range(), invalid("cpu"), "cpu must be %s; got %s.", want, describe(v))
			return
		}
		a.CPU = f
	}
	if a.Runtime == RuntimeInProc {
		for _, name := range []string{"memory", "pids", "cpu"} {
			if attr := optional(attrs, name); attr != nil {
				d.errorf(attr.Expr.Range(), invalid(name),
					"%s cannot be limited for runtime %q agents: they run inside the host's process; limit the host instead, or use a runtime with a process of its own.", name, RuntimeInProc)
			}
		}
	}
}
