# Schelling's segregation model: a 51x51 torus at density 0.95 (2,470
# agents, two equal groups, 131 empty cells). An agent is content when at
# least 30% of its (Moore) neighbours are of its group; each tick every
# discontented agent asks to move and the world moves it to a random empty
# cell. The mean share of like neighbours starts near 0.5 and ends at 0.70
# or more, with everyone content well before tick 200.
#
# The agents run in pools (runtime "pool"): "schelling-pool" serves up
# to 1,000 agents per process with the same code as the builtin
# "schelling" agent, so the 2,470 agents are four processes. (As one
# process each, runtime = "builtin" and command = "schelling": 2,470
# processes, about 4 GB of memory.)
#
#   go run ./cmd/terrarium run scenarios/schelling.hcl
#   go run ./cmd/terrarium sweep --seeds 1..5 scenarios/schelling.hcl

variable "threshold" {
  default     = 0.3
  description = "the share of like neighbours an agent wants"
}

scenario "schelling" {
  seed            = 1
  action_deadline = "30s"
  ready_timeout   = "5m"
}

world "grid" {
  rules         = "schelling"
  width         = 51
  height        = 51
  topology      = "torus"
  neighbourhood = "moore"
  threshold     = var.threshold
  horizon       = 200
  snapshots     = [0, 5, 20, 200]
}

agent "blue" {
  runtime = "pool"
  command = "schelling-pool"
  count   = 1235
}

agent "red" {
  runtime = "pool"
  command = "schelling-pool"
  count   = 1235
}
