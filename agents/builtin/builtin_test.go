package builtin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/agenttest"
	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/bus"
)

func TestMain(m *testing.M) {
	Main() // the test binary is also the builtin agent binary
	os.Exit(m.Run())
}

func init() {
	Register("test.echo", Respond(func(_ context.Context, o sdk.Observation) (any, error) {
		return o.Data, nil
	}))
	Register("test.fail", func(context.Context, *sdk.Agent) error { return errors.New("deliberate failure") })
}

const run = "r1"

// rig is a real embedded NATS server, a host connection answering hellos,
// and a supervisor to start the test binary as a builtin agent.
type rig struct {
	t      *testing.T
	srv    *server.Server
	nc     *nats.Conn
	sup    *agents.Supervisor
	leaks  *agenttest.ProcessLeaks
	dir    string
	hellos chan string
	acts   chan bus.Envelope
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, leaks: agenttest.NoProcessLeaks(t), dir: t.TempDir(),
		hellos: make(chan string, 10), acts: make(chan bus.Envelope, 10)}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	r.srv = srv
	if r.nc, err = nats.Connect(srv.ClientURL()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.nc.Close)
	if _, err := r.nc.Subscribe(bus.AllAgents(run, bus.KindHello), func(m *nats.Msg) {
		id, _, _ := bus.AgentFromSubject(run, m.Subject)
		b, _ := bus.Encode(bus.Envelope{Kind: bus.KindHello, Run: run, Agent: id})
		_ = m.Respond(b)
		r.hellos <- id
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.nc.Subscribe(bus.AllAgents(run, bus.KindAct), func(m *nats.Msg) {
		if e, err := bus.Decode(m.Data, run); err == nil {
			r.acts <- e
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	r.sup = agenttest.Supervisor(t, agents.Config{StopGrace: 10 * time.Second})
	return r
}

// start runs exe as builtin program name under agent id.
func (r *rig) start(exe, id, program string) (*agents.Process, string) {
	r.t.Helper()
	ws := filepath.Join(r.dir, id)
	if err := os.MkdirAll(ws, 0o755); err != nil {
		r.t.Fatal(err)
	}
	logPath := filepath.Join(r.dir, id+".log")
	env := agents.BuildEnv(nil, nil, map[string]string{
		agents.EnvBuiltin:   program,
		agents.EnvNATSURL:   r.srv.ClientURL(),
		agents.EnvRun:       run,
		agents.EnvAgentID:   id,
		agents.EnvWorkspace: ws,
		"GORACE":            "atexit_sleep_ms=0",
	})
	p, err := r.sup.Start(agents.Spec{ID: id, Path: exe, Env: env, Dir: ws, LogPath: logPath})
	if err != nil {
		r.t.Fatal(err)
	}
	r.leaks.Watch(p.Pid())
	return p, logPath
}

func (r *rig) send(subject, kind string, tick uint64, data string) {
	r.t.Helper()
	e := bus.Envelope{Kind: kind, Run: run, Tick: tick, Seq: tick + 1}
	if data != "" {
		e.Data = json.RawMessage(data)
	}
	b, err := bus.Encode(e)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.nc.Publish(subject, b); err != nil {
		r.t.Fatal(err)
	}
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

func exe(t *testing.T) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMainRunsProgramUntilStop(t *testing.T) {
	r := newRig(t)
	p, _ := r.start(exe(t), "echo", "test.echo")
	if id := wait(t, r.hellos, "hello"); id != "echo" {
		t.Fatalf("hello from %q", id)
	}
	r.send(bus.ToSubject(run, "echo", bus.KindObs), bus.KindObs, 1, `{"x":1}`)
	act := wait(t, r.acts, "act")
	if act.Tick != 1 || act.Agent != "echo" || string(act.Data) != `{"x":1}` {
		t.Errorf("act = %+v (%s)", act, act.Data)
	}
	r.send(bus.ToSubject(run, "echo", bus.KindStop), bus.KindStop, 0, "")
	wait(t, p.Done(), "exit")
	if st := p.Exit(); !st.Clean() {
		t.Errorf("exit = %v, want clean", st)
	}
}

func TestMainExitsCleanlyOnSIGTERM(t *testing.T) {
	r := newRig(t)
	p, _ := r.start(exe(t), "echo", "test.echo")
	wait(t, r.hellos, "hello")
	if err := p.Terminate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := p.Exit(); !st.Clean() {
		t.Errorf("exit after SIGTERM = %v, want clean", st)
	}
}

func TestMainFailures(t *testing.T) {
	r := newRig(t)
	for _, tt := range []struct{ program, want string }{
		{"no-such-program", `unknown program "no-such-program" (known: `},
		{"test.fail", "deliberate failure"},
	} {
		t.Run(tt.program, func(t *testing.T) {
			p, logPath := r.start(exe(t), "fail", tt.program)
			wait(t, p.Done(), "exit")
			if st := p.Exit(); st.Code != 1 {
				t.Errorf("exit = %v, want code 1", st)
			}
			b, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(tt.want)) || !bytes.Contains(b, []byte("stream=stderr")) {
				t.Errorf("log does not have %q on stderr:\n%s", tt.want, b)
			}
		})
	}
}

func TestCopyExecutable(t *testing.T) {
	r := newRig(t)
	dst := filepath.Join(r.dir, "bin", "terrarium")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, []byte("old"), 0o644); err != nil { // replaced, not appended to
		t.Fatal(err)
	}
	got, err := CopyExecutable(dst)
	if err != nil || got != dst {
		t.Fatalf("CopyExecutable = %q, %v", got, err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want 0755", fi.Mode().Perm())
	}
	want, _ := os.ReadFile(exe(t))
	have, _ := os.ReadFile(dst)
	if !bytes.Equal(want, have) {
		t.Error("copy differs from the executable")
	}
	ents, _ := os.ReadDir(filepath.Dir(dst))
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}

	// The copy is a working builtin runtime.
	p, _ := r.start(dst, "copy", "test.echo")
	wait(t, r.hellos, "hello from the copy")
	r.send(bus.WorldSubject(run, bus.KindEnd), bus.KindEnd, 0, "")
	wait(t, p.Done(), "exit")
	if st := p.Exit(); !st.Clean() {
		t.Errorf("copy exit = %v, want clean", st)
	}

	if _, err := CopyExecutable(filepath.Join(r.dir, "missing-dir", "x")); err == nil || !strings.Contains(err.Error(), "missing-dir") {
		t.Errorf("CopyExecutable into a missing directory = %v", err)
	}
}
