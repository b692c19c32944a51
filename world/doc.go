// Package world holds Terrarium's domain types (AgentID, Tick, Action,
// Observation payloads, Event), the World interface that every simulation
// implements, the registry of world kinds that scenarios name, and the
// Loop that steps a World with agents' actions: lockstep, realtime (a fixed
// tick rate) or turn-based (World implements Turns), driven by its Clock
// or, when Manual, by Step calls.
//
// world imports no other package of Terrarium: the loop reaches agents
// through the Agents interface, which the host implements over the bus, and
// reports through EventSink, which the host's event writer implements.
//
// Guarantees of the Loop:
//   - One goroutine (Run's) owns the World; no World method is called
//     concurrently.
//   - At tick t every live agent the world observes gets one observation;
//     the tick closes when all of them answered, left, or the deadline
//     passed. No agent sees another agent's tick-t action before t closes.
//   - The first valid action per agent per tick wins. Late (for a closed
//     tick), duplicate, future, unexpected and invalid actions are rejected
//     with an event and counted, never applied.
//   - A missing action is filled by the policy (default, repeat) or aborts
//     the run; tick.closed records every applied action, policy-filled ones
//     marked, so a run can be replayed from its events.
//   - Step gets the actions sorted by agent id and TickRNG(seed, t): world
//     logic that reads neither the clock nor global randomness is
//     deterministic.
//   - Deliver, Gone and Stop may be called from any goroutine at any time;
//     after Run returned (or Stop) they return at once. Delivered actions
//     wait in a bounded inbox (1,024, or two per seat if more) that the
//     loop takes as a batch; Deliver blocks while it is full, so a
//     flooding agent backs up its own subscription, not the host.
//   - Realtime: the loop never waits for an agent. An action received
//     before its tick's boundary applies at that tick, a later one at the
//     next tick, recorded in tick.closed with action_tick, late_ticks and
//     late_us; an agent's latest action wins. Overdue ticks run back to back,
//     at most MaxCatchUp of them; the rest of the lag is dropped and
//     reported (tick.lag).
//   - Turn-based: only the agent Turns names is observed at a tick.
//   - Manual: a tick runs only on a Step call, exactly one per call.
//   - The loop reads time only from its Clock; worlds see tick counts only.
package world
