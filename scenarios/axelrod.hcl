# Axelrod's 1980 computer tournament, in miniature: a round-robin iterated
# prisoner's dilemma. Every pair of strategies plays one 200-round match, and
# every strategy also plays one match against a twin of itself (count = 2: the
# second process plays only that match and is not ranked). All matches run in
# parallel, one round per tick. Payoffs R=3, S=0, T=5, P=1, no noise.
#
#   go run ./cmd/terrarium run scenarios/axelrod.hcl

scenario "axelrod" {
  seed            = 1980
  ticks           = 200
  stepping        = "lockstep"
  action_deadline = "2s"
  missing_action  = "default"
}

world "repeated_game" {
  game         = "prisoners_dilemma"
  rounds       = 200
  pairing      = "round_robin"
  self_play    = true
  payoffs      = { R = 3, S = 0, T = 5, P = 1 }
  default_move = "C"
}

# Each strategy is its own OS process: the terrarium binary re-executes itself
# as the reference agent named by command (runtime "builtin").

agent "cooperator" {
  runtime = "builtin"
  command = "cooperator"
  count   = 2
}

agent "defector" {
  runtime = "builtin"
  command = "defector"
  count   = 2
}

agent "tit_for_tat" {
  runtime = "builtin"
  command = "tit_for_tat"
  count   = 2
}

agent "grudger" {
  runtime = "builtin"
  command = "grudger"
  count   = 2
}

agent "tit_for_two_tats" {
  runtime = "builtin"
  command = "tit_for_two_tats"
  count   = 2
}

agent "suspicious_tit_for_tat" {
  runtime = "builtin"
  command = "suspicious_tit_for_tat"
  count   = 2
}

agent "alternator" {
  runtime = "builtin"
  command = "alternator"
  count   = 2
}

agent "pavlov" {
  runtime = "builtin"
  command = "pavlov"
  count   = 2
}
