package world

// View is a picture of a world's current state for the dashboard: a grid,
// tables, places, and recent lines of text, any of them. It is JSON as the
// dashboard draws it (docs/dashboard.md).
type View struct {
	Grid   *GridView   `json:"grid,omitempty"`
	Tables []Table     `json:"tables,omitempty"`
	Places []PlaceView `json:"places,omitempty"`
	// Lines are recent happenings, oldest first (what was said, say).
	Lines []string `json:"lines,omitempty"`
}

// GridView is a rectangular grid: the agents on it and sparse cell
// layers. The dashboard colours agents by group and shades layer cells.
type GridView struct {
	Width  int      `json:"width"`
	Height int      `json:"height"`
	Groups []string `json:"groups"`
	// Agents are [x, y, group index] of every agent on the grid.
	Agents [][3]int `json:"agents"`
	// Layers are cell properties by name, each a list of [x, y, value]
	// for the cells where it is not 0.
	Layers map[string][][3]int `json:"layers,omitempty"`
}

// PlaceView is one named place: who is there and what lies there.
type PlaceView struct {
	Name   string    `json:"name"`
	Agents []AgentID `json:"agents"`
	Items  []string  `json:"items,omitempty"`
}

// Viewer is implemented by worlds that can draw themselves for the
// dashboard. The loop's goroutine calls View between ticks (never while
// Step runs), at most a few times a second while a dashboard watches; it
// must return a value the world does not change afterwards (fresh slices
// and maps), since it is encoded on another goroutine.
//
// A world that is not a Viewer but a Tabler is shown by its Table.
type Viewer interface {
	View() View
}

// ViewOf returns w's view: its View, else its Table, else ok false.
func ViewOf(w World) (v View, ok bool) {
	switch w := w.(type) {
	case Viewer:
		return w.View(), true
	case Tabler:
		return View{Tables: []Table{w.Table()}}, true
	}
	return View{}, false
}
