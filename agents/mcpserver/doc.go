// Package mcpserver serves the world to one LLM agent as MCP tools (the
// official Go SDK, github.com/modelcontextprotocol/go-sdk): observe, act,
// say, the world kind's own tools (world.Kind.Tools), and the lease tools
// for the shared tree (lease_acquire, lease_create, lease_renew,
// lease_commit, lease_release) over the SDK's lease methods.
//
// It is an agent of the bus like any other: it connects with the agent's
// own credentials (agents/sdk), so whatever it does on the bus it does as
// that agent and no other, with that agent's bus permissions; no tool takes
// an agent id, and none is read from a flag or a header. The host starts
// one per agent, over stdio: the claude CLI (or any MCP-capable program)
// starts `terrarium mcp` from the MCP config file the host wrote into the
// agent's directory, and the server inherits the agent's environment
// (docs/llm-agents.md says why stdio and not HTTP).
//
// Guarantees:
//   - One action per tick: act, say and the world tools send the action
//     for the newest observation's tick; a second one at the same tick is
//     refused with a tool error (the model learns why), never sent.
//   - observe never blocks past Config.WaitLimit or the call's context;
//     lease_acquire never waits past MaxLeaseWait.
//   - A lease refusal is a tool error carrying the host's reason; the lease
//     tools act only on this agent's leases (the host checks every token).
//   - lease_commit hashes the file's content as it is when called.
//   - After the host stopped the agent or ended the run, every tool but
//     observe fails with "the run is over".
//   - Run returns when the client closes the transport or ctx is done; no
//     goroutine of the server is left.
package mcpserver
