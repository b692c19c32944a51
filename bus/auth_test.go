package bus

import (
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
)

type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// The cid -> agent map follows the open connections, not every login ever
// made.
func TestConnectionMapIsPruned(t *testing.T) {
	s, err := Start(Options{
		Run:    "r",
		Dir:    t.TempDir(),
		Logger: hclog.New(&hclog.LoggerOptions{Output: tlog{t}, Level: hclog.Info}),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	c, err := s.AddAgent("A")
	if err != nil {
		t.Fatal(err)
	}
	const logins = 300
	for range logins {
		nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(c.User, c.Password), nats.NoReconnect())
		if err != nil {
			t.Fatal(err)
		}
		nc.Close()
	}
	s.auth.mu.Lock()
	n, conns := len(s.auth.cids), len(s.auth.agents["A"].conns)
	s.auth.mu.Unlock()
	// Pruning runs when the map doubles, so it holds at most about twice
	// the open connections (none here) plus the initial allowance.
	if n >= logins/2 || conns >= logins/2 {
		t.Fatalf("after %d logins the map holds %d connections (%d for A)", logins, n, conns)
	}
}
