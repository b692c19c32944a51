// Package inproc runs agents written as Go values inside the host's
// process: no process, no isolation, no bus — for crowds of cheap NPCs.
//
// They keep the protocol's semantics: each gets its observation with the
// tick's deadline (as the context's deadline of Act), its answer reaches the
// loop through the same Deliver as a bus agent's (so it is judged — late,
// duplicate, invalid — and recorded in tick.closed like any other), and a
// missing answer is filled by the scenario's policy.
//
// Guarantees: Act is never called concurrently for one agent; an agent
// that is still acting when its next observation comes gets only the latest
// one when it is done (older ones are counted as coalesced, never queued);
// Send never blocks the loop. A pool of workers (GOMAXPROCS by default)
// calls Act, so an agent that blocks holds a worker: Act must return when
// its context ends. Close cancels every Act's context and waits for the
// workers up to a grace period; a worker stuck in an Act that ignores its
// context is abandoned (and reported by Close).
package inproc
