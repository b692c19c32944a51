// Package scenarios reads Terrarium scenario files: the HCL format that names
// a run's settings, its world and its agents (docs/scenarios.md describes it).
//
// Guarantees:
//   - Load and Parse return either a complete, validated *Scenario or nil and
//     hcl.Diagnostics holding every problem found in the file, not just the
//     first: unknown blocks and settings, wrong types, missing or duplicate
//     blocks, bad values, unknown world kinds and builtin agents, colliding
//     agent ids, and the world kind's own objections. Each diagnostic carries
//     the file:line:column of the problem (Subject) and a detail that names
//     the setting and says what to write instead. Diagnostics are sorted by
//     position, so the same file always gives the same report.
//   - HCL syntax errors are returned as hcl reports them, alone.
//   - The world block's body is decoded into the kind's NewConfig() pointer
//     with gohcl.DecodeBody (its `hcl` struct tags mean what gohcl says);
//     a config gohcl cannot decode into is a diagnostic, never a panic.
//   - Every default is filled in: a loaded Scenario needs no further checks.
//   - Validation builds the world once (world.Kind.New with the scenario's
//     seats) and discards it; nothing is started, no file is written, and the
//     only file read is the scenario itself. Scenario files have no variables
//     or functions.
//   - The package is safe for concurrent use; a Scenario is not modified after
//     Load returns it.
package scenarios
