package scenarios

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// decodeConfig decodes a world block's body into cfg (a pointer to the
// kind's settings struct) with gohcl, so the struct's `hcl` tags have
// gohcl's meaning. gohcl leaves the setting's name out of value errors;
// they get it here. gohcl panics on a struct it cannot decode into (a bug in
// the kind): that becomes a diagnostic at subject, not a crash of validate.
func decodeConfig(body hcl.Body, cfg any, kind string, subject hcl.Range) (diags hcl.Diagnostics) {
	defer func() {
		if p := recover(); p != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Broken world kind",
				Detail:   fmt.Sprintf("World kind %q cannot decode its settings (%T): %v; this is a bug in the kind, not in the scenario.", kind, cfg, p),
				Subject:  subject.Ptr(),
			})
		}
	}()
	diags = gohcl.DecodeBody(body, nil, cfg)
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return diags
	}
	for _, d := range diags {
		if d.Subject == nil {
			continue
		}
		where, attr := settingAt(sb, *d.Subject, fmt.Sprintf("world %q", kind))
		if attr == nil {
			continue
		}
		if d.Summary != "Unsuitable value type" {
			d.Detail = where + ": " + d.Detail
			continue
		}
		d.Summary = "Invalid " + attr.Name
		d.Detail = where + ": " + strings.TrimPrefix(d.Detail, "Unsuitable value: ")
		if v, vd := attr.Expr.Value(nil); !vd.HasErrors() {
			d.Detail += "; got " + describe(v)
		}
		d.Detail += "."
	}
	return diags
}

// settingAt finds the setting whose value holds r and names it, such as
// `world "grid" setting "size"` or `world "grid" block zone "n" setting "size"`.
// attr is nil when r is in no setting's value.
func settingAt(body *hclsyntax.Body, r hcl.Range, prefix string) (where string, attr *hclsyntax.Attribute) {
	for name, attr := range body.Attributes {
		if er := attr.Expr.Range(); er.Filename == r.Filename && er.ContainsOffset(r.Start.Byte) {
			return fmt.Sprintf("%s setting %q", prefix, name), attr
		}
	}
	for _, b := range body.Blocks {
		if br := b.Body.Range(); br.Filename == r.Filename && br.ContainsOffset(r.Start.Byte) {
			where := prefix + " block " + b.Type
			for _, l := range b.Labels {
				where += fmt.Sprintf(" %q", l)
			}
			return settingAt(b.Body, r, where)
		}
	}
	return "", nil
}
