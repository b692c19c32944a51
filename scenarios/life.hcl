# Conway's Game of Life, driven by agents: the 16x16 torus is cut into four
# 8x8 blocks and each block is one agent process. Every tick an agent sees
# its block and the ring of cells around it, computes the next generation
# of its block (B3/S23) and sends it back; the world applies all four at
# once. The glider returns to its shape, shifted one cell diagonally, every
# 4 generations, with population 5. Other patterns: "blinker", "block",
# "diehard" (dies out at generation 130; give it room: 40x40, 16 agents).
#
#   go run ./cmd/terrarium run scenarios/life.hcl

scenario "life" {
  seed            = 1
  action_deadline = "5s"
}

world "grid" {
  rules          = "life"
  width          = 16
  height         = 16
  topology       = "torus"
  pattern        = "glider"
  at             = [1, 1]
  block          = 8
  horizon        = 64
  snapshots      = [0, 1, 2, 3, 4]
  snapshot_every = 16
}

agent "cells" {
  runtime = "builtin"
  command = "life"
  count   = 4 # (16 / 8) x (16 / 8) blocks
}
