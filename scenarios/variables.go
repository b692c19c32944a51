package scenarios

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// LoadOptions changes how LoadWith and ParseWith read a scenario.
type LoadOptions struct {
	// Vars sets variables by name, as given on the command line
	// (--var name=value): the text is read as the type of the variable's
	// default (a number, a bool, or a string); a variable without a default
	// takes an HCL literal, or else the text as a string.
	Vars map[string]string
	// Dir, if set, is the directory relative agent commands are resolved
	// against (the original scenario's, when loading a run's copy).
	Dir string
	// SkipPrograms does not look up the programs of runtime "nats" and
	// "stdio" agents (replay starts no agent, so they need not exist).
	SkipPrograms bool
}

// Variable is a variable block of a scenario and the value it took.
type Variable struct {
	Name  string
	Value cty.Value
	Set   bool // set by LoadOptions.Vars, not its default
}

// String renders the value as it would be written on the command line.
func (v Variable) String() string { return renderValue(v.Value) }

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "default"},
		{Name: "description"},
	},
}

// LoadWith is Load with options (variables, and where commands are found).
func LoadWith(path string, o LoadOptions) (*Scenario, hcl.Diagnostics) {
	src, err := readBounded(path, MaxFileSize)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read scenario file",
			Detail:   fmt.Sprintf("%v; check the path and its permissions.", err),
		}}
	}
	dir := o.Dir
	if dir == "" {
		if dir, err = filepath.Abs(filepath.Dir(path)); err != nil {
			return nil, hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Cannot read scenario file",
				Detail:   fmt.Sprintf("find the directory of %s: %v.", path, err),
			}}
		}
	}
	return parse(src, path, dir, o)
}

// renderValue renders a constant for a message or a directory name.
func renderValue(v cty.Value) string {
	switch {
	case v.IsNull():
		return "null"
	case v.Type() == cty.String:
		return v.AsString()
	case v.Type() == cty.Number:
		return plainNumber(v.AsBigFloat())
	case v.Type() == cty.Bool:
		return fmt.Sprint(v.True())
	default:
		return describe(v)
	}
}

// variables reads the variable blocks, applies the overrides, and replaces
// every attribute that refers to var.NAME by its value, so the rest of the
// decoder sees constants. Problems are reported at their line.
func (d *decoder) variables(root *hclsyntax.Body, overrides map[string]string) []Variable {
	vals := map[string]cty.Value{}
	var vars []Variable
	seen := map[string]hcl.Range{}
	for _, b := range root.Blocks {
		if b.Type != "variable" || len(b.Labels) != 1 {
			continue
		}
		name := b.Labels[0]
		r := b.LabelRanges[0]
		if first, dup := seen[name]; dup {
			d.errorf(r, "Duplicate variable", "variable %q is already declared at %s.", name, at(first))
			continue
		}
		seen[name] = r
		if !hclsyntax.ValidIdentifier(name) {
			d.errorf(r, "Invalid variable name", "The variable name %q must be an identifier (letters, digits, _ and -, not starting with a digit), like variable \"rounds\".", name)
			continue
		}
		content, diags := b.Body.Content(variableSchema)
		d.diags = append(d.diags, diags...)
		def := cty.NilVal
		if a := content.Attributes["default"]; a != nil {
			if v, ok := d.eval(a.Expr); ok {
				def = v
			}
		}
		v := Variable{Name: name, Value: def}
		if text, ok := overrides[name]; ok {
			pv, err := parseVarValue(text, def)
			if err != nil {
				d.errorf(r, "Invalid value for variable", "--var %s=%s (from the command line): %v.", name, text, err)
				d.unset[name] = true
				continue
			}
			v.Value, v.Set = pv, true
		}
		if v.Value == cty.NilVal {
			d.errorf(r, "Variable has no value", "variable %q has no default: give one (default = ...) or set it with --var %s=VALUE.", name, name)
			d.unset[name] = true
			continue
		}
		vals[name] = v.Value
		vars = append(vars, v)
	}
	var unknown []string
	for name := range overrides {
		if _, ok := seen[name]; !ok {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	for _, name := range unknown {
		declared := make([]string, 0, len(seen))
		for n := range seen {
			declared = append(declared, n)
		}
		sort.Strings(declared)
		d.diags = append(d.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Unknown variable",
			Detail:   fmt.Sprintf("--var %s: the scenario %s declares no variable %q (it declares %s); add a variable %q { default = ... } block.", name, d.filename, name, quoteList(declared), name),
		})
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(vals)}}
	if len(vals) == 0 {
		ctx.Variables["var"] = cty.EmptyObjectVal
	}
	d.substitute(root, ctx)
	return vars
}

