// Package grid is the "grid" world kind: agents with positions on a
// width x height grid of cells, a torus or bounded, with Moore (8) or von
// Neumann (4) neighbourhoods, sparse cell properties, movement and
// regrowing resources, under one of four rule sets: Schelling
// segregation, Boltzmann wealth exchange, Conway's Game of Life (cells
// driven by agents) and predator-prey (Wilensky's wolf-sheep predation).
//
// # Stepping
//
// Lockstep: at tick t every active agent gets an observation of the state
// at the end of tick t-1 and answers with an action; Step reads every
// action against that same state and then applies them all, so no agent
// sees another's move of the same tick. Where two actions meet (two sheep
// on one patch of grass, two movers wanting empty cells) the world settles
// it with the tick's seeded RNG, in a documented order. The world never
// reads the clock or global randomness: the same seed and actions give the
// same state hashes.
//
// The initial layout is random: the host calls Seed (world.Seeder) with
// the scenario's seed right after New. A World that was not seeded refuses
// to be observed or stepped (ErrNotSeeded).
//
// # Sparse
//
// Cell properties are sparse layers (a map from cell to value; an absent
// cell is 0): "alive" (life) and "regrow" (predator_prey: ticks until the
// cell's grass has grown back; absent means grown). Occupancy is a map from
// cell to the agents on it. Nothing allocates width x height, except
// Schelling's exact pick of a random empty cell when fewer than 2% of the
// cells are empty, and Schelling's index of the cells (4 bytes a cell)
// on a grid of at most 16 cells per agent.
//
// # Schelling (rules = "schelling")
//
// Two or more agent blocks (groups), every seat on its own random cell; at
// least one cell stays empty. Observation:
//
//	{"tick":5,"x":3,"y":7,"group":"red","alike":3,"other":4,"threshold":0.3}
//
// (like neighbours, other neighbours, the share wanted). Action
// {"move":true} asks to move; {"move":false} (the default) stays. Movers
// are taken in a random order, each to a random cell empty at that moment.
// Metrics: share_alike (mean share of like neighbours over agents with
// any), unhappy (agents below threshold), moved.
//
// # Boltzmann wealth (rules = "boltzmann")
//
// Every seat starts with wealth 1 on a random cell (several per cell
// allowed). Observation:
//
//	{"tick":5,"x":3,"y":7,"wealth":2,"moves":[[-1,-1],[0,-1],...],"cellmates":["agent-17"]}
//
// Action {"move":[dx,dy],"give":"agent-17"}: move by one of the offered
// offsets ([0,0] stays) and give one unit to a cellmate of the start of
// the tick ("give" may be left out). Gifts are applied one at a time in a
// random order, each only if the giver has a unit at that moment, then the
// moves: total wealth is conserved and nobody goes below zero. Metrics:
// gini, total_wealth, min_wealth, max_wealth, transfers.
//
// # Game of Life (rules = "life")
//
// The grid is cut into block x block squares (smaller at the right and
// bottom edges), and every square is driven by one agent: blocks go to the
// seats in (group, index) order, row by row, so the scenario needs exactly
// ceil(width/block) x ceil(height/block) agents. The world does not know
// the rule of life; agents compute it. Observation: the agent's block and
// the ring of cells around it, alive cells in block coordinates (-1..w,
// -1..h):
//
//	{"tick":5,"x":8,"y":0,"w":8,"h":8,"neighbourhood":"moore","alive":[[-1,2],[0,2],[1,2]]}
//
// Action: the block's next generation, {"alive":[[0,1],[0,2]]} (cells in
// 0..w-1, 0..h-1, each once). A block whose agent sent nothing stays as it
// was (the default action). Metrics: population, births, deaths.
//
// # Predator-prey (rules = "predator_prey")
//
// Two agent blocks, prey and predator (default "sheep" and "wolves"). A
// block's count is a pool of seats: reproduction needs new agents, and no
// process is started mid-run. The first initial_prey (initial_predators)
// seats by index start alive on random cells, with energy drawn from
// 0..2*gain-1; the rest are inactive: not observed, their processes idle.
// Observation of a live animal:
//
//	{"tick":5,"x":3,"y":7,"kind":"prey","energy":6,"moves":[...],"last":[1,0],"reproduce":0.04,"grass":true}
//
// Action {"move":[dx,dy],"eat":true,"reproduce":false}. Step, in order:
// every animal moves; predators, and prey when grass is on, lose 1 energy;
// on each cell with grown grass one random prey that wants to eat does
// (+prey_gain; the grass regrows in grass_regrowth ticks); predators in a
// random order each eat one random live prey on their cell
// (+predator_gain); animals below zero energy die; animals that asked to
// reproduce, in a random order, halve their energy and give the other half
// to a newborn on a random neighbouring cell, in the free seat of the
// lowest index of their pool (none free: no birth, counted in
// births_refused); a dead animal's seat goes back to its pool. A newborn
// acts from the next tick. Without grass prey neither eat nor lose energy.
// Metrics: prey, predators, grass (grown cells), births, deaths,
// births_refused.
//
// # Snapshots, events, result
//
// The world reports a "grid" event (world.grid in the log) with the whole
// grid at the ticks listed in snapshots (0: the initial state) and every
// snapshot_every ticks: width, height, rules, topology, groups, agents
// ([x, y, group index] of every active agent) and layers (name -> [x, y,
// value]). The result holds the initial state metrics, a summary of every
// metric over ticks measure_from.. (mean, sd, min, max, last), and the
// first tick at which the watched metrics (unhappy, population, prey,
// predators) were 0. Snapshot is JSON of the whole state (map keys sorted);
// StateHash its SHA-256; Restore(Snapshot()) steps identically.
//
// The world is done after horizon ticks, or when no agent is active.
// Like every world.World it is owned by one goroutine.
package grid
