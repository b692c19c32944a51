package scenarios

import (
	"slices"
	"strings"

	"github.com/terrarium-sim/terrarium/world"
)

// Seats returns the run's seats, one per agent id, sorted by id. Group is
// the agent block's name and Index the seat's 1-based position in it.
func (s *Scenario) Seats() []world.Seat {
	var seats []world.Seat
	for _, a := range s.Agents {
		for i, id := range a.IDs() {
			seats = append(seats, world.Seat{ID: id, Group: a.Name, Index: i + 1})
		}
	}
	slices.SortFunc(seats, func(x, y world.Seat) int { return strings.Compare(string(x.ID), string(y.ID)) })
	return seats
}
