package agents_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/bus/bustest"
	"github.com/terrarium-sim/terrarium/internal/testenv"
)

// stdioChildEnv selects what the re-executed test binary does as a stdio
// agent (see stdioChild). It is checked in init, before TestMain, so the
// stdio children need no case in supervisor_test.go's child.
const stdioChildEnv = "AGENTS_TEST_STDIO_CHILD"

func init() {
	if mode := os.Getenv(stdioChildEnv); mode != "" {
		os.Exit(stdioChild(mode))
	}
}

// stdioChild is the stdio agent of these tests.
//
//	echo: answers each obs line with an act for its tick whose data holds the
//	      hello line, the observation's data and deadline. Before that it
//	      prints the observation's "say" strings as raw lines and, for each
//	      number in "long", a line of that many 'x'. Exits 0 on stop or EOF,
//	      saying which on stderr.
//	deaf: never reads stdin; prints an act for tick 7 on each SIGUSR1.
//	flood: prints lines of 1 KiB on stdout until that fails.
func stdioChild(mode string) int {
	out := bufio.NewWriter(os.Stdout)
	switch mode {
	case "echo":
		in := bufio.NewReader(os.Stdin)
		var hello json.RawMessage
		for {
			line, err := in.ReadBytes('\n')
			if err != nil {
				fmt.Fprintln(os.Stderr, "eof")
				return 0
			}
			var msg struct {
				Type     string          `json:"type"`
				Tick     uint64          `json:"tick"`
				Deadline string          `json:"deadline"`
				Data     json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(line, &msg); err != nil {
				fmt.Fprintln(os.Stderr, "bad line from the host:", err)
				return 2
			}
			switch msg.Type {
			case "hello":
				hello = append(json.RawMessage(nil), line...)
			case "obs":
				var cmd struct {
					Say  []string `json:"say"`
					Long []int    `json:"long"`
				}
				_ = json.Unmarshal(msg.Data, &cmd)
				for _, s := range cmd.Say {
					fmt.Fprintln(out, s)
				}
				for _, n := range cmd.Long {
					fmt.Fprintln(out, strings.Repeat("x", n))
				}
				act, _ := json.Marshal(map[string]any{"type": "act", "tick": msg.Tick, "data": map[string]any{
					"hello": hello, "obs": msg.Data, "deadline": msg.Deadline}})
				fmt.Fprintf(out, "%s\n", act)
				out.Flush()
			case "stop":
				fmt.Fprintf(os.Stderr, "stop %d\n", msg.Tick)
				return 0
			}
		}
	case "deaf":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGUSR1)
		fmt.Fprintln(os.Stderr, "ready")
		for range sigs {
			fmt.Fprintln(out, `{"type":"act","tick":7,"data":{"deaf":true}}`)
			out.Flush()
		}
		return 0
	case "flood":
		line := strings.Repeat("y", 1023)
		for {
			if _, err := fmt.Fprintln(out, line); err != nil {
				return 0
			}
		}
	}
	fmt.Fprintf(os.Stderr, "unknown stdio child mode %q\n", mode)
	return 2
}

const stdioRun = "r1"

// stdioHost plays the host's side of the bus protocol on a real embedded
// bus: it answers hellos and collects acts and byes.
type stdioHost struct {
	t      *testing.T
	srv    *bus.Server
	nc     *nats.Conn
	hellos chan bus.Envelope
	acts   chan bus.Envelope
	byes   chan bus.Envelope
	seq    uint64
}

