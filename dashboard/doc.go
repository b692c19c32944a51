// Package dashboard serves a run's live dashboard in the browser: the
// world's picture (world.View), the agent roster with each agent's state
// and last action, the leases held and the latest violations, the recent
// events and a chart per metric, with pause, step and resume controls.
//
// The page and its assets are embedded in the binary (no build step, no
// CDN). It gets the run's state as server-sent events (/api/stream) from
// a model the Server keeps: whoever feeds the Server (the host, from the
// run's event stream through a consumer of its own; or a recording played
// back) calls Apply for every event and Frame after every tick. Pages get
// the newest snapshot at most Rate times a second, however fast the run
// ticks; a slow page skips snapshots, never blocks the feeder, and the
// feeder never blocks the world.
//
// Guarantees:
//   - Apply, Frame and WantsView never wait for a page.
//   - The controls need the control token (random, printed at start) in
//     the X-Terrarium-Token header of a POST: a link or another site's
//     form cannot send it. Reading the state needs no token: the
//     dashboard listens on loopback unless told otherwise, and shows what
//     observers may read.
//   - Everything from the run is put in the page as text, never as HTML.
//   - Close sends every page the last state, then ends their streams;
//     calling it again does nothing.
package dashboard
