package agents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium/bus"
)

// Defaults for StdioConfig.
const (
	// DefaultStdioMaxLine is the longest stdout line a bridge accepts.
	DefaultStdioMaxLine = 1 << 20
	// DefaultStdioQueue is how many lines may wait to be written to a
	// child's stdin.
	DefaultStdioQueue = 16
)

// stdioChunks is how many stdout chunks (of at most 32 KiB, exec's copy
// buffer) wait for the bridge before the child's writes block.
const stdioChunks = 16

// stdioCloseTimeout bounds the flush of the bridge's connection at the end.
const stdioCloseTimeout = 2 * time.Second

// Stdio line types (the "type" field of a line; see docs/protocol.md).
const (
	StdioHello = "hello" // host to child, the first line
	StdioObs   = "obs"   // host to child: the observation for "tick"
	StdioStop  = "stop"  // host to child, the last line; then stdin is closed
	StdioAct   = "act"   // child to host: the action for "tick"
)

// StdioVersion is the version of the stdio line format ("v" of the hello line).
const StdioVersion = 1

// ErrStdioConnectionLost is returned by StdioBridge.Run when the bridge's
// connection to the bus closed before the agent was stopped.
var ErrStdioConnectionLost = errors.New("connection to the bus lost")

// ErrNotStdio is returned by NewStdioBridge for a process started without
// Spec.Stdio.
var ErrNotStdio = errors.New("process was not started with Spec.Stdio")

// StdioConfig configures a StdioBridge.
type StdioConfig struct {
	// Env holds the agent's own settings, the values a nats-runtime agent
	// gets in its environment, keyed by the Env* names: EnvNATSURL,
	// EnvNATSUser, EnvNATSPass, EnvInboxPrefix, EnvRun, EnvAgentID (which
	// must be the process's id) and EnvSeed. The bridge connects to the bus
	// with these credentials, so the bus sees the agent itself, with its
	// permissions. The child needs none of them.
	Env map[string]string
	// MaxLineBytes is the longest stdout line accepted (without its
	// newline); a longer line is discarded up to its newline and counted
	// (default DefaultStdioMaxLine).
	MaxLineBytes int
	// QueueLen is how many lines may wait to be written to the child's
	// stdin; an observation that finds the queue full is dropped and
	// counted (default DefaultStdioQueue).
	QueueLen int
}

// StdioStats counts what a bridge did. Every field only grows.
type StdioStats struct {
	Obs        uint64 // observations received from the bus
	ObsDropped uint64 // observations not written to the child: its stdin queue was full, or stdin was closed
	Acts       uint64 // act lines published as actions
	LongLines  uint64 // stdout lines over MaxLineBytes, discarded
	BadLines   uint64 // stdout lines that are not protocol lines (not a JSON object, no type, an act without a valid tick), logged
}

// StdioBridge connects one Spec.Stdio process to the bus as that agent: it
// says hello for it, writes each observation to the child's stdin as a JSON
// line, publishes the child's act lines as its actions, and writes a stop
// line when the host stops the agent or ends the run. The line format is in
// docs/protocol.md ("The stdio runtime").
//
// Guarantees:
//
//   - The bridge never blocks on the child. Lines for the child wait in a
//     queue of StdioConfig.QueueLen lines written by one goroutine; an
//     observation that finds the queue full is dropped and counted
//     (StdioStats.ObsDropped), and the tick's deadline then passes as for
//     any agent that does not answer. The child's stdout is read all the
//     while, whether or not it reads its stdin.
//   - Lines reach the child in the order the bridge received them, the
//     hello line first; after the stop line nothing more is written and
//     stdin is closed.
//   - Acts are published in the order the child wrote them, each with the
//     child's tick. A stdout line longer than MaxLineBytes is discarded up
//     to its newline (StdioStats.LongLines); a line that is not a protocol
//     line is written to the agent's log (StdioStats.BadLines); neither
//     stops the agent.
//   - Run returns once the process has exited and its last output has been
//     read and published (nil, or an error if the connection to the bus was
//     lost before the stop), or when ctx is done (ctx.Err(); stdin is then
//     closed, which tells the child to stop, and later stdout lines go to the
//     agent's log). Either way no goroutine of the bridge is left and its
//     connection is closed. Run may be called once.
type StdioBridge struct {
	p      *Process
	cfg    StdioConfig
	id     string
	run    string
	seed   uint64
	max    int
	log    hclog.Logger // the agent's logger, Named("stdio")
	file   hclog.Logger // the agent's log file
	queue  chan []byte  // lines for the child's stdin
	nc     *nats.Conn
	seq    atomic.Uint64
	ran    atomic.Bool
	closed chan struct{} // closed by the connection's ClosedHandler

	stopOnce sync.Once
	stopping chan struct{} // closed when the child is to be stopped
	stopTick atomic.Uint64 // the tick of the stop line, set before stopping is closed
	lastTick atomic.Uint64 // the tick of the last observation
	quit     chan struct{} // closed when Run is ending: the writer stops

	obs, obsDropped, acts, longLines, badLines atomic.Uint64
	droppedLogged                              atomic.Bool
}

