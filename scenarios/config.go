package scenarios

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// worldDecode is the outcome of decoding a world block's body.
type worldDecode struct {
	diags hcl.Diagnostics
	// broken is set when the kind's struct cannot be decoded into (a bug in
	// the kind); the kind is not asked about its settings then.
	broken bool
	// failed names the top-level settings (attributes and nested block
	// types) that could not be decoded or are missing: they hold their
	// defaults, so the kind's objections to them are not reported.
	failed map[string]bool
	// failedKeys names, per map setting decoded key by key, the keys that
	// could not be decoded (the setting holds the other keys).
	failedKeys map[string]map[string]bool
}

// decodeConfig decodes a world block's body into cfg (a pointer to the
// kind's settings struct) with gohcl, so the struct's `hcl` tags have
// gohcl's meaning. gohcl leaves the setting's name out of value errors;
// they get it here. A map or list written as a literal ({ T = 5 } or
// [1, 2]) whose value does not fit is checked element by element, each bad
// element reported at itself; a map then keeps its good keys. gohcl panics
// on a struct it cannot decode into (a bug in the kind): that becomes a
// diagnostic at subject, not a crash of validate.
func decodeConfig(body hcl.Body, cfg any, kind string, subject hcl.Range) (res worldDecode) {
	res.failed = map[string]bool{}
	res.failedKeys = map[string]map[string]bool{}
	defer func() {
		if p := recover(); p != nil {
			res.broken = true
			res.diags = append(res.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Broken world kind",
				Detail:   fmt.Sprintf("World kind %q cannot decode its settings (%T): %v; this is a bug in the kind, not in the scenario.", kind, cfg, p),
				Subject:  subject.Ptr(),
			})
		}
	}()
	res.diags = gohcl.DecodeBody(body, nil, cfg)
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		for _, d := range res.diags {
			if d.Severity == hcl.DiagError {
				res.broken = true // nothing to tell which setting failed
			}
		}
		return res
	}
	f := &configFixer{res: &res}
	f.body(sb, reflect.ValueOf(cfg).Elem(), fmt.Sprintf("world %q", kind), true)
	return res
}

// configFixer rewrites gohcl's diagnostics for one world block.
type configFixer struct {
	res *worldDecode
}

// errorsIn returns the error diagnostics whose subject starts inside r.
func (f *configFixer) errorsIn(r hcl.Range) []*hcl.Diagnostic {
	var out []*hcl.Diagnostic
	for _, d := range f.res.diags {
		if d.Severity == hcl.DiagError && d.Subject != nil && d.Subject.Filename == r.Filename && r.ContainsOffset(d.Subject.Start.Byte) {
			out = append(out, d)
		}
	}
	return out
}

func (f *configFixer) remove(ds []*hcl.Diagnostic) {
	f.res.diags = slices.DeleteFunc(f.res.diags, func(d *hcl.Diagnostic) bool { return slices.Contains(ds, d) })
}

// body fixes the diagnostics of body, decoded into the struct v; where
// names the body in messages (`world "grid"`, `world "grid" block zone "n"`).
// top is set for the world block's own body.
func (f *configFixer) body(body *hclsyntax.Body, v reflect.Value, where string, top bool) {
	tags := fieldTagsOf(v.Type())
	names := make([]string, 0, len(body.Attributes))
	for name := range body.Attributes {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		attr := body.Attributes[name]
		errs := f.errorsIn(attr.Expr.Range())
		fi, known := tags.attrs[name]
		if len(errs) == 0 || !known {
			continue
		}
		setting := fmt.Sprintf("%s setting %q", where, name)
		field := v.Field(fi)
		if allUnsuitable(errs) {
			if failedKeys, ok := f.mapByKey(attr, field, setting, errs); ok {
				if top && len(failedKeys) > 0 {
					f.res.failedKeys[name] = failedKeys
				}
				continue
			}
			if f.listByElement(attr, field, setting, errs) {
				if top {
					f.res.failed[name] = true
				}
				continue
			}
		}
		if top {
			f.res.failed[name] = true
		}
		for _, d := range errs {
			rewriteValueDiag(d, name, setting, attr.Expr)
		}
	}

	if schema := impliedSchema(v.Type()); schema != nil && top {
		for _, a := range schema.Attributes {
			if a.Required && body.Attributes[a.Name] == nil {
				f.res.failed[a.Name] = true
			}
		}
	}

	seen := map[string]int{}
	for _, b := range body.Blocks {
		fi, known := tags.blocks[b.Type]
		if !known {
			continue
		}
		n := seen[b.Type]
		seen[b.Type]++
		if top && len(f.errorsIn(b.Range())) > 0 {
			f.res.failed[b.Type] = true
		}
		bv, ok := nthBlockValue(v.Field(fi), n)
		if !ok {
			continue
		}
		bwhere := where + " block " + b.Type
		for _, l := range b.Labels {
			bwhere += fmt.Sprintf(" %q", l)
		}
		f.body(b.Body, bv, bwhere, false)
	}
	if top {
		// A required block that is missing keeps its zero value.
		for typ, fi := range tags.blocks {
			if seen[typ] == 0 && v.Field(fi).Kind() == reflect.Struct {
				f.res.failed[typ] = true
			}
		}
	}
}

