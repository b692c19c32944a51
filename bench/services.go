package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/observe"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/workspace"
	"github.com/terrarium-sim/terrarium/world"
	"github.com/terrarium-sim/terrarium/world/echo"
)

// The two cases of the run's services, beside the tick:
//
// Lease acquire/release round trip: one agent acquires and releases one
// file of the shared workspace Ops times, timing each pair itself
// (builtin bench-lease, through the SDK, the envelope and the host's
// lessor). The baseline is a child process (builtin lease-echo: raw NATS,
// same spawn path and credentials) timing two raw request/replies per pair,
// of the sizes of Terrarium's acquire and release requests, which the
// baseline's host answers with messages of the sizes of Terrarium's
// replies.
//
// Events/s to observers: a run of 10 agents steps T ticks and waits at
// its last; an observer (the run's observer credentials, over TCP) then
// reads its event stream from the start with observe.Open up to the last
// tick.closed. The baseline publishes the same number of messages of the
// same sizes into a stream of the same configuration (bus.OpenEventStream)
// and reads them with a raw JetStream ordered consumer with the same pull
// settings, without decoding them.

// leaseOps is how many acquire/release pairs each side times.
func leaseOps(short bool) int {
	if short {
		return 50
	}
	return 300
}

// observerShape is the observers case's agents and ticks.
func observerShape(short bool) (n, ticks int) {
	if short {
		return 10, 200
	}
	return 10, 3000
}

// leasePayloads are the sizes of Terrarium's lease messages: acquire
// request and reply, release request and reply (envelopes included).
func leasePayloads(run, id string) [4]int {
	env := func(v any) int {
		data, _ := json.Marshal(v)
		b, _ := bus.Encode(bus.Envelope{Kind: bus.KindLease, Run: run, Agent: id, Tick: 1, Seq: 12, Data: data})
		return len(b)
	}
	return [4]int{
		env(workspace.Request{Op: workspace.OpAcquire, Path: builtin.LeaseFile}),
		env(workspace.Reply{OK: true, Lease: &workspace.LeaseInfo{Path: builtin.LeaseFile, Token: 123, Expires: time.Now().UTC()}}),
		env(workspace.Request{Op: workspace.OpRelease, Token: 123}),
		env(workspace.Reply{OK: true}),
	}
}

// alternate runs f for both sides o.Runs times, alternating which goes
// first, and collects their figures. show, if set, renders a run's
// figures for the progress line (default: the rounded list).
func alternate(ctx context.Context, o Options, seq *int, what string, show func([]float64) string, f func(ctx context.Context, dir string, terr bool) ([]float64, error)) (ts, bs [][]float64, err error) {
	if show == nil {
		show = func(xs []float64) string { return fmt.Sprint(roundAll(xs)) }
	}
	for i := 0; i < o.Runs; i++ {
		order := []bool{true, false}
		if i%2 == 1 {
			order = []bool{false, true}
		}
		for _, terr := range order {
			if (o.Only == "terrarium" && !terr) || (o.Only == "baseline" && terr) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			*seq++
			dir := filepath.Join(o.Dir, strconv.Itoa(*seq))
			name := "baseline"
			if terr {
				name = "terrarium"
			}
			xs, err := f(ctx, dir, terr)
			if err != nil {
				return nil, nil, fmt.Errorf("bench: %s, %s, run %d: %w", strings.TrimSpace(what), name, i+1, err)
			}
			if terr {
				ts = append(ts, xs)
			} else {
				bs = append(bs, xs)
			}
			if o.Progress != nil {
				fmt.Fprintf(o.Progress, "%-9s %s run %d/%d: %s\n", name, what, i+1, o.Runs, show(xs))
			}
			_ = os.RemoveAll(dir)
		}
	}
	return ts, bs, nil
}

func roundAll(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(int64(x*10+0.5)) / 10
	}
	return out
}

// addCase adds a case from per-run figures (figure k of each run) and
// returns it, for a target to be set (before the next case is added).
func addCase(rep *Report, name, unit string, n int, higher bool, ts, bs [][]float64, k int) *Case {
	pick := func(runs [][]float64) Stats {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = r[k]
		}
		return stats(xs)
	}
	c := Case{Name: name, Agents: n, Unit: unit, HigherIsBetter: higher, Terrarium: pick(ts), Baseline: pick(bs)}
	if c.Baseline.Median > 0 {
		c.Ratio = c.Terrarium.Median / c.Baseline.Median
	}
	rep.Cases = append(rep.Cases, c)
	return &rep.Cases[len(rep.Cases)-1]
}

