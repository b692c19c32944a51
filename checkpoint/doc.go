// Package checkpoint writes and reads a run's checkpoints: the world's
// snapshot, the position in the event log, the loop's and the supervisor's
// state, and parts (each agent's workspace; the shared tree's versions and
// the lease table are meant to be parts too) that the host hands in.
//
// Guarantees:
//   - A checkpoint is written atomically: into a temporary directory, every
//     file and directory fsynced, then renamed into place and the parent
//     fsynced. A crash (kill -9) at any point leaves either the new
//     checkpoint complete or no trace of it but a temporary directory,
//     which List ignores and the next Write removes; earlier checkpoints are
//     untouched.
//   - List returns only complete checkpoints whose files match the digests
//     in their checkpoint.json, oldest first.
//   - Write keeps the newest Keep checkpoints and removes older ones.
//   - A checkpoint directory is private to the host (mode 0700): it holds
//     every agent's workspace, which no other agent may read.
//
// A Writer is used from one goroutine at a time.
package checkpoint
