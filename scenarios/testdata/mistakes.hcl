scenario "bad name" {
  seed            = -3
  stepping        = "sometimes"
  action_deadline = "soon"
  missing_action  = "skip"
  colour          = "red"
}

world "test_kind" {
  rounds = "many"
  speed  = 2
}

agent "a" {
  runtime = "builtin"
  command = "no_such_prog"
  count   = 0
  env     = ["PATH=/bin"]
}

agent "b" {
  restart = "sometimes"
  args    = ["ok", 7]
}

agent "b" {
  command = "./bot"
}

gizmo {}