// NewStdioBridge returns the bridge for p, which must have been started
// with Spec.Stdio; start it with Run right after Supervisor.Start.
func NewStdioBridge(p *Process, cfg StdioConfig) (*StdioBridge, error) {
	if p.stdio == nil {
		return nil, fmt.Errorf("stdio bridge for agent %s: %w", p.id, ErrNotStdio)
	}
	get := func(k string) string { return cfg.Env[k] }
	for _, k := range []string{EnvNATSURL, EnvRun, EnvAgentID} {
		if get(k) == "" {
			return nil, fmt.Errorf("stdio bridge for agent %s: %s is not set", p.id, k)
		}
	}
	if id := get(EnvAgentID); id != p.id {
		return nil, fmt.Errorf("stdio bridge for agent %s: %s is %q", p.id, EnvAgentID, id)
	}
	var seed uint64
	if s := get(EnvSeed); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			return nil, fmt.Errorf("stdio bridge for agent %s: %s: %w", p.id, EnvSeed, err)
		}
	}
	if cfg.MaxLineBytes <= 0 {
		cfg.MaxLineBytes = DefaultStdioMaxLine
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultStdioQueue
	}
	return &StdioBridge{
		p:        p,
		cfg:      cfg,
		id:       p.id,
		run:      get(EnvRun),
		seed:     seed,
		max:      cfg.MaxLineBytes,
		log:      p.log.Named("stdio"),
		file:     p.fileLog,
		queue:    make(chan []byte, cfg.QueueLen+1), // +1: the hello line
		closed:   make(chan struct{}),
		stopping: make(chan struct{}),
		quit:     make(chan struct{}),
	}, nil
}

// Stats returns the bridge's counters so far.
func (b *StdioBridge) Stats() StdioStats {
	return StdioStats{
		Obs:        b.obs.Load(),
		ObsDropped: b.obsDropped.Load(),
		Acts:       b.acts.Load(),
		LongLines:  b.longLines.Load(),
		BadLines:   b.badLines.Load(),
	}
}

// Run bridges until the process has exited or ctx is done (see StdioBridge).
// It returns an error at once if the bridge cannot connect to the bus.
func (b *StdioBridge) Run(ctx context.Context) error {
	if !b.ran.CompareAndSwap(false, true) {
		return fmt.Errorf("stdio bridge for agent %s: Run called twice", b.id)
	}
	if !b.p.stdio.claimed.CompareAndSwap(false, true) {
		return fmt.Errorf("stdio bridge for agent %s: the process already has a bridge", b.id)
	}
	// Whatever happens, stop taking the child's stdout: later lines are logged.
	defer b.p.stdio.release()
	defer b.p.stdio.markDrained()

	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(b.quit)
	defer b.p.closeStdin() // unblocks a writer stuck on a child that does not read

	hello, err := json.Marshal(hostLine{Type: StdioHello, V: StdioVersion, Agent: b.id, Run: b.run, Seed: &b.seed})
	if err != nil {
		return fmt.Errorf("stdio bridge for agent %s: %w", b.id, err)
	}
	b.queue <- append(hello, '\n') // the queue is empty
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.write()
	}()

	if err := b.connect(ctx); err != nil {
		select {
		case <-b.p.stdio.eof:
			b.log.Debug("agent exited before the bridge was connected", "error", err)
			return nil
		default:
		}
		return fmt.Errorf("stdio bridge for agent %s: %w", b.id, err)
	}
	defer b.disconnect()

	readDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(readDone)
		b.read()
	}()

	lost := false
	closed := b.closed
	for {
		select {
		case <-readDone:
			<-b.p.done // imminent: the supervisor only closes the log first
			if lost {
				return fmt.Errorf("stdio bridge for agent %s: %w", b.id, ErrStdioConnectionLost)
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-closed:
			closed = nil
			select {
			case <-b.stopping:
			default:
				lost = true
				b.log.Warn("connection to the bus lost; stopping the agent")
			}
			b.stop(b.lastTick.Load())
		}
	}
}

