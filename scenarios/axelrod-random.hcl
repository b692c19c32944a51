# Axelrod's tournament for reproducibility experiments (docs/reproducibility.md):
# the strategies of axelrod.hcl once each plus "random", which draws its moves
# from its own seed (TERRARIUM_SEED), a checkpoint every 50 ticks, all kept,
# and two variables to change from the command line.
#
#   go run ./cmd/terrarium run --out runs/base scenarios/axelrod-random.hcl
#   go run ./cmd/terrarium run --from runs/base@100 --var tft=defector --out runs/tft-defects scenarios/axelrod-random.hcl
#   go run ./cmd/terrarium sweep scenarios/axelrod-random.hcl --var payoff_t=4,5,5.5 --seeds 1..5 --parallel 2

# The temptation payoff T (defect against a cooperator). The prisoner's
# dilemma needs T > R = 3 and 2R > T + S = T: 3 < T < 6. The world refuses
# other values (6, say: alternating exploitation would pay more than
# cooperating).
variable "payoff_t" { default = 5 }

# The program of the agent "tit_for_tat": a fork may change it (the agent id
# stays), e.g. --var tft=defector.
variable "tft" { default = "tit_for_tat" }

scenario "axelrod_random" {
  seed             = 1980
  ticks            = 200
  stepping         = "lockstep"
  action_deadline  = "2s"
  missing_action   = "default"
  checkpoint_every = 50
  checkpoint_keep  = 0
}

world "repeated_game" {
  game         = "prisoners_dilemma"
  rounds       = 200
  pairing      = "round_robin"
  payoffs      = { R = 3, S = 0, T = var.payoff_t, P = 1 }
  default_move = "C"
}

agent "random" {
  runtime = "builtin"
  command = "random"
}

agent "cooperator" {
  runtime = "builtin"
  command = "cooperator"
}

agent "defector" {
  runtime = "builtin"
  command = "defector"
}

agent "tit_for_tat" {
  runtime = "builtin"
  command = var.tft
}

agent "grudger" {
  runtime = "builtin"
  command = "grudger"
}

agent "tit_for_two_tats" {
  runtime = "builtin"
  command = "tit_for_two_tats"
}

agent "suspicious_tit_for_tat" {
  runtime = "builtin"
  command = "suspicious_tit_for_tat"
}

agent "alternator" {
  runtime = "builtin"
  command = "alternator"
}

agent "pavlov" {
  runtime = "builtin"
  command = "pavlov"
}