// runServiceCases runs the lease and observer cases and adds them to rep.
func runServiceCases(ctx context.Context, o Options, rep *Report, seq *int) error {
	ops := leaseOps(o.Short)
	ts, bs, err := alternate(ctx, o, seq, "lease round trip", nil, func(ctx context.Context, dir string, terr bool) ([]float64, error) {
		var ds []float64
		var err error
		if terr {
			ds, err = leaseTerrarium(ctx, o, dir, ops)
		} else {
			ds, err = leaseBaseline(ctx, o, dir, ops)
		}
		if err != nil {
			return nil, err
		}
		if len(ds) != ops {
			return nil, fmt.Errorf("%d round trips timed, want %d", len(ds), ops)
		}
		slices.Sort(ds)
		q := func(p float64) float64 { return ds[int(p*float64(len(ds)-1)+0.5)] }
		return []float64{q(0.5), q(0.99)}, nil
	})
	if err != nil {
		return err
	}
	addCase(rep, "lease acquire/release round trip p50", "µs", 1, false, ts, bs, 0)
	addCase(rep, "lease acquire/release round trip p99", "µs", 1, false, ts, bs, 1)

	n, ticks := observerShape(o.Short)
	if o.Ticks > 0 {
		ticks = o.Ticks
	}
	var sizes []int // the Terrarium side's event sizes, for the baseline
	ts, bs, err = alternate(ctx, o, seq, "events to an observer", nil, func(ctx context.Context, dir string, terr bool) ([]float64, error) {
		if terr {
			rate, sz, err := observeTerrarium(ctx, o, dir, n, ticks)
			if err == nil && sizes == nil {
				sizes = sz
			}
			return []float64{rate}, err
		}
		if sizes == nil {
			// Only the baseline runs (o.Only): the sizes of such a run's
			// events, about.
			sizes = make([]int, ticks+2*n+1)
			for i := range sizes {
				sizes[i] = 250 + 40*n
			}
		}
		rate, err := observeBaseline(ctx, o, dir, sizes)
		return []float64{rate}, err
	})
	if err != nil {
		return err
	}
	addCase(rep, "events/s to an observer", "events/s", n, true, ts, bs, 0)
	return nil
}

// leaseTerrarium runs bench-lease in a Terrarium run and returns its
// durations (µs).
func leaseTerrarium(ctx context.Context, o Options, dir string, ops int) ([]float64, error) {
	seed := filepath.Join(dir, "seed")
	if err := os.MkdirAll(seed, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(seed, builtin.LeaseFile), []byte("bench\n"), 0o644); err != nil {
		return nil, err
	}
	src := fmt.Sprintf(`
scenario "bench" {
  ticks           = 2
  action_deadline = "600s"
  ready_timeout   = "600s"
}
world %q {
  payload = %d
}
workspace {
  seed = %q
}
agent "a" {
  runtime = "builtin"
  command = "bench-lease"
}
`, echo.Kind, obsPayload, seed)
	sc, diags := scenarios.Parse([]byte(src), filepath.Join(dir, "bench.hcl"))
	if diags.HasErrors() {
		return nil, fmt.Errorf("scenario: %s", diags.Error())
	}
	env := map[string]string{builtin.EnvBenchLeaseOps: strconv.Itoa(ops)}
	for k, v := range o.Env {
		env[k] = v
	}
	run := filepath.Join(dir, "run")
	h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: o.Logger, Dir: run, RunID: runID(dir), Executable: o.Executable,
		AgentUsers: o.AgentUsers, Env: env})
	if err != nil {
		return nil, err
	}
	defer h.Close()
	res, err := h.Run(ctx)
	if err != nil {
		return nil, err
	}
	if res.Status != terrarium.StatusFinished {
		return nil, fmt.Errorf("run %s: %s", res.Status, res.Error)
	}
	return readDurations(filepath.Join(res.Dir, "workspace", "agents", "a", builtin.LeaseDurationsFile))
}

func readDurations(path string) ([]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("the agent's durations: %w", err)
	}
	var ds []float64
	if err := json.Unmarshal(b, &ds); err != nil {
		return nil, fmt.Errorf("the agent's durations %s: %w", path, err)
	}
	return ds, nil
}