// nthBlockValue returns the struct gohcl decoded the n-th block of a type
// into, given the block field.
func nthBlockValue(field reflect.Value, n int) (reflect.Value, bool) {
	switch field.Kind() {
	case reflect.Slice:
		if n >= field.Len() {
			return reflect.Value{}, false
		}
		field = field.Index(n)
	default:
		if n > 0 {
			return reflect.Value{}, false // a duplicate, reported by gohcl
		}
	}
	if field.Kind() == reflect.Pointer {
		if field.IsNil() {
			return reflect.Value{}, false
		}
		field = field.Elem()
	}
	return field, field.Kind() == reflect.Struct
}

func allUnsuitable(ds []*hcl.Diagnostic) bool {
	for _, d := range ds {
		if d.Summary != "Unsuitable value type" {
			return false
		}
	}
	return true
}

// mapByKey decodes a literal object into a map field key by key, when the
// field is a map with string keys and the expression an object written
// out. It replaces errs with one diagnostic per bad key and stores the good
// keys. ok is false (and nothing changed) when it does not apply.
func (f *configFixer) mapByKey(attr *hclsyntax.Attribute, field reflect.Value, setting string, errs []*hcl.Diagnostic) (failed map[string]bool, ok bool) {
	if field.Kind() != reflect.Map || field.Type().Key().Kind() != reflect.String {
		return nil, false
	}
	pairs, diags := hcl.ExprMap(attr.Expr)
	if diags.HasErrors() {
		return nil, false
	}
	keys := make([]string, len(pairs))
	for i, p := range pairs {
		kv, kd := p.Key.Value(nil)
		if kd.HasErrors() || kv.IsNull() || !kv.IsKnown() || kv.Type() != cty.String {
			return nil, false
		}
		keys[i] = kv.AsString()
	}
	f.remove(errs)
	failed = map[string]bool{}
	m := reflect.MakeMapWithSize(field.Type(), len(pairs))
	for i, p := range pairs {
		ev := reflect.New(field.Type().Elem())
		ds := gohcl.DecodeExpression(p.Value, nil, ev.Interface())
		if ds.HasErrors() {
			failed[keys[i]] = true
			for _, d := range ds {
				rewriteValueDiag(d, attr.Name, fmt.Sprintf("%s, key %q", setting, keys[i]), p.Value)
			}
			f.res.diags = append(f.res.diags, ds...)
			continue
		}
		m.SetMapIndex(reflect.ValueOf(keys[i]).Convert(field.Type().Key()), ev.Elem())
	}
	field.Set(m)
	return failed, true
}

