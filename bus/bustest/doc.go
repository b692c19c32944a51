// Package bustest starts real bus servers for tests and checks that tests
// leave no goroutines behind. Nothing here is a mock: NewServer runs the
// embedded nats-server on a loopback port with JetStream in t.TempDir().
//
// Every resource is released in t.Cleanup. Loggers write through t.Log, so
// they print only when the test fails (or with -v).
package bustest
