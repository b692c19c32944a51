package world

import (
	"fmt"
	"sort"
	"sync"
)

// Kind is a type of world a scenario can name in its world block.
type Kind struct {
	// Name is the label used in scenario files: world "NAME" { ... }.
	Name string
	// Doc is one line describing the kind (shown by validate and in docs).
	Doc string
	// NewConfig returns a pointer to a fresh settings struct with its defaults
	// set. Its fields carry `hcl:"name,optional"` style tags: the scenarios
	// package decodes the world block's body into it (so unknown and mistyped
	// settings are reported with their position). world itself never imports HCL.
	NewConfig func() any
	// New builds a world from a decoded config and the run's seats, sorted by
	// id. It must not start goroutines or touch files. An error here is a
	// scenario error: it should say which setting is wrong and how to fix it.
	New func(config any, seats []Seat) (World, error)
	// Tools, optional, describes the kind's actions as tools, for LLM
	// agents (the MCP server offers them next to observe and act). Calling
	// tool NAME with input {...} sends the action {"do": "NAME", ...input}
	// for the current tick, which the world's Validate then checks. A tool
	// named "say" is what the MCP server's say tool uses.
	Tools []Tool
}

// Tool is one action of a world kind described for a model.
type Tool struct {
	Name        string
	Description string
	// Input is the JSON Schema of the tool's input (an object), without the
	// "do" field the action gets.
	Input map[string]any
}

var (
	kindsMu sync.RWMutex
	kinds   = map[string]Kind{}
)

// Register makes a world kind available to scenarios. It panics on a
// duplicate or incomplete kind (a programming error, found at init).
func Register(k Kind) {
	if k.Name == "" || k.NewConfig == nil || k.New == nil {
		panic("world: Register of incomplete kind " + k.Name)
	}
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if _, dup := kinds[k.Name]; dup {
		panic(fmt.Sprintf("world: kind %q registered twice", k.Name))
	}
	kinds[k.Name] = k
}

// LookupKind returns the registered kind of that name.
func LookupKind(name string) (Kind, bool) {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	k, ok := kinds[name]
	return k, ok
}

// KindNames lists the registered kinds, sorted.
func KindNames() []string {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	names := make([]string, 0, len(kinds))
	for n := range kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ConfigAs returns the settings a Kind's New was given as a T: the *T its
// NewConfig made (decoded by the scenarios package), or a T a Go caller
// passed by value. Anything else, or a nil *T, is an error naming the kind.
func ConfigAs[T any](kind string, config any) (T, error) {
	var zero T
	switch v := config.(type) {
	case *T:
		if v == nil {
			return zero, fmt.Errorf("%s: nil config", kind)
		}
		return *v, nil
	case T:
		return v, nil
	default:
		return zero, fmt.Errorf("%s: config is %T, want *%T", kind, config, zero)
	}
}