func newStdioHost(t *testing.T) *stdioHost {
	t.Helper()
	srv := bustest.NewServer(t, stdioRun)
	nc, err := srv.Connect("host")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	h := &stdioHost{t: t, srv: srv, nc: nc,
		hellos: make(chan bus.Envelope, 10), acts: make(chan bus.Envelope, 100), byes: make(chan bus.Envelope, 10)}
	collect := func(kind string, ch chan bus.Envelope) {
		_, err := nc.Subscribe(bus.AllAgents(stdioRun, kind), func(m *nats.Msg) {
			e, err := bus.Decode(m.Data, stdioRun)
			if err != nil {
				t.Errorf("host: bad %s message: %v", kind, err)
				return
			}
			if id, _, _ := bus.AgentFromSubject(stdioRun, m.Subject); id != e.Agent {
				t.Errorf("host: %s from subject %s says agent %q", kind, m.Subject, e.Agent)
			}
			if kind == bus.KindHello {
				b, _ := bus.Encode(bus.Envelope{Kind: bus.KindHello, Run: stdioRun, Agent: e.Agent})
				if err := m.Respond(b); err != nil {
					t.Errorf("host: respond: %v", err)
				}
			}
			select {
			case ch <- e:
			default:
				t.Errorf("host: too many %s messages", kind)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	collect(bus.KindHello, h.hellos)
	collect(bus.KindAct, h.acts)
	collect(bus.KindBye, h.byes)
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return h
}

// env registers agent id on the bus and returns its settings, as the host
// gives them to an agent.
func (h *stdioHost) env(id string) map[string]string {
	h.t.Helper()
	cr, err := h.srv.AddAgent(id)
	if err != nil {
		h.t.Fatal(err)
	}
	return map[string]string{
		agents.EnvNATSURL:     h.srv.ClientURL(),
		agents.EnvNATSUser:    cr.User,
		agents.EnvNATSPass:    cr.Password,
		agents.EnvInboxPrefix: cr.InboxPrefix,
		agents.EnvRun:         stdioRun,
		agents.EnvAgentID:     id,
		agents.EnvSeed:        "18446744073709551615",
	}
}

func (h *stdioHost) publish(subject string, e bus.Envelope) {
	h.t.Helper()
	h.seq++
	e.Run, e.Seq = stdioRun, h.seq
	b, err := bus.Encode(e)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.nc.Publish(subject, b); err != nil {
		h.t.Fatal(err)
	}
}

// obs sends agent id its observation for tick and returns the deadline.
func (h *stdioHost) obs(id string, tick uint64, data any) time.Time {
	h.t.Helper()
	b, err := json.Marshal(data)
	if err != nil {
		h.t.Fatal(err)
	}
	d := time.Now().Add(time.Minute).UTC()
	h.publish(bus.ToSubject(stdioRun, id, bus.KindObs), bus.Envelope{Kind: bus.KindObs, Agent: id, Tick: tick, Deadline: &d, Data: b})
	return d
}

func (h *stdioHost) stop(id string, tick uint64) {
	h.publish(bus.ToSubject(stdioRun, id, bus.KindStop), bus.Envelope{Kind: bus.KindStop, Agent: id, Tick: tick})
}

func (h *stdioHost) end(tick uint64) {
	h.publish(bus.WorldSubject(stdioRun, bus.KindEnd), bus.Envelope{Kind: bus.KindEnd, Tick: tick})
}

func receive(t *testing.T, ch chan bus.Envelope, what string) bus.Envelope {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(bustest.Timeout):
		t.Fatalf("timed out waiting for %s", what)
		return bus.Envelope{}
	}
}

// bridge is a StdioBridge running in its own goroutine.
type bridge struct {
	*agents.StdioBridge
	p      *agents.Process
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Run's result, set before done is closed
}

// startStdio starts spec as a stdio agent and runs its bridge until the test
// ends (then ctx is cancelled and Run must return).
func startStdio(f *fixture, h *stdioHost, spec agents.Spec, cfg agents.StdioConfig) *bridge {
	f.t.Helper()
	spec.Stdio = true
	p := f.start(spec)
	if cfg.Env == nil {
		cfg.Env = h.env(spec.ID)
	}
	sb, err := agents.NewStdioBridge(p, cfg)
	if err != nil {
		f.t.Fatalf("NewStdioBridge: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &bridge{StdioBridge: sb, p: p, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.err = sb.Run(ctx)
	}()
	f.t.Cleanup(func() {
		cancel()
		select {
		case <-b.done:
		case <-time.After(bustest.Timeout):
			f.t.Errorf("bridge of %s: Run did not return after cancel", spec.ID)
		}
	})
	return b
}

// wait waits for Run to return and returns its result.
func (b *bridge) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-b.done:
		return b.err
	case <-time.After(bustest.Timeout):
		t.Fatal("timed out waiting for the bridge's Run to return")
		return nil
	}
}

func (f *fixture) stdioSpec(id, mode string) agents.Spec {
	spec := f.spec(id, "")
	spec.Env = []string{stdioChildEnv + "=" + mode, raceEnv}
	return spec
}

// waitStderr waits for a stderr line of the agent's log.
func waitStderr(t *testing.T, path, want string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("stderr line %q in %s", want, path), func() bool {
		for _, l := range stream(readLog(t, path), "stderr") {
			if l == want {
				return true
			}
		}
		return false
	})
}

// echoed is the data of an echo child's act.
type echoed struct {
	Hello struct {
		Type  string `json:"type"`
		V     int    `json:"v"`
		Agent string `json:"agent"`
		Run   string `json:"run"`
		Seed  uint64 `json:"seed"`
	} `json:"hello"`
	Obs      json.RawMessage `json:"obs"`
	Deadline string          `json:"deadline"`
}

func TestStdioActsCarryTheirTicksAndStopEndsTheChild(t *testing.T) {
	for _, how := range []string{"stop", "end"} {
		t.Run(how, func(t *testing.T) {
			f := newFixture(t, agents.Config{})
			h := newStdioHost(t)
			spec := f.stdioSpec("a1", "echo")
			b := startStdio(f, h, spec, agents.StdioConfig{})

			hello := receive(t, h.hellos, "hello")
			var hd struct {
				SDK string `json:"sdk"`
				Pid int    `json:"pid"`
			}
			if err := json.Unmarshal(hello.Data, &hd); err != nil || hd.SDK != "stdio" || hd.Pid != b.p.Pid() {
				t.Errorf("hello data %s (%v), want sdk stdio and pid %d", hello.Data, err, b.p.Pid())
			}
			lastSeq := hello.Seq
			for tick := uint64(1); tick <= 3; tick++ {
				deadline := h.obs("a1", tick, map[string]uint64{"round": tick})
				act := receive(t, h.acts, fmt.Sprintf("act %d", tick))
				if act.Tick != tick || act.Agent != "a1" || act.Seq <= lastSeq {
					t.Errorf("act = %+v, want tick %d, agent a1, seq after %d", act, tick, lastSeq)
				}
				lastSeq = act.Seq
				var e echoed
				if err := json.Unmarshal(act.Data, &e); err != nil {
					t.Fatalf("act data %s: %v", act.Data, err)
				}
				if got, want := string(e.Obs), fmt.Sprintf(`{"round":%d}`, tick); got != want {
					t.Errorf("observation seen by the child = %s, want %s", got, want)
				}
				if d, err := time.Parse(time.RFC3339Nano, e.Deadline); err != nil || !d.Equal(deadline) {
					t.Errorf("deadline seen by the child = %q (%v), want %s", e.Deadline, err, deadline.Format(time.RFC3339Nano))
				}
				if e.Hello.Type != "hello" || e.Hello.V != agents.StdioVersion || e.Hello.Agent != "a1" || e.Hello.Run != stdioRun || e.Hello.Seed != 18446744073709551615 {
					t.Errorf("hello line seen by the child = %+v", e.Hello)
				}
			}

			if how == "stop" {
				h.stop("a1", 3)
			} else {
				h.end(3)
			}
			if err := b.wait(t); err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
			select {
			case <-b.p.Done():
			default:
				t.Error("Run returned before the process was done")
			}
			if st := b.p.Exit(); !st.Clean() {
				t.Errorf("exit = %s, want exit 0", st)
			}
			waitStderr(t, spec.LogPath, "stop 3")
			if bye := receive(t, h.byes, "bye"); bye.Seq <= lastSeq {
				t.Errorf("bye seq %d, want after %d", bye.Seq, lastSeq)
			}
			if got, want := b.Stats(), (agents.StdioStats{Obs: 3, Acts: 3}); got != want {
				t.Errorf("stats = %+v, want %+v", got, want)
			}
		})
	}
}

func TestStdioLongAndBadLinesDoNotStopTheAgent(t *testing.T) {
	f := newFixture(t, agents.Config{})
	h := newStdioHost(t)
	spec := f.stdioSpec("a1", "echo")
	const max = 1024
	b := startStdio(f, h, spec, agents.StdioConfig{MaxLineBytes: max})
	receive(t, h.hellos, "hello")

	bad := []string{"not json at all", "[1,2]", `{"no":"type"}`, `{"type":"act","data":{}}`, `{"type":"act","tick":-1}`, `{"type":`}
	h.obs("a1", 1, map[string]any{
		"say":  bad,
		"long": []int{200_000, max + 1, max}, // two over the limit (the first over many pipe writes), one at it
	})
	if act := receive(t, h.acts, "act 1"); act.Tick != 1 {
		t.Errorf("act tick %d, want 1", act.Tick)
	}
	h.obs("a1", 2, map[string]any{"say": []string{"", "  "}}) // blank lines are skipped
	if act := receive(t, h.acts, "act 2"); act.Tick != 2 {
		t.Errorf("act tick %d, want 2", act.Tick)
	}
	want := agents.StdioStats{Obs: 2, Acts: 2, LongLines: 2, BadLines: uint64(len(bad)) + 1} // + the line of max 'x'
	if got := b.Stats(); got != want {
		t.Errorf("stats = %+v, want %+v", got, want)
	}

	h.stop("a1", 2)
	if err := b.wait(t); err != nil {
		t.Errorf("Run = %v", err)
	}
	b2, err := os.ReadFile(spec.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	log := string(b2)
	for _, l := range bad {
		if !strings.Contains(log, ": "+l+": stream=stdout not_protocol=") {
			t.Errorf("bad line %q not in the agent's log:\n%s", l, log)
		}
	}
	if n := strings.Count(log, "stdout line over the limit discarded"); n != 2 {
		t.Errorf("%d long-line records in the log, want 2:\n%s", n, log)
	}
}

func TestStdioChildThatNeverReadsStdinDoesNotBlockTheHost(t *testing.T) {
	f := newFixture(t, agents.Config{})
	h := newStdioHost(t)
	spec := f.stdioSpec("a1", "deaf")
	b := startStdio(f, h, spec, agents.StdioConfig{QueueLen: 4})
	receive(t, h.hellos, "hello")
	waitStderr(t, spec.LogPath, "ready")

	// Far more than the pipe (64 KiB) and the queue hold. Nothing answers:
	// with a world loop, each of these ticks would end at its deadline.
	const n = 40
	big := strings.Repeat("o", 16<<10)
	for tick := uint64(1); tick <= n; tick++ {
		h.obs("a1", tick, map[string]string{"pad": big})
	}
	waitFor(t, "every observation handled", func() bool { return b.Stats().Obs == n })
	if st := b.Stats(); st.ObsDropped == 0 || st.ObsDropped >= n {
		t.Errorf("stats = %+v: want some, not all, observations dropped", st)
	}

	// The bridge still reads and publishes what the child writes.
	if err := syscall.Kill(b.p.Pid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if act := receive(t, h.acts, "act from the deaf child"); act.Tick != 7 {
		t.Errorf("act tick %d, want 7", act.Tick)
	}

	// The stop line cannot get through either; the host terminates the
	// process, and the bridge ends with it.
	h.stop("a1", n)
	ctx, cancel := context.WithTimeout(context.Background(), bustest.Timeout)
	defer cancel()
	if err := b.p.Terminate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.wait(t); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if st := b.p.Exit(); st.Signal != "SIGTERM" {
		t.Errorf("exit = %s, want signal SIGTERM", st)
	}
}

func TestStdioCancelClosesStdin(t *testing.T) {
	f := newFixture(t, agents.Config{})
	h := newStdioHost(t)
	spec := f.stdioSpec("a1", "echo")
	b := startStdio(f, h, spec, agents.StdioConfig{})
	receive(t, h.hellos, "hello")
	h.obs("a1", 1, map[string]int{"round": 1})
	receive(t, h.acts, "act 1")

	b.cancel()
	if err := b.wait(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	waitDone(t, b.p) // EOF on stdin: the child exits by itself
	if st := b.p.Exit(); !st.Clean() {
		t.Errorf("exit = %s, want exit 0", st)
	}
	waitStderr(t, spec.LogPath, "eof")
}

func TestStdioConnectionLostStopsTheChild(t *testing.T) {
	f := newFixture(t, agents.Config{})
	h := newStdioHost(t)
	spec := f.stdioSpec("a1", "echo")
	b := startStdio(f, h, spec, agents.StdioConfig{})
	receive(t, h.hellos, "hello")
	h.obs("a1", 1, map[string]int{"round": 1})
	receive(t, h.acts, "act 1")

	h.srv.RemoveAgent("a1") // closes the bridge's connection
	if err := b.wait(t); !errors.Is(err, agents.ErrStdioConnectionLost) {
		t.Errorf("Run = %v, want connection lost", err)
	}
	if st := b.p.Exit(); !st.Clean() {
		t.Errorf("exit = %s, want exit 0", st)
	}
	waitStderr(t, spec.LogPath, "stop 1")
}

func TestStdioWithoutBridgeDoesNotHang(t *testing.T) {
	// Nobody reads the child's stdout: it blocks, but once it has exited
	// the supervisor stops waiting for a bridge after WaitDelay and logs
	// the rest as output.
	f := newFixture(t, agents.Config{WaitDelay: 50 * time.Millisecond})
	spec := f.stdioSpec("a1", "flood")
	spec.Stdio = true
	p := f.start(spec)
	// Wait until the child is stuck writing to its stdout (full pipe, the
	// chunks for the bridge waiting), then kill it there.
	waitFor(t, "the child to block on its stdout", func() bool { return blockedWriting(t, p.Pid()) })
	ctx, cancel := context.WithTimeout(context.Background(), bustest.Timeout)
	defer cancel()
	if err := p.Terminate(ctx); err != nil {
		t.Fatal(err)
	}
	waitDone(t, p)
}

// blockedWriting reports whether process pid has written more than a pipe
// holds and sleeps in a pipe write (when the kernel shows /proc/PID/wchan).
func blockedWriting(t *testing.T, pid int) bool {
	t.Helper()
	if bytesWritten(t, pid) <= 128<<10 {
		return false
	}
	wchan, err := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", pid))
	if err != nil || string(wchan) == "0" || string(wchan) == "" {
		return true // not shown: the amount written must do
	}
	return strings.Contains(string(wchan), "pipe_write")
}

// bytesWritten is what process pid has written so far (wchar of /proc/PID/io).
func bytesWritten(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "wchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no wchar in /proc/%d/io", pid)
	return 0
}

func TestNewStdioBridgeErrors(t *testing.T) {
	f := newFixture(t, agents.Config{})
	plain := f.start(f.spec("plain", "sleep"))
	if _, err := agents.NewStdioBridge(plain, agents.StdioConfig{}); !errors.Is(err, agents.ErrNotStdio) {
		t.Errorf("NewStdioBridge(not stdio) = %v, want ErrNotStdio", err)
	}
	spec := f.stdioSpec("s1", "echo")
	spec.Stdio = true
	p := f.start(spec)
	good := map[string]string{agents.EnvNATSURL: "nats://127.0.0.1:1", agents.EnvRun: "r", agents.EnvAgentID: "s1"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for kk, vv := range good {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no url", with(agents.EnvNATSURL, ""), agents.EnvNATSURL + " is not set"},
		{"no run", with(agents.EnvRun, ""), agents.EnvRun + " is not set"},
		{"other agent", with(agents.EnvAgentID, "s2"), `is "s2"`},
		{"bad seed", with(agents.EnvSeed, "-1"), agents.EnvSeed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := agents.NewStdioBridge(p, agents.StdioConfig{Env: tc.env})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "s1") {
				t.Errorf("err = %v, want one naming s1 and containing %q", err, tc.want)
			}
		})
	}
	// Run refuses a second bridge for the same process.
	b1, err := agents.NewStdioBridge(p, agents.StdioConfig{Env: good})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // b1 fails to connect at once and ends
	if err := b1.Run(ctx); err == nil {
		t.Error("Run with a cancelled context and no bus = nil, want an error")
	}
	if err := b1.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second Run = %v, want an error", err)
	}
	b2, err := agents.NewStdioBridge(p, agents.StdioConfig{Env: good})
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "already has a bridge") {
		t.Errorf("Run of a second bridge = %v, want an error", err)
	}
}

