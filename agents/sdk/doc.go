// Package sdk makes a Go program a Terrarium agent: connect with the
// credentials the host put in the environment, receive observations, answer
// with actions, stop cleanly. A whole agent:
//
//	func main() {
//		err := sdk.Run(context.Background(), func(ctx context.Context, obs sdk.Observation) (any, error) {
//			return map[string]string{"move": "C"}, nil
//		})
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//	}
//
// Guarantees:
//
//   - Connect returns only after the host has answered the hello request. The
//     subscriptions to the agent's own subjects and to the world broadcasts are
//     made before the hello is sent, and the server processes a connection's
//     protocol in order, so when the host sees the hello, observations sent to
//     the agent will reach it. Connect retries the hello while nobody listens
//     on its subject, until ctx is done.
//   - Observations are delivered in the order the host sent them and are never
//     dropped silently: the subscription's handler feeds a buffered channel
//     (ObservationBuffer) and, when it is full, waits, letting the client library
//     queue further messages in order. The host sends one observation per tick
//     and waits for the answer, so the buffer never fills in practice. Should the
//     library's own queue overflow (a slow consumer), the agent fails: Done is
//     closed and Err says why.
//   - Every envelope the agent sends (hello, act, bye) carries the next value of
//     one per-agent sequence number, starting at 1, and they go out in Seq order.
//   - Done is closed on stop (to.<id>.stop), on the end of the run (world.end),
//     on connection loss (the SDK does not reconnect: the bus is on the same
//     machine, and a reconnect could lose observations), on a malformed message
//     from the host, and on Close. Err reports which.
//   - Close is idempotent and safe to call concurrently with everything else;
//     it sends "bye", flushes (everything sent has reached the server) and
//     closes the connection, without draining (see Close).
//
// Run ids and agent ids come from the environment only (or WithEnv in tests).
package sdk
