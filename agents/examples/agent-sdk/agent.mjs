// A Terrarium agent written with the Claude Agent SDK (docs/llm-agents.md,
// "An Agent SDK agent"). Plain JavaScript (ES module): runs on Node.js 18.14
// and later as shipped, no TypeScript step. Scenario block:
//
//   agent "sdk" {
//     runtime = "mcp"
//     command = "node"
//     args    = ["/abs/path/agents/examples/agent-sdk/agent.mjs"]
//     env     = ["ANTHROPIC_API_KEY"]
//   }
//
// The host writes the MCP config naming its server (acting as this agent
// only) and puts its path in TERRARIUM_MCP_CONFIG.
import { query } from "@anthropic-ai/claude-agent-sdk";
import { readFileSync } from "node:fs";

const configPath = process.env.TERRARIUM_MCP_CONFIG;
if (!configPath) {
  console.error("TERRARIUM_MCP_CONFIG is not set: run me as a runtime \"mcp\" agent of a Terrarium scenario");
  process.exit(2);
}
const cfg = JSON.parse(readFileSync(configPath, "utf8"));
const id = process.env.TERRARIUM_AGENT_ID ?? "agent";
const tool = (name) => `mcp__terrarium__${name}`;

let code = 0;
for await (const msg of query({
  prompt: "Play: call observe with wait=true; for each observation send one action with act (or a world tool); repeat until observe says run_over, then stop.",
  options: {
    systemPrompt: `You are agent ${id} in a Terrarium simulation. Act only through the terrarium MCP tools.`,
    mcpServers: cfg.mcpServers,
    strictMcpConfig: true,
    allowedTools: ["observe", "act", "say", "move", "take", "give", "wait"].map(tool),
    permissionMode: "dontAsk",
    maxTurns: Number(process.env.MAX_TURNS ?? 200),
  },
})) {
  if (msg.type === "result") {
    console.error(`result ${msg.subtype}: turns ${msg.num_turns}, cost $${msg.total_cost_usd}`);
    if (msg.is_error) code = 1;
  }
}
process.exit(code);
