# Every setting given.
scenario "full-run_1" {
  seed            = 1980
  stepping        = "lockstep"
  ticks           = 200
  action_deadline = "2s"
  missing_action  = "repeat"
  ready_timeout   = "1m30s"
}

world "test_kind" {
  rounds  = 3
  players = 4
  weights = [0.5, 1, 2]

  payoff {
    win = 5
  }

  zone "north" {
    size = 2
  }
  zone "south" {
    size = 7
  }
}

agent "tit_for_tat" {
  runtime = "builtin"
  command = "test_prog"
}

agent "bot" {
  command = "./bot"
  args    = ["--fast", "-v"]
  count   = 3
  env     = ["PATH", "HOME", "_X1"]
  restart = "never"
}