// leaseBaseline runs lease-echo against a raw responder and returns its
// durations (µs).
func leaseBaseline(ctx context.Context, o Options, dir string, ops int) (_ []float64, err error) {
	log := o.Logger.Named("baseline")
	run := runID(dir)
	const id = "a"
	for _, d := range []string{"jetstream", "logs", "workspace", "bin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	exe, err := builtin.InstallExecutable(o.Executable, filepath.Join(dir, "bin", "terrarium"))
	if err != nil {
		return nil, err
	}
	srv, err := bus.Start(bus.Options{Run: run, Dir: filepath.Join(dir, "jetstream"), Logger: log})
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	nc, err := srv.Connect("host")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	pay := leasePayloads(run, id)
	replies := [2][]byte{bytes.Repeat([]byte{'x'}, pay[1]), bytes.Repeat([]byte{'y'}, pay[3])}
	if _, err := nc.Subscribe(bus.AgentSubject(run, id, bus.KindLease), func(m *nats.Msg) {
		r := replies[1]
		if len(m.Data) == pay[0] {
			r = replies[0]
		}
		_ = m.Respond(r)
	}); err != nil {
		return nil, err
	}
	if err := nc.Flush(); err != nil {
		return nil, err
	}
	creds, err := srv.AddAgent(id)
	if err != nil {
		return nil, err
	}
	ws := filepath.Join(dir, "workspace", id)
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if o.AgentUsers == "on" {
		uid, release, err := terrarium.ReserveAgentUIDs(0, 1)
		if err != nil {
			return nil, err
		}
		defer func() {
			if rerr := release(); rerr != nil && err == nil {
				err = rerr
			}
		}()
		cred = &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}
		if err := os.Chown(ws, int(uid), int(uid)); err != nil {
			return nil, err
		}
		if err := os.Chmod(ws, 0o700); err != nil {
			return nil, err
		}
	}
	extra := map[string]string{}
	for k, v := range o.Env {
		extra[k] = v
	}
	for k, v := range map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": ws, "GOMAXPROCS": "1",
		agents.EnvNATSURL: srv.ClientURL(), agents.EnvNATSUser: creds.User, agents.EnvNATSPass: creds.Password,
		agents.EnvInboxPrefix: creds.InboxPrefix, agents.EnvRun: run, agents.EnvAgentID: id, agents.EnvGroup: "a",
		agents.EnvWorkspace: ws, agents.EnvShared: filepath.Join(dir, "workspace"), agents.EnvSeed: "1",
		agents.EnvBuiltin: "lease-echo", builtin.EnvBenchLeaseOps: strconv.Itoa(ops),
		builtin.EnvLeaseEchoSizes: strconv.Itoa(pay[0]) + "," + strconv.Itoa(pay[2]),
	} {
		extra[k] = v
	}
	sup := agents.NewSupervisor(agents.Config{Logger: log, StopGrace: 2 * time.Second, Subreaper: true})
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if serr := sup.Shutdown(sctx); serr != nil && err == nil {
			err = serr
		}
	}()
	logPath := filepath.Join(dir, "logs", id+".log")
	p, err := sup.Start(agents.Spec{ID: id, Path: exe, Env: agents.BuildEnv(nil, nil, extra), Dir: ws, LogPath: logPath, Credential: cred})
	if err != nil {
		return nil, fmt.Errorf("start lease-echo: %w", err)
	}
	t := time.NewTimer(readyTimeout)
	defer t.Stop()
	select {
	case <-p.Done():
	case <-t.C:
		return nil, errors.New("lease-echo did not finish")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if st := p.Exit(); !st.Clean() {
		return nil, fmt.Errorf("lease-echo exited: %s: %s", st, tail(logPath))
	}
	return readDurations(filepath.Join(ws, builtin.LeaseDurationsFile))
}

