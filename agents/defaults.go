package agents

import (
	"debug/buildinfo"
	"slices"
)

// GoDefaults are the variables the host gives a Go agent program unless
// the scenario (env allow-list) or the embedding program (Config.Env)
// names them: one P, because an agent answers one observation at a time
// and with more Ps each round trip costs more CPU in scheduler hand-offs
// between threads (15–40 % slower lockstep round trips to Go child
// processes in a probe on the project's 2-core machines, run while it was
// planned; docs/benchmarks.md does not measure it).
var GoDefaults = map[string]string{"GOMAXPROCS": "1"}

// IsGoProgram reports whether the executable at path was built by the Go
// toolchain (it carries Go build information).
func IsGoProgram(path string) bool {
	_, err := buildinfo.ReadFile(path)
	return err == nil
}

// AddGoDefaults puts GoDefaults into vars, except the names in allow (the
// scenario passes the host's value) and those vars or given already hold.
func AddGoDefaults(vars, given map[string]string, allow []string) {
	for k, v := range GoDefaults {
		if _, set := given[k]; set || slices.Contains(allow, k) {
			continue
		}
		if _, set := vars[k]; !set {
			vars[k] = v
		}
	}
}
