package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/bus"
)

// readyTimeout bounds the baseline's wait for its agents, as the
// scenario's ready_timeout bounds Terrarium's.
const readyTimeout = 10 * time.Minute

// tickTimeout bounds one baseline tick, as action_deadline does.
const tickTimeout = time.Minute

// runBaseline runs the raw side: the same bus, credentials, permissions,
// spawn path and message sizes as a Terrarium run, and a bare
// scatter-gather instead of the loop (see the package doc).
func runBaseline(ctx context.Context, o Options, dir string, n, ticks int) (side, error) {
	return runBaselineSized(ctx, o, dir, n, ticks, payloadSizes())
}

// runBaselineSized is runBaseline with messages of pay's sizes (the pool
// case: one batch-sized message each way per pool process).
func runBaselineSized(ctx context.Context, o Options, dir string, n, ticks int, pay Payload) (_ side, err error) {
	log := o.Logger.Named("baseline")
	run := runID(dir)
	for _, d := range []string{"jetstream", "logs", "workspace", "bin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return side{}, err
		}
	}
	exe, err := builtin.InstallExecutable(o.Executable, filepath.Join(dir, "bin", "terrarium"))
	if err != nil {
		return side{}, err
	}
	before := settle()

	srv, err := bus.Start(bus.Options{Run: run, Dir: filepath.Join(dir, "jetstream"), Logger: log})
	if err != nil {
		return side{}, err
	}
	defer srv.Close()
	nc, err := srv.Connect("host")
	if err != nil {
		return side{}, err
	}
	defer nc.Close()

	var uidBase uint32
	if o.AgentUsers == "on" {
		first, release, err := terrarium.ReserveAgentUIDs(0, n)
		if err != nil {
			return side{}, err
		}
		uidBase = first
		defer func() {
			if rerr := release(); rerr != nil && err == nil {
				err = rerr
			}
		}()
	}

	obsMsg := bytes.Repeat([]byte{'x'}, pay.Observation)
	helloAck := bytes.Repeat([]byte{'x'}, 64)
	ids := agentIDs(n)
	var (
		readyN, acts atomic.Int64
		allReady     = make(chan struct{})
		tickDone     = make(chan struct{}, 1)
		want         atomic.Int64 // acts that close the current tick
	)
	specs := make([]agents.Spec, n)
	obsSubj := make([]string, n)
	pathEnv := os.Getenv("PATH")
	for i, id := range ids {
		creds, err := srv.AddAgent(id)
		if err != nil {
			return side{}, err
		}
		hello, act := bus.AgentSubject(run, id, bus.KindHello), bus.AgentSubject(run, id, bus.KindAct)
		sub, err := nc.Subscribe(bus.AgentPrefix(run, id), func(m *nats.Msg) {
			switch m.Subject {
			case act:
				if acts.Add(1) == want.Load() {
					tickDone <- struct{}{}
				}
			case hello:
				_ = m.Respond(helloAck)
				if readyN.Add(1) == int64(n) {
					close(allReady)
				}
			}
		})
		if err != nil {
			return side{}, err
		}
		if err := sub.SetPendingLimits(4096, 16<<20); err != nil { // as the host's
			return side{}, err
		}
		obsSubj[i] = bus.ToSubject(run, id, bus.KindObs)
		ws := filepath.Join(dir, "workspace", id)
		if err := os.MkdirAll(ws, 0o755); err != nil {
			return side{}, err
		}
		var cred *syscall.Credential
		if o.AgentUsers == "on" {
			uid := uidBase + uint32(i)
			cred = &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}
			if err := os.Chown(ws, int(uid), int(uid)); err != nil {
				return side{}, err
			}
			if err := os.Chmod(ws, 0o700); err != nil {
				return side{}, err
			}
		}
		extra := map[string]string{}
		for k, v := range o.Env {
			extra[k] = v
		}
		for k, v := range map[string]string{
			"PATH": pathEnv, "HOME": ws, "GOMAXPROCS": "1",
			agents.EnvNATSURL: srv.ClientURL(), agents.EnvNATSUser: creds.User, agents.EnvNATSPass: creds.Password,
			agents.EnvInboxPrefix: creds.InboxPrefix, agents.EnvRun: run, agents.EnvAgentID: id, agents.EnvGroup: "a",
			agents.EnvWorkspace: ws, agents.EnvShared: filepath.Join(dir, "workspace"), agents.EnvSeed: "1",
			agents.EnvBuiltin: "echo", builtin.EnvEchoReplyBytes: strconv.Itoa(pay.Action),
		} {
			extra[k] = v
		}
		specs[i] = agents.Spec{ID: id, Path: exe, Env: agents.BuildEnv(nil, nil, extra), Dir: ws,
			LogPath: filepath.Join(dir, "logs", id+".log"), Credential: cred}
	}
	if err := nc.Flush(); err != nil {
		return side{}, err
	}

	sup := agents.NewSupervisor(agents.Config{Logger: log, StopGrace: 2 * time.Second, Subreaper: true})
	procs := make([]*agents.Process, 0, n)
	defer func() {
		// Stop as a run stops: the stop message, a grace period, then the
		// supervisor's SIGTERM/SIGKILL for what is left.
		for _, id := range ids {
			_ = nc.Publish(bus.ToSubject(run, id, bus.KindStop), []byte(`{}`))
		}
		_ = nc.Flush()
		grace := time.NewTimer(2 * time.Second)
		defer grace.Stop()
	wait:
		for _, p := range procs {
			select {
			case <-p.Done():
			case <-grace.C:
				break wait
			}
		}
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if serr := sup.Shutdown(sctx); serr != nil && err == nil {
			err = serr
		}
	}()
	var first time.Time
	for i := range specs {
		p, err := sup.Start(specs[i])
		if err != nil {
			return side{}, fmt.Errorf("start agent %s: %w", specs[i].ID, err)
		}
		if i == 0 {
			first = time.Now()
		}
		procs = append(procs, p)
	}
	exited := make(chan string, n)
	var watch sync.WaitGroup
	stopWatch := make(chan struct{})
	defer func() { close(stopWatch); watch.Wait() }()
	for _, p := range procs {
		watch.Go(func() {
			select {
			case <-p.Done():
				select {
				case exited <- p.ID():
				default:
				}
			case <-stopWatch:
			}
		})
	}
	fail := func(what string) error {
		select {
		case id := <-exited:
			return fmt.Errorf("%s: agent %s exited (see %s)", what, id, filepath.Join(dir, "logs", id+".log"))
		default:
			return errors.New(what)
		}
	}
	rt := time.NewTimer(readyTimeout)
	defer rt.Stop()
	select {
	case <-allReady:
	case id := <-exited:
		return side{}, fmt.Errorf("agent %s exited before it was ready: %s", id, tail(filepath.Join(dir, "logs", id+".log")))
	case <-rt.C:
		return side{}, fail("agents not ready")
	case <-ctx.Done():
		return side{}, ctx.Err()
	}
	var s side
	s.readyMS = float64(time.Since(first)) / float64(time.Millisecond)

	closed := make([]time.Time, 0, ticks)
	tt := time.NewTimer(tickTimeout)
	defer tt.Stop()
	var (
		after      memSample
		cpu0, cpu1 cpuSample
	)
	for t := 1; t <= ticks; t++ {
		want.Store(int64(t * n))
		for _, subj := range obsSubj {
			if err := nc.Publish(subj, obsMsg); err != nil {
				return side{}, err
			}
		}
		tt.Reset(tickTimeout)
		select {
		case <-tickDone:
		case <-tt.C:
			return side{}, fail(fmt.Sprintf("tick %d: %d of %d actions after %s", t, acts.Load()-int64((t-1)*n), n, tickTimeout))
		case <-ctx.Done():
			return side{}, ctx.Err()
		}
		closed = append(closed, time.Now())
		switch t {
		case 1:
			after, cpu0 = sampleMem(), sampleCPU()
		case ticks:
			cpu1 = sampleCPU()
		}
	}
	s.cpuPerRoundTrip(cpu0, cpu1, n, ticks)
	s.rssKiB, s.fds = perAgent(before, after, n)
	s.ticksPerSec, s.p50us, s.p99us, err = tickFigures(closed)
	if err != nil {
		return side{}, err
	}
	return s, nil
}

// tail is the end of a log file, for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "..." + s[len(s)-600:]
	}
	return s
}
