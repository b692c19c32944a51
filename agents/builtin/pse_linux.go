//go:build linux && !race

package builtin

import (
	_ "unsafe" // go:linkname

	_ "github.com/nats-io/nats-server/v2/server/pse" // linked in anyway by the host's binary
)

// pseStatFile is the file the NATS server's process-statistics package
// reads once a second, in every process that links it (its init starts a
// timer that reads /proc/<pid>/stat and schedules itself again). An agent
// process runs no server: Main empties the name, so the next read fails
// and the timer is not scheduled again. At 1,000 agent processes the
// reads cost about 0.15 s of CPU per second of wall time. (Not under the
// race detector: the timer's goroutine reads the name without a lock.)
//
//go:linkname pseStatFile github.com/nats-io/nats-server/v2/server/pse.procStatFile
var pseStatFile string

// stopServerStats stops the NATS server's statistics timer in this
// process (an agent's, which serves nothing).
func stopServerStats() { pseStatFile = "" }
