// Package observe reads a run's events as an observer: live from the run's
// JetStream stream (Open, over any connection allowed to read it: the
// observer credentials of observer.json, or the host's own connection),
// or replayed from a run directory's events.jsonl without a server
// (Replay). Watch is `terrarium watch`: it picks one or the other, filters
// (Filter) and prints (Format).
//
// Guarantees:
//   - A Feed delivers the stream's events in stream order, which is the
//     event seq order, with no duplicate: it reads through an ordered
//     consumer of its own (pull based, flow controlled by the client), so
//     a Feed that is not read holds the server's messages, never the
//     world's loop, and loses nothing; it resumes after a reconnect from
//     the last event it handed out.
//   - The stream may miss events the host could not publish (counted in
//     result.json's stream section); Watch reports a gap in seq on stderr.
//     events.jsonl is the record of truth.
//   - Next blocks until an event, ctx's end or Close; after Close it
//     returns ErrClosed. Close may be called more than once.
//   - Nothing here starts a goroutine that outlives Close, apart from the
//     nats.go connection's own, which belong to whoever made the connection.
package observe
