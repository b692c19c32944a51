# Agents in three languages in one world, each its own OS process: Go (the
# SDK; the builtin reference agents are Go SDK programs), Python over stdio
# with the standard library only, and Node.js with the official NATS client.
# A 50-round round-robin prisoner's dilemma.
#
#   bash .ci/deps/node.sh        # once: npm ci in agents/examples/node
#   go run ./cmd/terrarium run scenarios/polyglot.hcl

scenario "polyglot" {
  seed            = 7
  ticks           = 50
  action_deadline = "5s"
  ready_timeout   = "60s"
}

world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 50
}

agent "go_tit_for_tat" {
  runtime = "builtin"
  command = "tit_for_tat"
}

agent "python_tit_for_tat" {
  runtime = "stdio"
  command = "../agents/examples/python/tit_for_tat.py"
}

agent "node_tit_for_tat" {
  runtime = "nats"
  command = "../agents/examples/node/tit_for_tat.mjs"
}

agent "defector" {
  runtime = "builtin"
  command = "defector"
}

agent "alternator" {
  runtime = "builtin"
  command = "alternator"
}
