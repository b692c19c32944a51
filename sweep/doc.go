// Package sweep runs a scenario over every combination of variable values
// and seeds (terrarium sweep): each combination is one run, its own Host in
// this process, in a deterministic directory
// <out>/<name=value,...>/seed-<n>/, at most Parallel at a time.
//
// Guarantees:
//   - The order of the points, their directories and the rows of sweep.csv
//     depend only on the variables and seeds given.
//   - A run that fails (a value the scenario refuses, a run that fails or
//     aborts) is reported in its row and does not stop the others.
//   - A point whose directory holds a result.json (or failed.json, for a
//     value the scenario refused) is not run again: a second Run of the same
//     sweep runs nothing new. A run an earlier invocation left stopped
//     (interrupted, or killed with the sweep) is resumed (terrarium.Resume);
//     one that cannot be is moved aside and run again.
//   - Cancelling ctx starts no new run and interrupts the running ones;
//     Run returns once every run has written its results.
package sweep
