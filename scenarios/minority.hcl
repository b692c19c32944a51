# The minority game (Challet and Zhang 1997): 101 agents choose A or B each
# round and the side fewer chose wins. Each agent holds S = 2 random
# strategies over the last m winning sides and plays its best-scoring one.
# The volatility σ²/N of #A - #B measures how well they coordinate: below
# 0.5 at m = 5, above 1 at m = 2 (herding), about 1 for random play
# (command = "random_choice").
#
#   go run ./cmd/terrarium run scenarios/minority.hcl

scenario "minority" {
  seed            = 1
  action_deadline = "5s"
}

world "nplayer_game" {
  game         = "minority"
  rounds       = 1000
  history      = 32
  measure_from = 500
}

agent "player" {
  runtime = "builtin"
  command = "minority"
  args    = ["strategies=2", "memory=5"]
  count   = 101
}
