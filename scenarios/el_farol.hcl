# Arthur's El Farol bar problem (1994): 100 agents decide each week whether
# to go to a bar that is pleasant only when at most 60 go. Each agent holds
# six predictors of attendance drawn from Arthur's family (same as k weeks
# ago, mean of the last k weeks, mirror image, trend) and acts on the one
# that has been most accurate lately. Attendance keeps fluctuating around
# 60: mean over weeks 100-1,000 within 60 ± 3, standard deviation at least 3.
#
#   go run ./cmd/terrarium run scenarios/el_farol.hcl
#   go run ./cmd/terrarium sweep --seeds 1..5 --var threshold=40,60,80 scenarios/el_farol.hcl

variable "threshold" {
  default     = 60
  description = "the bar is crowded when more than this many go"
}

scenario "el_farol" {
  seed            = 1
  action_deadline = "5s"
}

world "nplayer_game" {
  game         = "el_farol"
  rounds       = 1000
  threshold    = var.threshold
  history      = 32
  measure_from = 100
}

agent "patron" {
  runtime = "builtin"
  command = "el_farol"
  args    = ["predictors=6"]
  count   = 100
}
