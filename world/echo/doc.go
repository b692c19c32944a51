// Package echo is the world kind "echo": the smallest world a lockstep tick
// can have. Every agent is observed at every tick with an observation of a
// fixed size, may answer with any JSON action, and nothing is scored. It
// measures hosting (the bus, the process boundary, the loop, the event
// recording), not a game: `terrarium bench` runs its Terrarium cases on it,
// and the builtin agent "ack" plays it.
//
// Guarantees: Observe, Validate and Step never fail and cost O(payload) and
// O(actions); the state hash depends only on the ticks played and the
// number of actions applied, so runs are reproducible.
package echo
