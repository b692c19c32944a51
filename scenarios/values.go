package scenarios

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// The helpers below turn one attribute into a Go value. Each reports its own
// diagnostic (naming the setting, what it must be and what it got) and
// returns ok=false when the value is unusable. A null value (seed = null)
// means "leave the default" for every optional setting.

// eval evaluates an expression with no variables or functions.
func (d *decoder) eval(e hcl.Expression) (cty.Value, bool) {
	v, diags := e.Value(nil)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return cty.NilVal, false
	}
	if !v.IsWhollyKnown() {
		d.errorf(e.Range(), "Invalid value", "The value must be a constant.")
		return cty.NilVal, false
	}
	return v, true
}

// isNull reports whether attr is explicitly set to null.
func isNull(attr *hcl.Attribute) bool {
	v, diags := attr.Expr.Value(nil)
	return !diags.HasErrors() && v.IsNull()
}

// describe renders a value for "got ..." in a message.
func describe(v cty.Value) string {
	switch {
	case v.IsNull():
		return "null"
	case v.Type() == cty.String:
		return fmt.Sprintf("%q", v.AsString())
	case v.Type() == cty.Number:
		return plainNumber(v.AsBigFloat())
	case v.Type() == cty.Bool:
		return fmt.Sprint(v.True())
	default:
		name := v.Type().FriendlyName()
		if strings.ContainsRune("aeiou", rune(name[0])) {
			return "an " + name
		}
		return "a " + name
	}
}

// plainNumber renders a number in plain decimal, as it would be written in
// a scenario file: 18446744073709551616, not 1.8446744073709551616e+19.
// Only a fraction with very many digits (1e-40) uses an exponent.
func plainNumber(f *big.Float) string {
	if f.IsInt() {
		return f.Text('f', 0)
	}
	if s := f.Text('f', -1); len(s) <= 40 {
		return s
	}
	return f.Text('g', -1)
}

func invalid(name string) string { return fmt.Sprintf("Invalid %s", name) }

// whole decodes a whole number in [lo, hi].
func (d *decoder) whole(attr *hcl.Attribute, lo, hi uint64, want string) (uint64, bool) {
	v, ok := d.eval(attr.Expr)
	if !ok {
		return 0, false
	}
	if v.IsNull() || v.Type() != cty.Number {
		d.errorf(attr.Expr.Range(), invalid(attr.Name), "%s must be %s; got %s.", attr.Name, want, describe(v))
		return 0, false
	}
	f := v.AsBigFloat()
	n, acc := f.Uint64()
	if !f.IsInt() || acc != big.Exact || n < lo || n > hi {
		d.errorf(attr.Expr.Range(), invalid(attr.Name), "%s must be %s; got %s.", attr.Name, want, describe(v))
		return 0, false
	}
	return n, true
}

// str decodes a string.
func (d *decoder) str(attr *hcl.Attribute, want string) (string, bool) {
	return d.strExpr(attr.Expr, attr.Name, want)
}

func (d *decoder) strExpr(e hcl.Expression, name, want string) (string, bool) {
	v, ok := d.eval(e)
	if !ok {
		return "", false
	}
	if v.IsNull() || v.Type() != cty.String {
		d.errorf(e.Range(), invalid(name), "%s must be %s; got %s.", name, want, describe(v))
		return "", false
	}
	return v.AsString(), true
}

// enum decodes a string that must be one of allowed. A value in planned is
// refused as not supported yet.
func (d *decoder) enum(attr *hcl.Attribute, allowed, planned []string) (string, bool) {
	s, ok := d.str(attr, "one of "+quoteList(allowed))
	if !ok {
		return "", false
	}
	switch {
	case slices.Contains(allowed, s):
		return s, true
	case slices.Contains(planned, s):
		d.errorf(attr.Expr.Range(), fmt.Sprintf("Unsupported %s", attr.Name),
			"%s = %q is planned but not supported yet; use one of %s.", attr.Name, s, quoteList(allowed))
	default:
		d.errorf(attr.Expr.Range(), invalid(attr.Name),
			"%s must be one of %s; got %q.", attr.Name, quoteList(allowed), s)
	}
	return "", false
}

// duration decodes a Go duration string greater than zero.
func (d *decoder) duration(attr *hcl.Attribute) (time.Duration, bool) {
	const want = `a Go duration greater than zero, like "2s", "500ms" or "1m30s"`
	s, ok := d.str(attr, want)
	if !ok {
		return 0, false
	}
	dur, err := time.ParseDuration(s)
	if err != nil || dur <= 0 {
		d.errorf(attr.Expr.Range(), invalid(attr.Name), "%s must be %s; got %q.", attr.Name, want, s)
		return 0, false
	}
	return dur, true
}

// listExprs returns the element expressions of a list attribute, so each
// element's problems are reported at the element.
func (d *decoder) listExprs(attr *hcl.Attribute, want string) ([]hcl.Expression, bool) {
	if exprs, diags := hcl.ExprList(attr.Expr); !diags.HasErrors() {
		return exprs, true
	}
	// Not a literal list: evaluate it (a for expression, say) and report
	// every element at the attribute.
	v, ok := d.eval(attr.Expr)
	if !ok {
		return nil, false
	}
	t := v.Type()
	if v.IsNull() || !(t.IsListType() || t.IsTupleType() || t.IsSetType()) {
		d.errorf(attr.Expr.Range(), invalid(attr.Name), "%s must be %s; got %s.", attr.Name, want, describe(v))
		return nil, false
	}
	var exprs []hcl.Expression
	for it := v.ElementIterator(); it.Next(); {
		_, ev := it.Element()
		exprs = append(exprs, hcl.StaticExpr(ev, attr.Expr.Range()))
	}
	return exprs, true
}

// strList decodes a list of strings.
func (d *decoder) strList(attr *hcl.Attribute, want string) ([]string, bool) {
	exprs, ok := d.listExprs(attr, want)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(exprs))
	for i, e := range exprs {
		s, sok := d.strExpr(e, fmt.Sprintf("%s[%d]", attr.Name, i), "a string")
		ok = ok && sok
		out = append(out, s)
	}
	return out, ok
}
