package scenarios

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/bus"
)

// Bounds of max_line (runtime "stdio"). An act line becomes one bus
// message, which cannot exceed bus.MaxPayload, so a longer limit would
// only let through lines that can never be delivered.
const (
	MinStdioMaxLine = 1 << 10
	MaxStdioMaxLine = bus.MaxPayload
)

// maxLine decodes an agent block's max_line: a size with a unit, for
// runtime "stdio" only.
func (d *decoder) maxLine(attrs hcl.Attributes, a *Agent, runtimeOK bool) {
	attr := optional(attrs, "max_line")
	if attr == nil {
		return
	}
	if runtimeOK && a.Runtime != RuntimeStdio {
		d.errorf(attr.NameRange, "Unexpected max_line",
			`max_line is a setting of runtime = "stdio" (the longest line the host reads from the agent's stdout); agent %q has runtime = %q. Remove it, or set runtime = "stdio".`, a.Name, a.Runtime)
		return
	}
	want := fmt.Sprintf(`a size with a unit from %s to %s (the longest stdout line accepted, without its newline; default %s), like max_line = "64KiB"`,
		agents.FormatBytes(MinStdioMaxLine), agents.FormatBytes(MaxStdioMaxLine), agents.FormatBytes(agents.DefaultStdioMaxLine))
	s, ok := d.str(attr, want)
	if !ok {
		return
	}
	n, err := ParseMemory(s)
	switch {
	case err != nil:
		d.errorf(attr.Expr.Range(), invalid("max_line"), "max_line must be %s; %v.", want, err)
	case n < MinStdioMaxLine:
		d.errorf(attr.Expr.Range(), invalid("max_line"), "max_line must be %s; got %q (%d bytes), too short for an action line.", want, s, n)
	case n > MaxStdioMaxLine:
		d.errorf(attr.Expr.Range(), invalid("max_line"), "max_line must be %s; got %q (%d bytes): an action travels as one bus message of at most %s, so a longer line could never be delivered.", want, s, n, agents.FormatBytes(bus.MaxPayload))
	default:
		a.MaxLine = n
	}
}
