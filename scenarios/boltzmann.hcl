# The Boltzmann wealth model (Dragulescu and Yakovenko 2000; Mesa's
# tutorial model): 100 agents on a 10x10 torus, each starting with one
# unit. Every tick each agent moves to a random neighbouring cell and gives
# one unit, if it has one, to a random agent of its cell. Total wealth is
# conserved exactly and nobody goes below zero, while wealth piles up: the
# Gini coefficient, averaged over ticks 100-300 and over seeds, lies within
# 0.58-0.72.
#
#   go run ./cmd/terrarium run scenarios/boltzmann.hcl

scenario "boltzmann" {
  seed            = 1
  action_deadline = "5s"
}

world "grid" {
  rules         = "boltzmann"
  width         = 10
  height        = 10
  topology      = "torus"
  neighbourhood = "moore"
  horizon       = 300
  measure_from  = 100
  snapshots     = [0, 300]
}

agent "agent" {
  runtime = "builtin"
  command = "boltzmann"
  count   = 100
}
