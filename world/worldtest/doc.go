// Package worldtest holds test helpers for the world loop: a manual clock
// that moves only when a test advances it, so real-time and deadline tests
// decide by tick counts, never by how fast the machine is.
//
// ManualClock is safe for use from any goroutine. Its timers fire from
// Advance, on the advancing goroutine, in order of their deadlines; a timer
// channel has room for one value, so firing never blocks.
package worldtest