// connect connects as the agent, subscribes to its subjects and the world's
// broadcasts, and says hello, as the Go SDK does. ctx and the process's exit
// bound the wait for the host's answer.
func (b *StdioBridge) connect(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-b.p.stdio.eof:
			cancel()
		case <-ctx.Done():
		}
	}()
	get := func(k string) string { return b.cfg.Env[k] }
	url := get(EnvNATSURL)
	inbox := get(EnvInboxPrefix)
	if inbox == "" {
		inbox = bus.InboxPrefix(b.run, b.id)
	}
	opts := []nats.Option{
		nats.Name(b.id),
		nats.CustomInboxPrefix(inbox),
		nats.NoReconnect(),
		nats.ClosedHandler(func(*nats.Conn) { close(b.closed) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			b.log.Warn("bus error", "error", err)
		}),
	}
	if user := get(EnvNATSUser); user != "" {
		opts = append(opts, nats.UserInfo(user, get(EnvNATSPass)))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", url, err)
	}
	for _, subj := range []string{bus.ToPrefix(b.run, b.id), bus.WorldPrefix(b.run)} {
		if _, err := nc.Subscribe(subj, b.onMsg); err != nil {
			nc.Close()
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
	}
	data, err := json.Marshal(map[string]any{"sdk": "stdio", "pid": b.p.pid})
	if err != nil {
		nc.Close()
		return fmt.Errorf("hello: %w", err)
	}
	msg, err := bus.Encode(bus.Envelope{Kind: bus.KindHello, Run: b.run, Agent: b.id, Seq: b.seq.Add(1), Data: data})
	if err != nil {
		nc.Close()
		return err
	}
	subj := bus.AgentSubject(b.run, b.id, bus.KindHello)
	for {
		reply, err := nc.RequestWithContext(ctx, subj, msg)
		if errors.Is(err, nats.ErrNoResponders) {
			// The host is not listening yet: ask again shortly.
			t := time.NewTimer(20 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				nc.Close()
				return fmt.Errorf("hello: no answer from the host: %w", ctx.Err())
			case <-t.C:
			}
			continue
		}
		if err == nil {
			_, err = bus.Decode(reply.Data, "")
		}
		if err != nil {
			nc.Close()
			return fmt.Errorf("hello: %w", err)
		}
		break
	}
	b.nc = nc
	b.log.Debug("connected", "run", b.run, "url", url)
	return nil
}

// disconnect says bye, flushes and closes the connection.
func (b *StdioBridge) disconnect() {
	if !b.nc.IsClosed() {
		if err := b.publish(bus.KindBye, 0, nil); err != nil {
			b.log.Debug("bye", "error", err)
		}
		if err := b.nc.FlushTimeout(stdioCloseTimeout); err != nil {
			b.log.Debug("flush", "error", err)
		}
	}
	b.nc.Close()
	<-b.closed // the ClosedHandler has run
}

func (b *StdioBridge) publish(kind string, tick uint64, data json.RawMessage) error {
	msg, err := bus.Encode(bus.Envelope{Kind: kind, Run: b.run, Agent: b.id, Tick: tick, Seq: b.seq.Add(1), Data: data})
	if err != nil {
		return err
	}
	if err := b.nc.Publish(bus.AgentSubject(b.run, b.id, kind), msg); err != nil {
		return fmt.Errorf("publish %s: %w", kind, err)
	}
	return nil
}

