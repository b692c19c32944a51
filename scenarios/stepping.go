package scenarios

import (
	"math/big"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// realtime decodes tick_rate and max_catch_up and checks the stepping
// settings against each other (after the scenario block's other settings).
func (d *decoder) realtime(attrs hcl.Attributes, s *Scenario) {
	rt := s.Stepping == SteppingRealtime
	if rt {
		s.TickRate, s.MaxCatchUp = DefaultTickRate, DefaultMaxCatchUp
	}
	if a := optional(attrs, "tick_rate"); a != nil {
		if v, ok := d.positive(a, MaxTickRate, "a number of ticks per second above 0 and at most 1000, like tick_rate = 60"); ok {
			s.TickRate = v
		}
		d.onlyRealtime(a, rt)
	}
	if a := optional(attrs, "max_catch_up"); a != nil {
		if v, ok := d.whole(a, 1, 1000, "a whole number from 1 to 1000 (overdue ticks run back to back before the lag is dropped), like max_catch_up = 3"); ok {
			s.MaxCatchUp = int(v)
		}
		d.onlyRealtime(a, rt)
	}
	if a := optional(attrs, "missing_action"); a != nil && rt && s.MissingAction == MissingAbort {
		d.errorf(a.Expr.Range(), invalid("missing_action"),
			`missing_action = "abort" does not go with stepping = "realtime": the loop never waits for an agent, so a missed tick is normal; use "default" or "repeat".`)
	}
}

// onlyRealtime warns that a realtime setting has no effect.
func (d *decoder) onlyRealtime(a *hcl.Attribute, rt bool) {
	if rt {
		return
	}
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  a.Name + " has no effect",
		Detail:   a.Name + ` acts only with stepping = "realtime".`,
		Subject:  a.Expr.Range().Ptr(),
	})
}

// positive decodes a number in (0, hi].
func (d *decoder) positive(attr *hcl.Attribute, hi float64, want string) (float64, bool) {
	v, ok := d.eval(attr.Expr)
	if !ok {
		return 0, false
	}
	if v.IsNull() || v.Type() != cty.Number {
		d.errorf(attr.Expr.Range(), invalid(attr.Name), "%s must be %s; got %s.", attr.Name, want, describe(v))
		return 0, false
	}
	f, _ := v.AsBigFloat().Float64()
	if f <= 0 || f > hi || v.AsBigFloat().Cmp(big.NewFloat(hi)) > 0 {
		d.errorf(attr.Expr.Range(), invalid(attr.Name), "%s must be %s; got %s.", attr.Name, want, describe(v))
		return 0, false
	}
	return f, true
}

// inprocWarning says that in-process agents exist only in a program that
// embeds the host.
func (d *decoder) inprocWarning(a *hcl.Attribute) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  "In-process agent",
		Detail:   `runtime = "inproc" agents are Go values a program that embeds Terrarium supplies (terrarium.Config.InProc); terrarium run cannot run them. See docs/embedding.md.`,
		Subject:  a.Expr.Range().Ptr(),
	})
}
