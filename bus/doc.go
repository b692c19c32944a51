// Package bus runs a run's embedded NATS server, gives every agent its own
// identity on it, names the subjects (subjects.go) and defines the wire
// envelope (envelope.go). Encode and Decode give exactly encoding/json's
// bytes and values, through a fast path for the canonical form Encode
// writes (codec.go).
//
// # Server
//
// Start runs nats-server in process: no signal handlers (NoSigs; the host
// owns signals), a loopback client port (random unless Options.Port is
// set), a websocket listener only when Options.Websocket asks for one
// (loopback, plain ws://), and no other listener (no monitoring, cluster,
// gateway, leaf node or MQTT port), JetStream stored in Options.Dir, messages up to
// MaxPayload. Per-connection limits keep the server defaults: 64 MiB of
// pending outbound data and a 10 s write deadline, after which a client
// that does not read is disconnected as a slow consumer; 4 KiB control
// lines. Server logs go to Options.Logger.Named("nats"). Start returns once
// the server accepts connections.
//
// Close shuts the server down, waits for its goroutines and for the
// pending OnViolation calls, and leaves no goroutine of this package
// behind. A second Close does nothing and returns nil. After Close,
// Connect and AddAgent fail with ErrClosed.
//
// # Identity
//
// Every login goes through a CustomClientAuthentication. The host's own
// connections (Connect, in process) use a random host password and have
// full permissions. Each agent is registered at run time with AddAgent,
// which returns its user name (the agent id), a 256-bit random password
// (crypto/rand; compared in constant time) and its inbox prefix. Agent id
// in run R may
//
//	publish   sim.R.agent.<id>.>
//	subscribe sim.R.to.<id>.>, sim.R.world.>, _INBOX.R.<id>.>
//
// and nothing else: no other agent's subjects, no other inbox, no
// JetStream API, no $SYS. Requests an agent makes work because the host
// (full permissions) replies to the agent's own inbox, which the agent may
// read; agents get no allow_responses permission, so they cannot answer a
// request, and a reply subject they receive grants them nothing.
// RemoveAgent refuses new logins with the agent's credentials at once and
// closes its open connections.
//
// # Event stream and observers
//
// OpenEventStream creates the run's stream EVENTS_<run> (StreamName) on
// sim.<run>.events.> (file storage, 1 GiB by default, oldest discarded
// first, duplicates dropped by Nats-Msg-Id = the event seq) and returns an
// EventPublisher: Publish never blocks (a bounded queue and at most
// StreamOptions.InFlight unacknowledged publishes, from one goroutine, in
// order); what it cannot publish is counted (StreamStats). Close waits for
// the acknowledgements; WaitConsumers gives observers a bounded moment to
// be sent the rest.
//
// AddObserver registers user observer.<name> (a dot: never an agent id)
// with a 256-bit password. An observer may publish only
//
//	$JS.API.STREAM.INFO.<stream>, $JS.API.CONSUMER.CREATE.<stream>[.>],
//	$JS.API.CONSUMER.DURABLE.CREATE.<stream>.*, $JS.API.CONSUMER.INFO.<stream>.*,
//	$JS.API.CONSUMER.MSG.NEXT.<stream>.*, $JS.ACK.<stream>.>
//
// and subscribe only to its inbox _OBSERVER.<run>.<name>.> (outside
// _INBOX, so no agent's inbox permission covers it). Push consumers that
// deliver elsewhere are deleted by the host as soon as the API audit
// advisory reports them (guard.go) and reported with OpConsumer. Refusals
// of an observer are Violations with User observer.<name> and no Agent.
//
// # Violations
//
// A refused publish or subscription and a refused login become a
// Violation handed to Options.OnViolation. Calls are made one at a time
// from one goroutine of this package, in the order the server reported
// them, never on a server goroutine; at most 1024 wait, further ones are
// dropped and counted (DroppedViolations), so a flooding agent can neither
// block the server nor grow memory.
//
// Attribution: nats-server has no advisory for permission violations; it
// logs them (client.go pubPermissionViolation, subPermissionViolation)
// through the logger with the connection's prefix
// "<addr> - cid:<N> - ...". The connection id (cid) is assigned by the
// server, comes before anything the client controls, and the client's own
// name that follows is Go-quoted, so the prefix parses unambiguously and
// an agent cannot pass as another. The authenticator records cid -> agent
// id at login (under the same lock that checked the credentials), and the
// log adapter looks the cid up. Entries for closed connections are pruned
// as logins accumulate. Violation.Agent is set only from that map, that
// is only for a connection that proved an agent's credentials; User is
// then the same id.
//
// A failed login proves nothing (anyone may present any user name), so
// its Violation (OpAuth) never names an agent: Agent is "" and User is the
// user name the client presented ("" if none), even when it is a
// registered or removed agent's id. Failed logins are reported by the
// authenticator itself; the server's own "authentication error" log line
// for them is not reported twice, and the ones the server refuses without
// the authenticator refusing them (an account named in CONNECT, a protocol
// message before CONNECT) are reported from that line, with the user name
// it quotes (`User "<name>"`) or "".
//
// Everything is safe for concurrent use.
package bus
