# Wolf-sheep predation (Wilensky's NetLogo model, "sheep-wolves-grass"),
# on its default 51x51 torus: 100 sheep and 50 wolves, energy gains 4 and
# 20, reproduction 4% and 5% per tick, grass regrowing in 30 ticks. Both
# species survive to tick 1,000 in most seeds; with grass = false one of
# them dies out in most seeds.
#
# Births need new agents, and no process is started mid-run: each agent
# block's count is a pool of seats. The first initial_* seats start alive;
# the others wait, unobserved, and a birth wakes the lowest free seat of
# its pool; a dead animal's seat goes back to the pool. A birth with no
# free seat is refused and counted (births_refused; result.json's
# metrics.births_refused.sum, and first_nonzero.births_refused: the first
# tick one was). With grass the populations stay well below the 4,000 and
# 2,000 seats; without grass the sheep, which then never starve, grow
# until the wolves eat them down or, once the wolves are gone, until their
# seats run out. The seats are served by pools ("animal-pool": one process
# per 1,000 seats, six in all).
#
#   go run ./cmd/terrarium run scenarios/predator_prey.hcl
#   go run ./cmd/terrarium sweep --var grass=true,false --seeds 1..10 scenarios/predator_prey.hcl

variable "grass" {
  default     = true
  description = "false: sheep neither eat nor starve"
}

variable "size" {
  default     = 51
  description = "the torus's width and height"
}

scenario "predator_prey" {
  seed            = 1
  action_deadline = "10s"
  ready_timeout   = "2m"
}

world "grid" {
  rules              = "predator_prey"
  width              = var.size
  height             = var.size
  topology           = "torus"
  prey               = "sheep"
  predator           = "wolves"
  initial_prey       = 100
  initial_predators  = 50
  prey_gain          = 4
  predator_gain      = 20
  prey_reproduce     = 0.04
  predator_reproduce = 0.05
  grass              = var.grass
  grass_regrowth     = 30
  horizon            = 1000
  snapshots          = [0, 100, 500, 1000]
}

agent "sheep" {
  runtime = "pool"
  command = "animal-pool"
  count   = 4000
}

agent "wolves" {
  runtime = "pool"
  command = "animal-pool"
  count   = 2000
}
