// Package report turns a finished (or interrupted) run directory into one
// self-contained HTML page, report.html: the scenario and its settings, the
// run's key results (result.json), a chart per metric of metrics.csv over
// the ticks, and the grid at every tick the world took a snapshot of
// (world.grid events in events.jsonl).
//
// Guarantees:
//   - The page needs nothing but itself: charts and grids are inline SVG
//     generated here, the styles are inline, there is no script and no
//     external reference, so it opens offline and can be mailed around.
//   - Every chart is one SVG element of class "chart" holding one polyline
//     of class "series" with a point per tick (long series are thinned to
//     at most MaxPoints points, keeping the first and the last).
//   - Reading never changes the run directory; Write puts report.html in
//     it atomically (a temporary file renamed over it).
//   - Everything the run wrote is treated as untrusted text: it is escaped
//     before it reaches the page.
package report
