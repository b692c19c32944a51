package scenarios

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// The helpers below rewrite hcl's "Unsupported argument" and "Unsupported
// block type" diagnostics so that each says what was probably meant. hcl
// suggests a name only among the settings of the same block that are not
// set yet; these also name a setting that is already set (a leftover
// duplicate), a setting that belongs to another block (rounds in the
// scenario block), and otherwise list what the block accepts.

// maxSuggestDistance is the largest edit distance at which a name is
// suggested; hcl uses the same threshold (distance < 3).
const maxSuggestDistance = 2

// nameSuggestion returns the name closest to given within
// maxSuggestDistance edits (the first of equally close ones), or "".
func nameSuggestion(given string, names []string) string {
	best, _ := nearest(given, names)
	return best
}

// nearest is nameSuggestion with the distance of the name it returns.
func nearest(given string, names []string) (string, int) {
	best, bestDist := "", maxSuggestDistance+1
	for _, n := range names {
		if d := levenshtein.Distance(given, n, nil); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best, bestDist
}

// bodyKind is what one kind of block accepts, for suggestions.
type bodyKind struct {
	what   string // "the scenario block", `the world "grid" block`, ...
	schema *hcl.BodySchema
}

func (k bodyKind) attrNames() []string {
	names := make([]string, len(k.schema.Attributes))
	for i, a := range k.schema.Attributes {
		names[i] = a.Name
	}
	return names
}

func (k bodyKind) blockTypes() []string {
	types := make([]string, len(k.schema.Blocks))
	for i, b := range k.schema.Blocks {
		types[i] = b.Type
	}
	return types
}

// suggester rewrites the unsupported-name diagnostics of one file.
type suggester struct {
	diags hcl.Diagnostics
	// top holds the kinds of the top-level blocks (scenario, agent and, when
	// its kind is known, world), whose settings are suggested across blocks.
	top []bodyKind
}

// suggestAll rewrites the unsupported-name diagnostics in diags for the
// file body root. worldCfg is the world kind's settings struct, or nil when
// the kind is unknown.
func suggestAll(diags hcl.Diagnostics, root *hclsyntax.Body, worldKind string, worldCfg any) {
	scenarioKind := bodyKind{"the scenario block", scenarioSchema}
	agentKind := bodyKind{"an agent block", agentSchema}
	s := &suggester{diags: diags, top: []bodyKind{scenarioKind, agentKind}}
	var worldType reflect.Type
	if worldCfg != nil {
		worldType = reflect.TypeOf(worldCfg).Elem()
		if schema := impliedSchema(worldType); schema != nil {
			s.top = append(s.top, bodyKind{fmt.Sprintf("the world %q block", worldKind), schema})
		}
	}
	s.body(root, bodyKind{"the top level of the file", rootSchema})
	for _, b := range root.Blocks {
		switch b.Type {
		case "scenario":
			s.body(b.Body, scenarioKind)
		case "agent":
			s.body(b.Body, agentKind)
		case "world":
			if worldType != nil && len(b.Labels) == 1 && b.Labels[0] == worldKind {
				s.structBody(b.Body, worldType, fmt.Sprintf("the world %q block", worldKind))
			}
		}
	}
}

// structBody handles a body decoded into a struct of type t, and its nested
// blocks.
func (s *suggester) structBody(body *hclsyntax.Body, t reflect.Type, what string) {
	schema := impliedSchema(t)
	if schema == nil {
		return
	}
	s.body(body, bodyKind{what, schema})
	tags := fieldTagsOf(t)
	for _, b := range body.Blocks {
		fi, ok := tags.blocks[b.Type]
		if !ok {
			continue
		}
		s.structBody(b.Body, blockElemType(t.Field(fi).Type), fmt.Sprintf("a %s block in %s", b.Type, what))
	}
}

// impliedSchema is gohcl's schema for t, or nil when gohcl cannot make one
// (a broken kind, reported elsewhere).
func impliedSchema(t reflect.Type) (schema *hcl.BodySchema) {
	defer func() {
		if recover() != nil {
			schema = nil
		}
	}()
	if t.Kind() != reflect.Struct {
		return nil
	}
	schema, _ = gohcl.ImpliedBodySchema(reflect.New(t).Interface())
	return schema
}

// body rewrites the diagnostics about body's unknown attributes and blocks.
func (s *suggester) body(body *hclsyntax.Body, kind bodyKind) {
	for name, attr := range body.Attributes {
		if d := s.find("Unsupported argument", attr.NameRange); d != nil {
			d.Detail = fmt.Sprintf("An argument named %q is not expected here.", name) + s.forAttribute(name, body, kind)
		}
	}
	for _, b := range body.Blocks {
		if d := s.find("Unsupported block type", b.TypeRange); d != nil {
			d.Detail = fmt.Sprintf("Blocks of type %q are not expected here.", b.Type) + s.forBlock(b.Type, kind)
		}
	}
}

func (s *suggester) find(summary string, r hcl.Range) *hcl.Diagnostic {
	for _, d := range s.diags {
		if d.Summary == summary && d.Subject != nil && d.Subject.Filename == r.Filename && d.Subject.Start.Byte == r.Start.Byte {
			return d
		}
	}
	return nil
}

// forAttribute says what an unknown attribute name in a body of kind
// probably meant, starting with a space.
func (s *suggester) forAttribute(name string, body *hclsyntax.Body, kind bodyKind) string {
	for _, other := range s.top {
		if other.what != kind.what && slices.Contains(other.attrNames(), name) {
			return fmt.Sprintf(" %q is a setting of %s, not of %s; move it there.", name, other.what, kind.what)
		}
	}
	near, dist := nearest(name, kind.attrNames())
	for _, other := range s.top {
		// A much closer setting of another block wins ("tiks" in an agent
		// block is "ticks", not "pids").
		if o, od := nearest(name, other.attrNames()); other.what != kind.what && o != "" && od < dist {
			near = ""
		}
	}
	if near != "" {
		if set := body.Attributes[near]; set != nil {
			return fmt.Sprintf(" Did you mean %q? It is already set at %s; remove one of the two.", near, at(set.NameRange))
		}
		return fmt.Sprintf(" Did you mean %q?", near)
	}
	if near := nameSuggestion(name, kind.blockTypes()); near != "" {
		return fmt.Sprintf(" Did you mean to define a block of type %q? If so, write %s { ... } without the equals sign.", near, near)
	}
	for _, other := range s.top {
		if other.what == kind.what {
			continue
		}
		if near := nameSuggestion(name, other.attrNames()); near != "" {
			return fmt.Sprintf(" Did you mean %q? That is a setting of %s, not of %s.", near, other.what, kind.what)
		}
	}
	if names := kind.attrNames(); len(names) > 0 {
		return fmt.Sprintf(" The settings of %s are %s.", kind.what, quoteList(names))
	}
	return ""
}

// forBlock says what an unknown block type in a body of kind probably
// meant, starting with a space.
func (s *suggester) forBlock(typ string, kind bodyKind) string {
	if near := nameSuggestion(typ, kind.blockTypes()); near != "" {
		return fmt.Sprintf(" Did you mean %q?", near)
	}
	for _, a := range kind.schema.Attributes {
		if a.Name == typ {
			return fmt.Sprintf(" Did you mean to set %q? If so, use the equals sign to assign it a value: %s = ...", typ, typ)
		}
	}
	if types := kind.blockTypes(); len(types) > 0 {
		return fmt.Sprintf(" The blocks allowed in %s are %s.", kind.what, quoteList(types))
	}
	return fmt.Sprintf(" %s takes no blocks.", upperFirst(kind.what))
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// fieldTags is the part of a struct's `hcl` tags the scenarios package
// needs: which field holds which attribute and which nested block.
type fieldTags struct {
	attrs  map[string]int
	blocks map[string]int
}

func fieldTagsOf(t reflect.Type) fieldTags {
	tags := fieldTags{attrs: map[string]int{}, blocks: map[string]int{}}
	for i := range t.NumField() {
		tag, ok := t.Field(i).Tag.Lookup("hcl")
		if !ok || tag == "" {
			continue
		}
		name, kind, found := strings.Cut(tag, ",")
		if !found {
			kind = "attr"
		}
		switch kind {
		case "attr", "optional":
			tags.attrs[name] = i
		case "block":
			tags.blocks[name] = i
		}
	}
	return tags
}

// blockElemType is the struct type a block field decodes one block into
// (T for fields of type T, *T, []T and []*T).
func blockElemType(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}