// observeTerrarium runs n ack agents for ticks ticks, holds the run at its
// last tick, and times an observer reading the stream from the start up
// to that tick's tick.closed. It returns events per second and the sizes
// of the events read (from events.jsonl).
func observeTerrarium(ctx context.Context, o Options, dir string, n, ticks int) (float64, []int, error) {
	sc, diags := scenarios.Parse([]byte(scenarioSource(n, ticks)), "bench.hcl")
	if diags.HasErrors() {
		return 0, nil, fmt.Errorf("scenario: %s", diags.Error())
	}
	infoCh := make(chan observe.Info, 1)
	last := make(chan struct{})    // the run is at its last tick
	release := make(chan struct{}) // the observer is done
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	defer free()
	h, err := terrarium.New(terrarium.Config{
		Scenario: sc, Logger: o.Logger, Dir: dir, RunID: runID(dir), Executable: o.Executable,
		AgentUsers: o.AgentUsers, Env: o.Env,
		Observers: func(in observe.Info) { infoCh <- in },
		Progress: func(p terrarium.Progress) {
			if int(p.Tick) == ticks {
				close(last)
				<-release
			}
		},
	})
	if err != nil {
		return 0, nil, err
	}
	defer h.Close()
	type result struct {
		rate  float64
		count int
		err   error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() { free(); done <- r }()
		var info observe.Info
		select {
		case info = <-infoCh:
		case <-ctx.Done():
			r.err = ctx.Err()
			return
		}
		select {
		case <-last:
		case <-ctx.Done():
			r.err = ctx.Err()
			return
		}
		onc, err := nats.Connect(info.URL, nats.UserInfo(info.User, info.Password), nats.CustomInboxPrefix(info.InboxPrefix))
		if err != nil {
			r.err = fmt.Errorf("observer: %w", err)
			return
		}
		defer onc.Close()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		f, err := observe.Open(rctx, onc, info.Stream, observe.Start{})
		if err != nil {
			r.err = err
			return
		}
		defer f.Close()
		var first, end time.Time
		for {
			rec, err := f.Next(rctx)
			if err != nil {
				r.err = fmt.Errorf("observer, after %d events: %w", r.count, err)
				return
			}
			end = time.Now()
			if r.count == 0 {
				first = end
			}
			r.count++
			if rec.Kind == world.EventTickClosed && int(rec.Tick) == ticks {
				break
			}
		}
		if r.count < 2 || !end.After(first) {
			r.err = fmt.Errorf("observer read %d events", r.count)
			return
		}
		r.rate = float64(r.count-1) / end.Sub(first).Seconds()
	}()
	res, err := h.Run(ctx)
	r := <-done
	if err != nil {
		return 0, nil, err
	}
	if r.err != nil {
		return 0, nil, r.err
	}
	b, err := os.ReadFile(filepath.Join(res.Dir, "events.jsonl"))
	if err != nil {
		return 0, nil, err
	}
	lines := bytes.Split(b, []byte{'\n'})
	if len(lines) < r.count {
		return 0, nil, fmt.Errorf("events.jsonl has %d events, the observer read %d", len(lines), r.count)
	}
	sizes := make([]int, r.count)
	for i := range sizes {
		sizes[i] = len(lines[i])
	}
	return r.rate, sizes, nil
}

// observeBaseline publishes messages of the given sizes into a stream made
// as the run's is, then times a raw ordered consumer reading them all.
func observeBaseline(ctx context.Context, o Options, dir string, sizes []int) (float64, error) {
	log := o.Logger.Named("baseline")
	run := runID(dir)
	if err := os.MkdirAll(filepath.Join(dir, "jetstream"), 0o755); err != nil {
		return 0, err
	}
	srv, err := bus.Start(bus.Options{Run: run, Dir: filepath.Join(dir, "jetstream"), Logger: log})
	if err != nil {
		return 0, err
	}
	defer srv.Close()
	nc, err := srv.Connect("host")
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	pub, err := srv.OpenEventStream(ctx, nc, bus.StreamOptions{})
	if err != nil {
		return 0, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = pub.Close(cctx)
	}()
	subject := bus.EventSubject(run, world.EventTickClosed)
	for i, sz := range sizes {
		pub.Publish(uint64(i+1), subject, bytes.Repeat([]byte{'x'}, sz))
	}
	for deadline := time.Now().Add(time.Minute); pub.Stats().Stored < uint64(len(sizes)); {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the stream stored %d of %d messages", pub.Stats().Stored, len(sizes))
		}
		time.Sleep(5 * time.Millisecond)
	}
	creds, err := srv.AddObserver(bus.DefaultObserver)
	if err != nil {
		return 0, err
	}
	onc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(creds.User, creds.Password), nats.CustomInboxPrefix(creds.InboxPrefix))
	if err != nil {
		return 0, err
	}
	defer onc.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	js, err := jetstream.New(onc)
	if err != nil {
		return 0, err
	}
	// As observe.Open does.
	cons, err := js.OrderedConsumer(rctx, bus.StreamName(run), jetstream.OrderedConsumerConfig{InactiveThreshold: 10 * time.Second, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return 0, err
	}
	msgs, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(256, 8<<20))
	if err != nil {
		return 0, err
	}
	defer msgs.Stop()
	var first, end time.Time
	for i := range sizes {
		if _, err := msgs.Next(jetstream.NextContext(rctx)); err != nil {
			return 0, fmt.Errorf("consumer, after %d messages: %w", i, err)
		}
		end = time.Now()
		if i == 0 {
			first = end
		}
	}
	if len(sizes) < 2 || !end.After(first) {
		return 0, fmt.Errorf("%d messages", len(sizes))
	}
	return float64(len(sizes)-1) / end.Sub(first).Seconds(), nil
}