// listByElement reports each bad element of a literal list or tuple
// assigned to a slice or array field, in place of errs. The field keeps
// its default (a list with holes would mean something else). It reports
// whether it applied.
func (f *configFixer) listByElement(attr *hclsyntax.Attribute, field reflect.Value, setting string, errs []*hcl.Diagnostic) bool {
	if k := field.Kind(); k != reflect.Slice && k != reflect.Array {
		return false
	}
	exprs, diags := hcl.ExprList(attr.Expr)
	if diags.HasErrors() {
		return false
	}
	var found hcl.Diagnostics
	for i, e := range exprs {
		ev := reflect.New(field.Type().Elem())
		ds := gohcl.DecodeExpression(e, nil, ev.Interface())
		for _, d := range ds {
			rewriteValueDiag(d, attr.Name, fmt.Sprintf("%s, element %d", setting, i), e)
		}
		found = append(found, ds...)
	}
	if !found.HasErrors() {
		return false // the list as a whole is wrong (an array's length, say)
	}
	f.remove(errs)
	f.res.diags = append(f.res.diags, found...)
	return true
}

// rewriteValueDiag names the setting in a gohcl value diagnostic d about
// expression e: "Invalid NAME; world "k" setting "NAME": a number is
// required; got "x".".
func rewriteValueDiag(d *hcl.Diagnostic, name, setting string, e hcl.Expression) {
	if d.Summary != "Unsuitable value type" {
		d.Detail = setting + ": " + d.Detail
		return
	}
	d.Summary = invalid(name)
	msg := strings.TrimPrefix(d.Detail, "Unsuitable value: ")
	// cty says "string required, but have tuple"; the "got" below says
	// what there is, with the value.
	if i := strings.Index(msg, ", but have "); i >= 0 {
		msg = msg[:i]
	}
	d.Detail = setting + ": " + msg
	if v, vd := e.Value(nil); !vd.HasErrors() {
		d.Detail += "; got " + describe(v)
	}
	d.Detail += "."
}

// worldSetting is implemented by an error from a kind's New that is about
// one setting of the world block (and, for a map setting, one key of it):
// its diagnostic is placed at that setting. The setting is the attribute's
// (or nested block type's) name as written in scenario files; key is "" for
// the setting as a whole.
type worldSetting interface {
	WorldSetting() (setting, key string)
}

// splitErrors flattens err into its leaves: errors.Join (and any error
// with Unwrap() []error) is taken apart, recursively. nil gives none.
func splitErrors(err error) []error {
	if err == nil {
		return nil
	}
	multi, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range multi.Unwrap() {
		out = append(out, splitErrors(e)...)
	}
	return out
}

// worldError reports one of the kind's objections to its settings: at the
// setting it names (see worldSetting), else at the world block. An
// objection to a setting that could not be decoded is left out, since the
// setting held its default then and its decoding error says what to fix.
func (d *decoder) worldError(b *hcl.Block, kind string, err error, dec worldDecode) {
	subject, summary := b.DefRange, "Invalid world settings"
	var ws worldSetting
	if errors.As(err, &ws) {
		name, key := ws.WorldSetting()
		failedKeys := dec.failedKeys[name]
		if dec.failed[name] || (key == "" && len(failedKeys) > 0) || (key != "" && failedKeys[key]) {
			return
		}
		if r, ok := settingRange(b.Body, name, key); ok {
			subject, summary = r, invalid(name)
		}
	}
	detail := fmt.Sprintf("world %q: %v", kind, err)
	if !strings.HasSuffix(detail, ".") {
		detail += "."
	}
	d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: subject.Ptr()})
}

// settingRange finds a world setting in the block's body: the value of the
// attribute name (or, with key, that key's entry in the object written
// there), or the first nested block of that type.
func settingRange(body hcl.Body, name, key string) (hcl.Range, bool) {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return hcl.Range{}, false
	}
	if attr := sb.Attributes[name]; attr != nil {
		if key != "" {
			if pairs, diags := hcl.ExprMap(attr.Expr); !diags.HasErrors() {
				for _, p := range pairs {
					if kv, kd := p.Key.Value(nil); !kd.HasErrors() && kv.Type() == cty.String && kv.IsKnown() && !kv.IsNull() && kv.AsString() == key {
						return hcl.RangeBetween(p.Key.Range(), p.Value.Range()), true
					}
				}
			}
		}
		return attr.Expr.Range(), true
	}
	for _, blk := range sb.Blocks {
		if blk.Type == name {
			return blk.DefRange(), true
		}
	}
	return hcl.Range{}, false
}
