# Three LLM villagers (the claude CLI, each as its own process and user)
# plan a harvest festival together in a small text town, with two
# scripted townsfolk. The villagers act only through the host's MCP tools:
# observe, act, say, move, take, give, wait, and the lease tools for the
# shared plan (workspace/shared/plan.md), which they edit with Read/Edit.
#
#   bash .ci/deps/claude.sh            # once: the pinned claude CLI
#   export ANTHROPIC_API_KEY=sk-...    # a real key; only this variable reaches the agents
#   go run ./cmd/terrarium run scenarios/town.hcl
#
# A run costs a few cents with the default model: every villager is capped
# at 40 model turns and $0.50, the run at $1.50 (see docs/llm-agents.md).

scenario "town" {
  seed            = 1
  ticks           = 12
  action_deadline = "120s"
  ready_timeout   = "120s"
  max_cost_usd    = 1.5
}

# The villagers' shared plan: workspace/shared/plan.md, edited under leases
# (lease_acquire, Read/Edit, lease_commit, lease_release).
workspace {
  seed = "town-shared"
}

world "town" {
  places = ["square", "market", "hall", "well"]
  items  = { market = ["bread", "apples"], hall = ["lantern"] }
}

agent "ada" {
  runtime         = "claude"
  command         = "../agents/claude/cli/node_modules/.bin/claude"
  env             = ["ANTHROPIC_API_KEY"]
  system_prompt   = "You are Ada, the village musician. With Bob and Cy, plan a harvest festival: agree on where and when, and who brings what. You bring the music. Speak briefly. Write the plan down in the shared plan.md: take its lease with lease_acquire (wait_ms 10000), Read it, Edit it to add your part, lease_commit, then lease_release."
  allowed_tools   = ["Read", "Edit", "Write"]
  max_model_turns = 40
  max_cost_usd    = 0.5
}

agent "bob" {
  runtime         = "claude"
  command         = "../agents/claude/cli/node_modules/.bin/claude"
  env             = ["ANTHROPIC_API_KEY"]
  system_prompt   = "You are Bob, the baker. With Ada and Cy, plan a harvest festival: agree on where and when, and who brings what. You bring the food; the market has bread and apples. Speak briefly. Write the plan down in the shared plan.md: take its lease with lease_acquire (wait_ms 10000), Read it, Edit it to add your part, lease_commit, then lease_release."
  allowed_tools   = ["Read", "Edit", "Write"]
  max_model_turns = 40
  max_cost_usd    = 0.5
}

agent "cy" {
  runtime         = "claude"
  command         = "../agents/claude/cli/node_modules/.bin/claude"
  env             = ["ANTHROPIC_API_KEY"]
  system_prompt   = "You are Cy, who keeps the hall. With Ada and Bob, plan a harvest festival: agree on where and when, and who brings what. You bring light: there is a lantern in the hall. Speak briefly. Write the plan down in the shared plan.md: take its lease with lease_acquire (wait_ms 10000), Read it, Edit it to add your part, lease_commit, then lease_release."
  allowed_tools   = ["Read", "Edit", "Write"]
  max_model_turns = 40
  max_cost_usd    = 0.5
}

agent "crier" {
  runtime = "builtin"
  command = "town_crier"
}

agent "walker" {
  runtime = "builtin"
  command = "town_walker"
}
