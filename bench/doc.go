// Package bench is Terrarium's measuring stick: `terrarium bench` runs each
// Terrarium case and its raw baseline side by side, alternating them, and
// reports median, min and max per side and the ratio Terrarium / baseline.
//
// The baseline is defined so that the ratio cannot flatter Terrarium. It
// starts the same children (this binary re-executed as the builtin "echo"
// agent) through the same agents.Supervisor (own session and process group,
// log capture, a private workspace, its own user and group when the host is
// root, from a UID block reserved the way a run reserves one), on the same
// embedded bus (bus.Start, JetStream on), each child with its own
// credentials and permissions (bus.Server.AddAgent), its own subjects and
// one authenticated connection, and the host with one subscription per
// agent. The messages have the sizes of Terrarium's envelopes. Left out are
// only Terrarium's loop, envelope encoding and decoding, the SDK, events
// and recording: what Terrarium adds over the bus and the process boundary.
// The lease round trip's baseline is a child (builtin "lease-echo") timing
// raw request/replies of the sizes of Terrarium's lease messages; the
// observer case's is a raw JetStream ordered consumer reading as many
// messages, of the same sizes, from a stream made as the run's is.
//
// Guarantees: cases run one at a time (never two runs at once), Terrarium
// and baseline runs alternate (which one goes first alternates too), in
// full mode an untimed warm-up run precedes the runs of each size, every
// child process a run started is gone when the run's figures are taken, and
// Run returns an error, not a partial report, when a run fails. Figures are
// wall-clock measurements on a machine that may be shared: the report
// carries the load average before and after.
package bench
