# The minority game (Challet and Zhang 1997): 101 agents choose A or B each
# round and the side fewer chose wins. Each agent holds S = 2 random
# strategies over the last m winning sides and plays its best-scoring one.
# The volatility σ²/N of #A - #B measures how well they coordinate: below
# 0.5 at m = 5, above 1 at m = 2 (herding), about 1 for random play
# (player = "random_choice"). Measured over rounds 1,000-3,000, after a
# transient.
#
#   go run ./cmd/terrarium run scenarios/minority.hcl
#   go run ./cmd/terrarium sweep --var memory=2,5 --seeds 1..10 scenarios/minority.hcl
#   go run ./cmd/terrarium sweep --var player=random_choice --seeds 1..10 scenarios/minority.hcl
#
# With runtime = "pool" one process serves all 101 players (much faster;
# the players' seeds then derive from the pool's, so the runs differ from
# the process runs of the same seed).

variable "memory" {
  default     = 5
  description = "m: how many past winning sides a strategy looks at"
}

variable "runtime" {
  default     = "builtin"
  description = "builtin: a process per player; pool: one process serving all 101 (the same code)"
}

variable "player" {
  default     = "minority"
  description = "minority (S = 2 strategies over m rounds) or random_choice (a fair coin)"
}

scenario "minority" {
  seed            = 1
  action_deadline = "5s"
}

world "nplayer_game" {
  game         = "minority"
  rounds       = 3000
  history      = 32
  measure_from = 1000
}

agent "player" {
  runtime = var.runtime
  command = var.runtime == "pool" ? "${var.player}-pool" : var.player
  args    = var.player == "random_choice" ? ["p=0.5"] : ["strategies=2", "memory=${var.memory}"]
  count   = 101
}
