package scenarios

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// pool decodes pool_size and refuses the settings a pool does not support
// (a pool's members share one process: it is restarted, stopped and
// judged unhealthy as one, which this version does not do).
func (d *decoder) pool(b *hcl.Block, attrs hcl.Attributes, a *Agent) {
	attr := optional(attrs, "pool_size")
	if a.Runtime != RuntimePool {
		if attr != nil {
			d.errorf(attr.NameRange, "pool_size needs runtime \"pool\"",
				`pool_size applies only to runtime = "pool" (agents served many to a process); remove it or set runtime = "pool".`)
		}
		return
	}
	a.PoolSize = min(DefaultPoolSize, max(a.Count, 1))
	if attr != nil {
		if v, ok := d.whole(attr, 1, MaxPoolSize, fmt.Sprintf("a whole number from 1 to %d (agents per pool process), like pool_size = 1000", MaxPoolSize)); ok {
			a.PoolSize = int(v)
		}
	}
	unsupported := func(name, why string) {
		if at := optional(attrs, name); at != nil {
			d.errorf(at.NameRange, fmt.Sprintf("%s is not supported for runtime \"pool\"", name),
				"%s; remove %s from agent %q.", why, name, a.Name)
		}
	}
	if a.Restart != RestartNever {
		unsupported("restart", `a pool process is not restarted (all its members would restart at once): only restart = "never"`)
	}
	unsupported("max_turns", "a pool's members cannot be stopped one by one")
	unsupported("restart_unhealthy", "killing a pool process would stop all its members")
	for _, name := range []string{"memory", "pids", "cpu"} {
		unsupported(name, "a pool process gets no resource limits yet")
	}
}
