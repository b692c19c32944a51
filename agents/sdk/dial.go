package sdk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium/agents"
)

// dialer is what an agent and a pool have in common when they connect: who
// they are (what "agent x" or "pool x" names in errors), where their replies
// come, what they subscribe to, and how they end.
type dialer struct {
	what    string // "agent" or "pool"
	id, url string
	inbox   string // the inbox prefix when the environment names none
	subs    []string
	get     func(string) string // the agent's environment
	onMsg   nats.MsgHandler
	finish  func(error)
	closed  chan struct{} // closed when the connection is
	log     hclog.Logger
}

// dial connects with the credentials in the environment (no reconnects: a
// lost host ends the agent) and subscribes to d.subs.
func (d dialer) dial() (*nats.Conn, error) {
	inbox := d.get(agents.EnvInboxPrefix)
	if inbox == "" {
		inbox = d.inbox
	}
	opts := []nats.Option{
		nats.Name(d.id),
		nats.CustomInboxPrefix(inbox),
		nats.NoReconnect(),
		nats.DrainTimeout(closeTimeout),
		nats.ClosedHandler(func(*nats.Conn) {
			d.finish(ErrConnectionLost)
			close(d.closed)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				d.finish(fmt.Errorf("%s %s: messages dropped by the client library: %w", d.what, d.id, err))
				return
			}
			d.log.Warn("bus error", "error", err)
		}),
	}
	if user := d.get(agents.EnvNATSUser); user != "" {
		opts = append(opts, nats.UserInfo(user, d.get(agents.EnvNATSPass)))
	}
	nc, err := nats.Connect(d.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect %s %s to %s: %w", d.what, d.id, d.url, err)
	}
	for _, subj := range d.subs {
		if _, err := nc.Subscribe(subj, d.onMsg); err != nil {
			nc.Close()
			return nil, fmt.Errorf("connect %s %s: subscribe %s: %w", d.what, d.id, subj, err)
		}
	}
	return nc, nil
}

// requestHello sends a hello until the host answers: while the host is not
// listening yet (no responders) it asks again shortly.
func requestHello(ctx context.Context, nc *nats.Conn, subj string, msg []byte) (*nats.Msg, error) {
	for {
		reply, err := nc.RequestWithContext(ctx, subj, msg)
		if !errors.Is(err, nats.ErrNoResponders) {
			if err != nil {
				return nil, fmt.Errorf("hello: %w", err)
			}
			return reply, nil
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("hello: no answer from the host: %w", ctx.Err())
		case <-t.C:
		}
	}
}
