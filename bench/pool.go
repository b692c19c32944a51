package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/world/echo"
)

// The pool case: a crowd of agents served by a few pool processes
// (runtime "pool"), one batched message each way per pool per tick.
// Terrarium runs it through the host (loop, judging every member, and
// tick.closed recording every member's action); the baseline is the raw
// scatter-gather of runBaseline with one process per pool, each message
// the size of Terrarium's batch for that many members.

// poolShape is the pool case's agents, pool size and ticks.
func poolShape(short bool) (n, size, ticks int) {
	if short {
		return 200, 100, 30
	}
	return 10000, 5000, 60
}

// poolScenarioSource is the Terrarium side: n members of the builtin
// ack-pool, size per process, on the echo world.
func poolScenarioSource(n, size, ticks int) string {
	return fmt.Sprintf(`
scenario "bench" {
  ticks           = %d
  action_deadline = "60s"
  ready_timeout   = "600s"
}
world %q {
  payload = %d
}
agent "a" {
  runtime   = "pool"
  command   = "ack-pool"
  count     = %d
  pool_size = %d
}
`, ticks, echo.Kind, obsPayload, n, size)
}

// poolPayloadSizes are the sizes of a Terrarium observation batch and
// action batch for size members, mid-run.
func poolPayloadSizes(n, size int) Payload {
	w, _ := echo.New(echo.Config{Payload: obsPayload})
	obs, _, _ := w.Observe("a-500", 20)
	var ob, ab []byte
	ob, ab = append(ob, '['), append(ab, '[')
	for i := 0; i < size; i++ {
		if i > 0 {
			ob, ab = append(ob, ','), append(ab, ',')
		}
		id := "a-" + strconv.Itoa(n-size+i+1) // the longest ids
		ob = bus.AppendEntry(ob, id, obs)
		ab = bus.AppendEntry(ab, id, ackAction)
	}
	ob, ab = append(ob, ']'), append(ab, ']')
	d := time.Now().UTC()
	o, _ := bus.EncodeBatch(bus.Envelope{Kind: bus.KindObs, Run: runID("10"), Agent: "a-pool-1", Tick: 20, Seq: 20000, Deadline: &d, Data: ob})
	a, _ := bus.EncodeBatch(bus.Envelope{Kind: bus.KindActs, Run: runID("10"), Agent: "a-pool-1", Tick: 20, Seq: 21, Data: ab})
	return Payload{Observation: len(o), Action: len(a)}
}

// runPoolCase runs the pool case, alternating the sides, and adds its
// cases to rep.
func runPoolCase(ctx context.Context, o Options, rep *Report, seq *int) error {
	n, size, ticks := poolShape(o.Short)
	if o.Ticks > 0 {
		ticks = o.Ticks
	}
	pools := (n + size - 1) / size
	pay := poolPayloadSizes(n, size)
	what := fmt.Sprintf("pool N=%-5d (%d processes)", n, pools)
	show := func(xs []float64) string {
		return fmt.Sprintf("%8.1f ticks/s  p50 %7.0f µs  p99 %7.0f µs", xs[0], xs[1], xs[2])
	}
	ts, bs, err := alternate(ctx, o, seq, what, show, func(ctx context.Context, dir string, terr bool) ([]float64, error) {
		var s side
		var err error
		if terr {
			s, err = runTerrariumSource(ctx, o, dir, n, ticks, poolScenarioSource(n, size, ticks))
		} else {
			s, err = runBaselineSized(ctx, o, dir, pools, ticks, pay)
		}
		return []float64{s.ticksPerSec, s.p50us, s.p99us}, err
	})
	if err != nil {
		return err
	}
	c := addCase(rep, fmt.Sprintf("pool ticks/s (%d per process)", size), "ticks/s", n, true, ts, bs, 0)
	if !o.Short {
		target(c, ">= 50 ticks/s", c.Terrarium.Median >= 50)
	}
	addCase(rep, fmt.Sprintf("pool tick p50 (%d per process)", size), "µs", n, false, ts, bs, 1)
	addCase(rep, fmt.Sprintf("pool tick p99 (%d per process)", size), "µs", n, false, ts, bs, 2)
	return nil
}
