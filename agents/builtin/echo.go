package builtin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/bus"
)

// EnvEchoReplyBytes sets the size of the echo program's reply, in bytes
// (default 64): the benchmark gives it the size of a Terrarium action
// envelope, so both sides of a comparison move the same bytes.
const EnvEchoReplyBytes = "TERRARIUM_ECHO_REPLY_BYTES"

func init() {
	// ack is the smallest SDK agent: it answers every observation at once
	// with {"ok":true}. It plays the echo world (world/echo).
	Register("ack", Respond(func(context.Context, sdk.Observation) (any, error) {
		return ackAction, nil
	}))
	RegisterRaw("echo", echo)
}

var ackAction = json.RawMessage(`{"ok":true}`)

// echo is the benchmark baseline's agent: raw NATS, no SDK, no envelope.
// It connects with its own credentials, subscribes to its own subjects,
// says hello as an SDK agent does (a request the host answers), then
// answers every message on its obs subject with a fixed reply of
// EnvEchoReplyBytes bytes on its act subject, from the subscription's own
// goroutine, until a message on its stop subject (or SIGTERM).
func echo(ctx context.Context) error {
	url, run, id := os.Getenv(agents.EnvNATSURL), os.Getenv(agents.EnvRun), os.Getenv(agents.EnvAgentID)
	if url == "" || run == "" || id == "" {
		return fmt.Errorf("echo: %s, %s and %s must be set", agents.EnvNATSURL, agents.EnvRun, agents.EnvAgentID)
	}
	size := 64
	if s := os.Getenv(EnvEchoReplyBytes); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > bus.MaxPayload {
			return fmt.Errorf("echo: %s=%q: want 0 to %d", EnvEchoReplyBytes, s, bus.MaxPayload)
		}
		size = n
	}
	reply := bytes.Repeat([]byte{'x'}, size)
	inbox := os.Getenv(agents.EnvInboxPrefix)
	if inbox == "" {
		inbox = bus.InboxPrefix(run, id)
	}
	closed := make(chan struct{})
	nc, err := nats.Connect(url, nats.Name(id), nats.UserInfo(os.Getenv(agents.EnvNATSUser), os.Getenv(agents.EnvNATSPass)),
		nats.CustomInboxPrefix(inbox), nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		return fmt.Errorf("echo %s: connect: %w", id, err)
	}
	defer nc.Close()
	obs, act := bus.ToSubject(run, id, bus.KindObs), bus.AgentSubject(run, id, bus.KindAct)
	stop := make(chan struct{})
	if _, err := nc.Subscribe(bus.ToPrefix(run, id), func(m *nats.Msg) {
		if m.Subject == obs {
			_ = nc.Publish(act, reply)
			return
		}
		if m.Subject == bus.ToSubject(run, id, bus.KindStop) {
			select {
			case <-stop:
			default:
				close(stop)
			}
		}
	}); err != nil {
		return fmt.Errorf("echo %s: subscribe: %w", id, err)
	}
	hello := bus.AgentSubject(run, id, bus.KindHello)
	for {
		_, err := nc.RequestWithContext(ctx, hello, []byte(`{}`))
		if errors.Is(err, nats.ErrNoResponders) {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("echo %s: hello: %w", id, err)
		}
		break
	}
	select {
	case <-stop:
	case <-ctx.Done():
	case <-closed:
		return fmt.Errorf("echo %s: connection closed", id)
	}
	return nil
}
