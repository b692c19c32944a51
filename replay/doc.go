// Package replay re-applies a run's recorded actions to a fresh world,
// without starting any agent, and checks every tick's state hash against
// the one recorded (terrarium replay).
//
// Guarantees:
//   - Nothing in the run directory is written.
//   - Every line of events.jsonl is checked (JSON, sequence, hash chain);
//     the first bad one is named and the run is not certified.
//   - A run is certified only when its whole log is intact and ends in
//     run.finished, result.json pins that end, every tick replays to its
//     recorded hash and world events, every checkpoint's state hash matches
//     the replay at its tick, and the final hash equals result.json's.
//   - The first divergence is reported with its tick, both hashes and a
//     diff of the world's snapshot.
//
// Each recorded action is applied at the tick it was applied, tagged
// (world.Action.Tick) with the tick it answered, so a realtime run whose
// late actions landed ticks after they were sent replays as it ran.
//
// A run whose world the program that ran it supplied
// (terrarium.Config.World) names no world kind to build: that program
// replays it with Options.World, which makes the world again (see
// ExampleRun_gameWorld); without it Run returns ErrProgramWorld.
//
// Superseded events (moved aside by terrarium resume) are not in
// events.jsonl and are not replayed. A forked run replays from the copy of
// the checkpoint it started from, in its own checkpoints/.
package replay