// substitute replaces, in every block but the variable blocks, each
// attribute whose expression refers to var.* by its value.
func (d *decoder) substitute(body *hclsyntax.Body, ctx *hcl.EvalContext) {
	for _, attr := range body.Attributes {
		refs, ok := false, true
		vals := ctx.Variables["var"]
		for _, t := range attr.Expr.Variables() {
			if t.RootName() != "var" {
				continue
			}
			refs = true
			if len(t) < 2 {
				d.errorf(t.SourceRange(), "Invalid variable reference", "Use var.NAME, naming one variable block, like var.rounds.")
				ok = false
				continue
			}
			if ta, isAttr := t[1].(hcl.TraverseAttr); isAttr && d.unset[ta.Name] {
				ok = false // declared, but its value was refused above: said once
			} else if isAttr && !vals.Type().HasAttribute(ta.Name) {
				d.errorf(t.SourceRange(), "Undeclared variable", "var.%s: the scenario declares no variable %q; add a block variable %q { default = ... } at the top level.", ta.Name, ta.Name, ta.Name)
				ok = false
			}
		}
		if !refs {
			continue
		}
		if !ok {
			attr.Expr = &hclsyntax.LiteralValueExpr{Val: cty.NullVal(cty.DynamicPseudoType), SrcRange: attr.Expr.Range()}
			continue
		}
		v, diags := attr.Expr.Value(ctx)
		d.diags = append(d.diags, diags...)
		if diags.HasErrors() {
			v = cty.NullVal(cty.DynamicPseudoType)
		}
		attr.Expr = &hclsyntax.LiteralValueExpr{Val: v, SrcRange: attr.Expr.Range()}
	}
	for _, b := range body.Blocks {
		if b.Type == "variable" {
			continue
		}
		d.substitute(b.Body, ctx)
	}
}

// parseVarValue reads a --var value as the type of def.
func parseVarValue(text string, def cty.Value) (cty.Value, error) {
	if def != cty.NilVal && !def.IsNull() {
		switch def.Type() {
		case cty.String:
			return cty.StringVal(text), nil
		case cty.Number:
			n, err := cty.ParseNumberVal(strings.TrimSpace(text))
			if err != nil {
				return cty.NilVal, fmt.Errorf("want a number, like its default %s", renderValue(def))
			}
			return n, nil
		case cty.Bool:
			switch strings.TrimSpace(text) {
			case "true":
				return cty.True, nil
			case "false":
				return cty.False, nil
			}
			return cty.NilVal, fmt.Errorf("want true or false, like its default %s", renderValue(def))
		}
	}
	expr, diags := hclsyntax.ParseExpression([]byte(text), "--var", hcl.InitialPos)
	if !diags.HasErrors() {
		if v, vd := expr.Value(nil); !vd.HasErrors() && v.IsWhollyKnown() {
			return v, nil
		}
	}
	return cty.StringVal(text), nil
}

// MaxFileSize is the largest scenario file Load reads (a scenario is a
// page of settings; a path such as /dev/zero must not eat the memory).
const MaxFileSize = 4 << 20

// readBounded reads path, refusing a file over max bytes.
func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is over %d MiB: not a scenario file", path, max>>20)
	}
	return b, nil
}
