// Package agenttest holds test helpers for code that starts agent processes:
// a logger that writes through t.Log, a supervisor shut down at cleanup, and
// leak checks for processes and goroutines. Everything is real: the helpers
// inspect /proc and runtime stacks, they mock nothing.
//
// Cleanups run last-registered first, so call the leak checks at the top of a
// test, before creating what they check: their checks then run after every
// other cleanup of the test (for example Supervisor's Shutdown).
package agenttest
