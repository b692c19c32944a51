package agents

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
	EnvSeed        = "TERRARIUM_SEED"          // a per-agent seed derived from the scenario seed
	EnvBuiltin     = "TERRARIUM_BUILTIN"       // builtin runtime: the reference agent to run
)
