// Package terrarium hosts one multi-agent simulation run: an embedded NATS
// bus, one OS process per agent, and a world loop stepping the shared world.
// The CLI (cmd/terrarium) runs exactly this; a Go program embeds it the same way:
//
//	sc, diags := scenarios.Load("scenarios/axelrod.hcl")
//	if diags.HasErrors() { ... }
//	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: log})
//	if err != nil { ... }
//	defer h.Close()
//	res, err := h.Run(ctx)
//
// Guarantees:
//   - Run creates the run directory and everything of the run lives in it.
//   - Run either starts every agent or none: a command that cannot be
//     resolved fails the run before any process starts.
//   - Cancelling ctx gives one orderly shutdown: agents are told to stop, then
//     their process groups and sessions are terminated; events, metrics and result.json are
//     flushed with status "interrupted".
//   - When Run returns, no agent process of the run is left running.
//   - Close may be called at any time, from any goroutine, any number of
//     times; it stops a running Run and waits for it.
//
// A game embeds it with more control (docs/embedding.md): its own world
// (Config.World), in-process agents (Config.InProc), Start, then either
// Wait while Terrarium ticks or Step from the game's loop (StepManually),
// events on a channel (Config.EventBuffer, Events):
//   - Start returns once every agent is ready, or with the error that
//     stopped the run; the ctx given to Start governs the whole run.
//   - With StepManually, each Step call runs exactly one tick; nothing else
//     does. Step after the run ended returns ErrEnded.
//   - The Events channel never blocks the world and loses nothing: it
//     reads the run's event stream through a consumer of its own (the rest
//     from events.jsonl if the run ended first), every event once, in seq
//     order; it is closed after the last event, or by Close.
//   - Several hosts in one process share no bus, port, run id, subject or
//     directory; closing one leaves the others running.
//
// Programs that use the builtin runtime must call builtin.Main() first thing
// in main (and in TestMain), so that the re-executed binary runs the agent.
package terrarium
