package builtin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/bus"
)

// The benchmark harness's lease agents (package bench, "lease
// acquire/release round trip"): both time Ops round trips themselves and
// write the durations (µs, a JSON array) to LeaseDurationsFile in their
// workspace.
const (
	// EnvBenchLeaseOps is how many acquire/release pairs they time (default 200).
	EnvBenchLeaseOps = "TERRARIUM_BENCH_LEASE_OPS"
	// EnvLeaseEchoSizes is lease-echo's request sizes in bytes:
	// "ACQUIRE,RELEASE".
	EnvLeaseEchoSizes = "TERRARIUM_LEASE_ECHO_SIZES"
	// LeaseDurationsFile is where they write their durations.
	LeaseDurationsFile = "lease-durations.json"
	// LeaseFile is the file bench-lease leases.
	LeaseFile = "bench.md"
)

func init() {
	// bench-lease acquires and releases LeaseFile EnvBenchLeaseOps times
	// when it gets its first observation, timing each pair, then answers
	// every observation with {"ok":true}.
	Register("bench-lease", func(ctx context.Context, a *sdk.Agent) error {
		return a.Run(ctx, func(ctx context.Context, obs sdk.Observation) (any, error) {
			if obs.Tick != 1 {
				return ackAction, nil
			}
			n, err := benchLeaseOps()
			if err != nil {
				return nil, err
			}
			ds := make([]float64, 0, n)
			for range n {
				t0 := time.Now()
				l, err := a.Acquire(ctx, LeaseFile, sdk.AcquireOptions{})
				if err != nil {
					return nil, err
				}
				if _, err := a.Release(ctx, l.Token); err != nil {
					return nil, err
				}
				ds = append(ds, float64(time.Since(t0).Nanoseconds())/1e3)
			}
			return ackAction, writeLeaseDurations(a.Workspace(), ds)
		})
	})
	RegisterRaw("lease-echo", leaseEcho)
}

func benchLeaseOps() (int, error) {
	s := os.Getenv(EnvBenchLeaseOps)
	if s == "" {
		return 200, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s=%q: want a count", EnvBenchLeaseOps, s)
	}
	return n, nil
}

func writeLeaseDurations(dir string, ds []float64) error {
	b, err := json.Marshal(ds)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, LeaseDurationsFile), b, 0o644)
}

// leaseEcho is the baseline of the lease round trip: raw NATS, no SDK, no
// envelope, no lessor. It connects with its own credentials and times
// EnvBenchLeaseOps pairs of requests on its lease subject, of the sizes
// EnvLeaseEchoSizes gives (the baseline's host answers each with a reply
// of the size Terrarium's has), writes the durations and exits.
func leaseEcho(ctx context.Context) error {
	url, run, id := os.Getenv(agents.EnvNATSURL), os.Getenv(agents.EnvRun), os.Getenv(agents.EnvAgentID)
	if url == "" || run == "" || id == "" {
		return fmt.Errorf("lease-echo: %s, %s and %s must be set", agents.EnvNATSURL, agents.EnvRun, agents.EnvAgentID)
	}
	n, err := benchLeaseOps()
	if err != nil {
		return err
	}
	var sizes [2]int
	parts := strings.Split(os.Getenv(EnvLeaseEchoSizes), ",")
	for i := range sizes {
		if len(parts) != 2 {
			return fmt.Errorf("lease-echo: %s=%q: want ACQUIRE,RELEASE", EnvLeaseEchoSizes, os.Getenv(EnvLeaseEchoSizes))
		}
		if sizes[i], err = strconv.Atoi(parts[i]); err != nil || sizes[i] < 1 || sizes[i] > bus.MaxPayload {
			return fmt.Errorf("lease-echo: %s=%q: want two sizes", EnvLeaseEchoSizes, os.Getenv(EnvLeaseEchoSizes))
		}
	}
	inbox := os.Getenv(agents.EnvInboxPrefix)
	if inbox == "" {
		inbox = bus.InboxPrefix(run, id)
	}
	nc, err := nats.Connect(url, nats.Name(id), nats.UserInfo(os.Getenv(agents.EnvNATSUser), os.Getenv(agents.EnvNATSPass)),
		nats.CustomInboxPrefix(inbox), nats.NoReconnect())
	if err != nil {
		return fmt.Errorf("lease-echo %s: connect: %w", id, err)
	}
	defer nc.Close()
	subj := bus.AgentSubject(run, id, bus.KindLease)
	req := [2][]byte{bytes.Repeat([]byte{'x'}, sizes[0]), bytes.Repeat([]byte{'y'}, sizes[1])}
	request := func(b []byte) error {
		for {
			_, err := nc.RequestWithContext(ctx, subj, b)
			if errors.Is(err, nats.ErrNoResponders) { // the host is not listening yet
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(20 * time.Millisecond):
				}
				continue
			}
			return err
		}
	}
	ds := make([]float64, 0, n)
	for range n {
		t0 := time.Now()
		for _, b := range req {
			if err := request(b); err != nil {
				return fmt.Errorf("lease-echo %s: %w", id, err)
			}
		}
		ds = append(ds, float64(time.Since(t0).Nanoseconds())/1e3)
	}
	return writeLeaseDurations(os.Getenv(agents.EnvWorkspace), ds)
}
