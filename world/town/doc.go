// Package town is the "town" world kind: a small text world for LLM
// agents. It has named places, each agent's position, items lying in
// places or carried, and speech heard by those in the same place.
//
// # Observation (world to agent), each tick
//
//	{"tick":3,"you":"ada","place":"square","places":["square","market","hall"],
//	 "here":["bob"],"items_here":["lantern"],"inventory":["bread"],
//	 "heard":[{"tick":2,"from":"bob","text":"meet at the hall?"}]}
//
// here lists the other agents in the same place, sorted; heard holds what
// was said in the agent's place at the previous tick (and what was said to
// it there), in agent-id order.
//
// # Actions (agent to world)
//
// One object with "do": {"do":"move","to":"market"}, {"do":"say","text":"hi"}
// (optionally "to": an agent id, heard by it alone), {"do":"take","item":"x"}
// (an item lying here), {"do":"give","item":"x","to":"bob"} (to someone
// here), {"do":"wait"} (the default action). The same actions are the kind's
// tools (world.Kind.Tools), so LLM agents call them through the MCP server.
//
// # Order within a tick
//
// Deterministic, in agent-id order within each phase: speech first (heard
// by those in the place at the start of the tick), then take and give,
// then moves. A take of an item another agent took first that tick, a
// give to someone not there, or a move to an unknown place is refused
// with a world.refused event; the tick goes on.
//
// Shared documents are not the world's state: they are files of the run's
// shared tree (workspace/shared/, e.g. plan.md in scenarios/town.hcl),
// edited under leases through the MCP server's lease tools
// (docs/llm-agents.md).
package town
