# Schelling's segregation model: a 51x51 torus at density 0.95 (2,470
# agents, two equal groups, 131 empty cells). An agent is content when at
# least 30% of its (Moore) neighbours are of its group; each tick every
# discontented agent asks to move and the world moves it to a random empty
# cell. The mean share of like neighbours starts near 0.5 and ends at 0.70
# or more, with everyone content well before tick 200.
#
# Every agent is its own process: 2,470 processes (about 4 GB of memory
# and several seconds to start); the tests run a 12x12 torus.
#
#   go run ./cmd/terrarium run scenarios/schelling.hcl

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
  threshold     = 0.3
  horizon       = 200
  snapshots     = [0, 5, 20, 200]
}

agent "blue" {
  runtime = "builtin"
  command = "schelling"
  count   = 1235
}

agent "red" {
  runtime = "builtin"
  command = "schelling"
  count   = 1235
}
