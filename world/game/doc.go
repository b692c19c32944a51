// Package game holds two world kinds: "repeated_game", a repeated game
// with a payoff function played as a tournament of pairwise matches between
// groups of seats (the prisoner's dilemma: Axelrod's round-robin
// tournament), and "nplayer_game", where every seat plays one N-player game
// together each round (El Farol, the minority game; see NPlayer and the
// section on it at the end).
//
// # Players, matches, ticks
//
// Every group (scenario agent block) is one player, a strategy. Without
// self_play each group has exactly one seat; with self_play exactly two:
// index 1 is the ranked player, index 2 its twin, which plays only the
// self-match against index 1. Round robin: the index-1 seats of every pair
// of groups play one match of `rounds` rounds, plus (self_play) each group's
// seat 1 against seat 2. Matches are numbered in group-name order (group i's
// self-match, then i against every later group j) and named "m01", "m02", ...
// (at least two digits, more when there are more than 99 matches). In a match
// the side listed first is the group earlier by name (in a self-match: seat 1).
//
// All matches run at once, one round per tick: tick t is round t, and the
// world is done after `rounds` ticks.
//
// # Observation (world to agent), each tick
//
//	{"round":3,"rounds":200,"matches":[{"match":"m05","you":"CD","them":"DD"}]}
//
// round is the round to play now (1-based; equal to the tick) and rounds the
// length of every match. matches lists the matches the agent plays, in id
// order; for each, "you" holds the agent's own moves in the rounds played so
// far and "them" its opponent's, oldest first, one character per round (so
// both have length round-1). An agent never sees a move of the current
// round, nor a match it does not play in, nor who its opponent is. The ids
// are stable for the whole run. (Games with more than two players per match
// will add fields; "you" keeps its meaning.)
//
// # Action (agent to world)
//
//	{"moves":{"m05":"C","m07":"D"}}
//
// exactly one move per match the agent plays, each one of the game's moves
// ("C" cooperate or "D" defect in the prisoner's dilemma). Validate rejects
// malformed JSON, unknown fields, unknown or missing matches, bad moves and
// an action tagged with a tick other than the one about to be stepped, with
// the reason. An agent without an action plays default_move in every match
// (DefaultAction is exactly that action).
//
// # Scores, metrics, result
//
// Each round every match is scored with the game's payoff function
// (prisoner's dilemma: R, S, T, P, defaults 3, 0, 5, 1). Metrics per tick:
// "cooperation_rate", the share of C among all moves of the round (twins
// included), and "mean_payoff", the mean payoff of those moves. At the last
// tick Step reports one "match_finished" event per match. Result (a Result)
// ranks the groups by the total payoff of their index-1 seat over all its
// matches (the self-match once, the twin's payoffs never), equal scores
// sharing a rank ("1224"), ties listed by name, with both sides' score in
// every match; Table is that ranking.
//
// # Guarantees
//
// Everything is deterministic: no clock, no randomness (the tick's RNG is
// unused). Snapshot is JSON of the move histories (plus what identifies the
// world); Restore recomputes the scores from them in Step's order, so a
// restored world steps to the same state hashes. StateHash is the hex
// SHA-256 of a canonical encoding of the state (see World.StateHash).
// Errors from New name the setting to fix. Like every world.World, a World
// is used by one goroutine at a time.
//
// # The N-player game (nplayer_game)
//
// Every seat, whatever its agent block, is one player of a single game
// played once per tick for `rounds` rounds. Moves: El Farol "G" (go) or
// "S" (stay); the minority game "A" or "B". Attendance is how many played
// the first move. El Farol: a goer gets +1 when attendance <= threshold,
// -1 when the bar is crowded (more than threshold), a stayer 0. Minority
// game (N odd): the side fewer chose wins, +1 to each of its players, -1
// to the others. Observation, each tick:
//
//	{"game":"el_farol","round":5,"rounds":1000,"players":100,"threshold":60,"history":[61,48,70,55],"you":"GSGG"}
//
// history is the attendance of the last `history` rounds (default 32),
// oldest first, and you the agent's own moves in them. Action:
// {"move":"G"}; a missing one plays default_move ("S" or "B"). Metrics:
// attendance, then crowded (El Farol, 0 or 1) or excess (#A - #B). The
// result gives, over rounds measure_from.., the mean and standard deviation
// of attendance, the crowded share (El Farol) or the volatility σ²/N, the
// variance of excess over the number of players (minority game), and each
// agent block's mean score per agent and round. Snapshot is JSON of every
// seat's moves; Restore replays them.
package game