// onMsg handles every message to the agent and every broadcast, on the
// client's goroutine of each subscription. It never blocks.
func (b *StdioBridge) onMsg(m *nats.Msg) {
	env, err := bus.Decode(m.Data, b.run)
	if err != nil {
		b.log.Warn("bad message from the bus ignored", "subject", m.Subject, "error", err)
		return
	}
	switch env.Kind {
	case bus.KindObs:
		b.obs.Add(1)
		b.lastTick.Store(env.Tick)
		select {
		case <-b.stopping:
			b.log.Debug("observation after the stop not written", "tick", env.Tick)
			return
		default:
		}
		line, err := json.Marshal(hostLine{Type: StdioObs, Tick: &env.Tick, Deadline: env.Deadline, Data: env.Data})
		if err != nil {
			b.log.Warn("observation not written", "tick", env.Tick, "error", err)
			b.obsDropped.Add(1)
			return
		}
		select {
		case b.queue <- append(line, '\n'):
		default:
			n := b.obsDropped.Add(1)
			lvl := hclog.Debug
			if !b.droppedLogged.Swap(true) {
				lvl = hclog.Warn // the first drop only: the count is in Stats
			}
			b.log.Log(lvl, "stdin full: observation dropped (the agent does not read its stdin fast enough)", "tick", env.Tick, "dropped", n)
			b.file.Named("stdio").Warn("observation dropped: stdin full", "tick", env.Tick, "dropped", n)
		}
	case bus.KindStop, bus.KindEnd:
		b.log.Debug("stopping the agent", "kind", env.Kind, "tick", env.Tick)
		b.stop(env.Tick)
	default:
		b.log.Trace("ignored message", "kind", env.Kind, "subject", m.Subject)
	}
}

// stop makes the writer write the stop line (with tick) and close stdin.
func (b *StdioBridge) stop(tick uint64) {
	b.stopOnce.Do(func() {
		b.stopTick.Store(tick)
		close(b.stopping)
	})
}

// write is the only writer of the child's stdin. It may block in a write
// for as long as the child does not read; closing stdin (the end of Run, or
// the process's exit) unblocks it.
func (b *StdioBridge) write() {
	defer b.p.closeStdin()
	for {
		select {
		case <-b.quit:
			return
		case <-b.stopping:
			t := b.stopTick.Load()
			line, _ := json.Marshal(hostLine{Type: StdioStop, Tick: &t})
			if err := b.writeLine(append(line, '\n')); err != nil {
				b.log.Debug("stop line not written", "error", err)
			}
			return
		case line := <-b.queue:
			if err := b.writeLine(line); err != nil {
				// The child closed its stdin or exited; what follows is dropped.
				b.log.Debug("stdin closed", "error", err)
				b.drainQueue()
				return
			}
		}
	}
}

func (b *StdioBridge) writeLine(line []byte) error {
	_, err := b.p.stdin.Write(line)
	return err
}

// drainQueue counts the observations still queued as dropped, and keeps
// doing so for later ones until Run ends, so onMsg never blocks.
func (b *StdioBridge) drainQueue() {
	for {
		select {
		case <-b.quit:
			return
		case <-b.queue:
			b.obsDropped.Add(1)
		}
	}
}

// read splits the child's stdout into lines and handles them until the
// process has exited and its output is all read, or Run ends.
func (b *StdioBridge) read() {
	lw := newLineWriter(b.max, b.onLine)
	out := b.p.stdio.chunks
	for {
		select {
		case c := <-out:
			_, _ = lw.Write(c)
		case <-b.p.stdio.eof:
			// The output copier has finished: what it sent is buffered.
			for {
				select {
				case c := <-out:
					_, _ = lw.Write(c)
				default:
					_ = lw.Close()
					b.p.stdio.markDrained() // the process's log may now close
					return
				}
			}
		case <-b.quit:
			return
		}
	}
}

