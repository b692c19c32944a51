// Package scenarios reads Terrarium scenario files: the HCL format that names
// a run's settings, its world and its agents (docs/scenarios.md describes it).
//
// Guarantees:
//   - Load and Parse return either a complete, validated *Scenario or nil and
//     hcl.Diagnostics holding every problem found in the file, not just the
//     first: unknown blocks and settings, wrong types, missing or duplicate
//     blocks, bad values, unknown world kinds and builtin agents, programs
//     of runtime "nats" agents that cannot be run, colliding agent ids, and
//     the world kind's own objections. Each diagnostic carries the
//     file:line:column of the problem (Subject) and a detail that names the
//     setting and says what to write instead. Diagnostics are sorted by
//     position, so the same file always gives the same report.
//   - An unknown block or setting is reported with what was probably meant:
//     the closest name of that block (even one already set), a setting that
//     belongs in another block, or else the list of what the block accepts.
//   - HCL syntax errors are returned as hcl reports them, alone.
//   - The world block's body is decoded into the kind's NewConfig() pointer
//     with gohcl.DecodeBody (its `hcl` struct tags mean what gohcl says);
//     a config gohcl cannot decode into is a diagnostic, never a panic. A
//     literal map or list whose value does not fit is checked entry by
//     entry, each bad entry reported at itself.
//   - Validation builds the world once (world.Kind.New with the scenario's
//     seats, also when some settings failed to decode: they hold their
//     defaults) and discards it. Each error New returns, taken apart if it
//     was joined (errors.Join), is its own diagnostic: at the setting it
//     names when it has a WorldSetting() (setting, key string) method,
//     otherwise at the world block. Objections to settings that failed to
//     decode are left out.
//   - The command of a runtime "nats" agent is resolved as the host will
//     start it (agents.LookPath): a relative path against the scenario
//     file's directory (Parse: the current directory), a bare name in the
//     host's PATH. Agent.Path holds the absolute result.
//   - Every default is filled in: a loaded Scenario needs no further checks.
//   - Nothing is started and no file is written. Load reads the scenario
//     file and looks at (stat) the agents' programs; Parse only the latter.
//     Scenario files have no variables or functions.
//   - The package is safe for concurrent use; a Scenario is not modified after
//     Load returns it.
package scenarios
