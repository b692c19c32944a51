// Command tit_for_tat is a standalone Terrarium agent for the repeated_game
// world: in every match it cooperates first, then copies the opponent's last
// move. Build it and name the binary in a scenario with runtime = "nats".
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/world/game"
)

func main() {
	// SIGTERM (the host's second way of stopping an agent) ends the run cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := sdk.Run(ctx, func(_ context.Context, o sdk.Observation) (any, error) {
		var obs game.Observation
		if err := json.Unmarshal(o.Data, &obs); err != nil {
			return nil, fmt.Errorf("observation: %w", err)
		}
		act := game.Action{Moves: make(map[string]string, len(obs.Matches))}
		for _, m := range obs.Matches {
			act.Moves[m.Match] = "C" // cooperate first
			if n := len(m.Them); n > 0 {
				act.Moves[m.Match] = m.Them[n-1:] // then copy the opponent's last move
			}
		}
		return act, nil
	})
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "tit_for_tat:", err)
		os.Exit(1)
	}
}