func TestStdioPythonTitForTat(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		testenv.Missing(t, "python3 not found (run .ci/deps/python.sh): %v", err)
	}
	script, err := filepath.Abs(filepath.Join("examples", "python", "tit_for_tat.py"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, agents.Config{})
	h := newStdioHost(t)
	spec := f.spec("tft", "")
	spec.Path, spec.Args, spec.Env = python, []string{script}, []string{"PATH=" + os.Getenv("PATH")}
	b := startStdio(f, h, spec, agents.StdioConfig{})
	receive(t, h.hellos, "hello")

	type match struct {
		Match string `json:"match"`
		You   string `json:"you"`
		Them  string `json:"them"`
	}
	for i, tc := range []struct {
		matches []match
		want    string // the moves, as JSON
	}{
		{[]match{{"m01", "", ""}, {"m02", "", ""}}, `{"moves":{"m01":"C","m02":"C"}}`},
		{[]match{{"m01", "C", "D"}, {"m02", "C", "C"}}, `{"moves":{"m01":"D","m02":"C"}}`},
		{[]match{{"m01", "CD", "DC"}, {"m02", "CC", "CD"}}, `{"moves":{"m01":"C","m02":"D"}}`},
	} {
		tick := uint64(i + 1)
		h.obs("tft", tick, map[string]any{"round": tick, "rounds": 3, "matches": tc.matches})
		act := receive(t, h.acts, fmt.Sprintf("act %d", tick))
		if act.Tick != tick || string(act.Data) != tc.want {
			t.Errorf("tick %d: act tick %d data %s, want %s", tick, act.Tick, act.Data, tc.want)
		}
	}
	h.stop("tft", 3)
	if err := b.wait(t); err != nil {
		t.Errorf("Run = %v", err)
	}
	if st := b.p.Exit(); !st.Clean() {
		t.Errorf("exit = %s, want exit 0", st)
	}
	waitStderr(t, spec.LogPath, "tit_for_tat: stop after 3 ticks")
	if st := b.Stats(); st.BadLines != 0 || st.LongLines != 0 || st.ObsDropped != 0 || st.Acts != 3 {
		t.Errorf("stats = %+v", st)
	}
}
