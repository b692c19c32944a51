package agents

import (
	"sort"
	"strings"
)

// Environment variables the host gives every agent process. They are the
// whole contract between host and agent process (see docs/protocol.md).
const (
	EnvNATSURL     = "TERRARIUM_NATS_URL"      // nats://127.0.0.1:PORT
	EnvNATSUser    = "TERRARIUM_NATS_USER"     // this agent's own user name
	EnvNATSPass    = "TERRARIUM_NATS_PASSWORD" // and password
	EnvInboxPrefix = "TERRARIUM_INBOX_PREFIX"  // reply inbox prefix the agent must use
	EnvRun         = "TERRARIUM_RUN"           // run id
	EnvAgentID     = "TERRARIUM_AGENT_ID"      // this agent's id
	EnvGroup       = "TERRARIUM_AGENT_GROUP"   // the scenario agent block it came from
	EnvWorkspace   = "TERRARIUM_WORKSPACE"     // its private directory (also its cwd)
	EnvShared      = "TERRARIUM_SHARED"        // the shared, lease-guarded tree
	EnvSeed        = "TERRARIUM_SEED"          // a per-agent seed derived from the scenario seed
	EnvBuiltin     = "TERRARIUM_BUILTIN"       // builtin runtime: the reference agent to run
	// EnvPool is, for runtime "pool", the pool's id (instead of
	// EnvAgentID): the process serves the members the hello reply lists.
	EnvPool = "TERRARIUM_POOL"
	// EnvResumeTick is set when the run goes on from a checkpoint (resume
	// or fork): the last tick already played. The agent's workspace is as
	// it was at that tick; the next observation is for the tick after it.
	EnvResumeTick = "TERRARIUM_RESUME_TICK"
)

// BuildEnv returns the complete environment of an agent process: the host
// variables (host is os.Environ()) whose names are in allow, then vars (the
// TERRARIUM_* variables; they win over a host variable of the same name). The
// result is sorted by name, one KEY=VALUE per name, so it is deterministic.
// Host variables not in allow never appear.
func BuildEnv(host []string, allow []string, vars map[string]string) []string {
	allowed := make(map[string]bool, len(allow))
	for _, name := range allow {
		allowed[name] = true
	}
	m := make(map[string]string, len(allow)+len(vars))
	for _, kv := range host {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k != "" && allowed[k] {
			m[k] = v // a later duplicate wins, as in exec
		}
	}
	for k, v := range vars {
		m[k] = v
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	env := make([]string, len(keys))
	for i, k := range keys {
		env[i] = k + "=" + m[k]
	}
	return env
}