// onLine handles one stdout line; dropped > 0 means it was over the limit.
func (b *StdioBridge) onLine(line []byte, dropped int) {
	if dropped > 0 {
		n := b.longLines.Add(1)
		b.log.Warn("stdout line over the limit discarded", "bytes", len(line)+dropped, "max", b.max, "discarded_lines", n)
		b.file.Named("stdio").Warn("stdout line over the limit discarded", "bytes", len(line)+dropped, "max", b.max)
		return
	}
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	var cl childLine
	err := json.Unmarshal(line, &cl)
	switch {
	case err != nil:
		err = fmt.Errorf("not a protocol line: %w", err)
	case cl.Type == "":
		err = errors.New(`no "type"`)
	case cl.Type == StdioAct && cl.Tick == nil:
		err = errors.New(`act without "tick"`)
	}
	if err != nil {
		b.badLine(line, err)
		return
	}
	switch cl.Type {
	case StdioAct:
		if err := b.publish(bus.KindAct, *cl.Tick, cl.Data); err != nil {
			b.log.Warn("act not published", "tick", *cl.Tick, "error", err)
			b.file.Named("stdio").Warn("act not published", "tick", *cl.Tick, "error", err)
			return
		}
		b.acts.Add(1)
	default:
		b.log.Debug("stdout line of unknown type ignored", "type", cl.Type)
		b.file.Named("stdio").Info("line of unknown type ignored", "type", escapeLine([]byte(cl.Type)))
	}
}

// badLine logs a line that is not a protocol line, as the supervisor logs
// output lines (escaped, cut at MaxLineBytes), with the reason.
func (b *StdioBridge) badLine(line []byte, reason error) {
	b.badLines.Add(1)
	cut := 0
	if len(line) > MaxLineBytes {
		cut = len(line) - MaxLineBytes
		line = line[:MaxLineBytes]
	}
	args := []any{"stream", "stdout", "not_protocol", reason.Error()}
	if cut > 0 {
		args = append(args, "truncated_bytes", cut)
	}
	msg := escapeLine(line)
	b.file.Info(msg, args...)
	b.log.Debug(msg, args...)
}

// hostLine is a line from the host to the child.
type hostLine struct {
	Type     string          `json:"type"`
	V        int             `json:"v,omitempty"`
	Agent    string          `json:"agent,omitempty"`
	Run      string          `json:"run,omitempty"`
	Seed     *uint64         `json:"seed,omitempty"`
	Tick     *uint64         `json:"tick,omitempty"`
	Deadline *time.Time      `json:"deadline,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
}

// childLine is a line from the child; unknown fields are ignored.
type childLine struct {
	Type string          `json:"type"`
	Tick *uint64         `json:"tick"`
	Data json.RawMessage `json:"data"`
}

// stdioOut is a Spec.Stdio process's stdout: the exec copier writes chunks
// that the bridge reads. Once released (the bridge ended, or none read in
// time after the process exited) chunks go to fallback, the supervisor's
// usual line logging, so the copier never blocks for long.
//
// At the end the supervisor closes eof (the copier is done), and, if a
// bridge has claimed the process, waits for drained before it closes the
// agent's log and Done: so the bridge's last lines are logged and its last
// acts published before Done. The bridge marks drained when its reader has
// handled everything, or when it ends early.
type stdioOut struct {
	chunks      chan []byte
	gone        chan struct{}
	goneOnce    sync.Once
	eof         chan struct{} // closed by the supervisor once Cmd.Wait returned
	drained     chan struct{}
	drainedOnce sync.Once
	fallback    *lineWriter // used only by the copier goroutine
	claimed     atomic.Bool // a bridge has started Run
}

func newStdioOut(fallback *lineWriter) *stdioOut {
	return &stdioOut{
		chunks:   make(chan []byte, stdioChunks),
		gone:     make(chan struct{}),
		eof:      make(chan struct{}),
		drained:  make(chan struct{}),
		fallback: fallback,
	}
}

// finish is called by the supervisor once Cmd.Wait has returned: it waits
// for a bridge that has claimed the process to handle the last output.
func (w *stdioOut) finish() {
	w.release() // the copier is done: nothing more is sent
	close(w.eof)
	if w.claimed.Load() {
		<-w.drained
	}
}

func (w *stdioOut) markDrained() { w.drainedOnce.Do(func() { close(w.drained) }) }

func (w *stdioOut) Write(p []byte) (int, error) {
	select {
	case <-w.gone:
		return w.fallback.Write(p)
	default:
	}
	select {
	case w.chunks <- bytes.Clone(p): // exec reuses its buffer
		return len(p), nil
	case <-w.gone:
		return w.fallback.Write(p)
	}
}

// release makes Write stop waiting for the bridge.
func (w *stdioOut) release() { w.goneOnce.Do(func() { close(w.gone) }) }
