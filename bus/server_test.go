package bus_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/bus/bustest"
)

const run = "r1"

// rig is a started server with a violation recorder and a host connection.
type rig struct {
	s    *bus.Server
	viol *bustest.Violations
	host *nats.Conn
}

func newRig(t *testing.T) *rig {
	t.Helper()
	viol := &bustest.Violations{}
	s := bustest.Start(t, bus.Options{Run: run, OnViolation: viol.Record})
	host, err := s.Connect("host")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(host.Close)
	return &rig{s: s, viol: viol, host: host}
}

// agent registers id and connects it over TCP as an agent process would.
func (r *rig) agent(t *testing.T, id string) *nats.Conn {
	t.Helper()
	c, err := r.s.AddAgent(id)
	if err != nil {
		t.Fatal(err)
	}
	return connectAgent(t, r.s, c)
}

func connectAgent(t *testing.T, s *bus.Server, c bus.Credentials) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(),
		nats.Name("agent "+c.User),
		nats.UserInfo(c.User, c.Password),
		nats.CustomInboxPrefix(c.InboxPrefix),
		nats.NoReconnect(),
		// Refusals are checked on the server side; keep nats.go's default
		// handler from printing them.
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
	)
	if err != nil {
		t.Fatalf("connect agent %s: %v", c.User, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func subSync(t *testing.T, nc *nats.Conn, subject string) *nats.Subscription {
	t.Helper()
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatalf("subscribe %s: %v", subject, err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	return sub
}

func publish(t *testing.T, nc *nats.Conn, subject, data string) {
	t.Helper()
	if err := nc.Publish(subject, []byte(data)); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
}

func next(t *testing.T, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	m, err := sub.NextMsg(bustest.Timeout)
	if err != nil {
		t.Fatalf("next message on %s: %v", sub.Subject, err)
	}
	return m
}

func TestAgentPublishReachesHost(t *testing.T) {
	bustest.CheckGoroutines(t)
	r := newRig(t)
	sub := subSync(t, r.host, bus.AllAgents(run, bus.KindAct))
	a := r.agent(t, "A")

	publish(t, a, bus.AgentSubject(run, "A", bus.KindAct), "hi")
	m := next(t, sub)
	if m.Subject != bus.AgentSubject(run, "A", bus.KindAct) || string(m.Data) != "hi" {
		t.Fatalf("got %s %q", m.Subject, m.Data)
	}
	if v := r.viol.All(); len(v) != 0 {
		t.Fatalf("unexpected violations: %+v", v)
	}
}

func TestAgentCannotPublishAsAnother(t *testing.T) {
	bustest.CheckGoroutines(t)
	r := newRig(t)
	sub := subSync(t, r.host, bus.AllAgents(run, bus.KindAct))
	a := r.agent(t, "A")
	r.agent(t, "B")

	publish(t, a, bus.AgentSubject(run, "A", bus.KindAct), "first")
	publish(t, a, bus.AgentSubject(run, "B", bus.KindAct), "forged")
	publish(t, a, bus.AgentSubject(run, "A", bus.KindAct), "last")
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	// The server handles one connection's messages in order: "last"
	// arriving after "first" with nothing between proves "forged" was dropped.
	for _, want := range []string{"first", "last"} {
		m := next(t, sub)
		if m.Subject != bus.AgentSubject(run, "A", bus.KindAct) || string(m.Data) != want {
			t.Fatalf("got %s %q, want %q from A", m.Subject, m.Data, want)
		}
	}

	v := r.viol.Wait(t, bus.Violation{Agent: "A", User: "A", Op: bus.OpPublish, Subject: bus.AgentSubject(run, "B", bus.KindAct)})
	if !strings.Contains(v.Reason, "Publish Violation") {
		t.Errorf("reason %q", v.Reason)
	}
	for _, v := range r.viol.All() {
		if v.Agent != "A" || v.User != "A" {
			t.Errorf("violation attributed to agent %q, user %q: %+v", v.Agent, v.User, v)
		}
	}
}

func TestAgentCannotReadAnothersObservations(t *testing.T) {
	bustest.CheckGoroutines(t)
	r := newRig(t)
	a := r.agent(t, "A")
	b := r.agent(t, "B")

	spy, err := a.SubscribeSync(bus.ToSubject(run, "B", bus.KindObs))
	if err != nil {
		t.Fatal(err)
	}
	r.viol.Wait(t, bus.Violation{Agent: "A", User: "A", Op: bus.OpSubscribe, Subject: bus.ToSubject(run, "B", bus.KindObs)})

	own := subSync(t, a, bus.ToSubject(run, "A", bus.KindObs))
	bObs := subSync(t, b, bus.ToSubject(run, "B", bus.KindObs))

	publish(t, r.host, bus.ToSubject(run, "B", bus.KindObs), "for B")
	publish(t, r.host, bus.ToSubject(run, "A", bus.KindObs), "for A")
	if err := r.host.Flush(); err != nil {
		t.Fatal(err)
	}
	if m := next(t, bObs); string(m.Data) != "for B" {
		t.Fatalf("B got %q", m.Data)
	}
	// A's own message was sent after B's: once A has it, B's would have
	// arrived on the spy subscription before it.
	if m := next(t, own); string(m.Data) != "for A" {
		t.Fatalf("A got %q", m.Data)
	}
	if n, _, err := spy.Pending(); err == nil && n != 0 {
		t.Fatalf("A read %d message(s) addressed to B", n)
	}
}

func TestAgentCannotReadOtherInboxesOrWildcards(t *testing.T) {
	bustest.CheckGoroutines(t)
	r := newRig(t)
	a := r.agent(t, "A")
	for _, subject := range []string{"_INBOX.>", bus.InboxPrefix(run, "B") + ".>", bus.Root(run) + ".>", bus.AllAgents(run, bus.KindAct), "$SYS.>"} {
		if _, err := a.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		r.viol.Wait(t, bus.Violation{Agent: "A", User: "A", Op: bus.OpSubscribe, Subject: subject})
	}
	// Allowed ones raise nothing.
	for _, subject := range []string{bus.WorldPrefix(run), bus.ToPrefix(run, "A"), bus.InboxPrefix(run, "A") + ".x"} {
		subSync(t, a, subject)
	}
	n := len(r.viol.All())
	// A round trip after the allowed subscriptions: their errors, had
	// there been any, arrived before the PONG.
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := a.LastError(); err != nil && !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatal(err)
	}
	if got := len(r.viol.All()); got != n {
		t.Fatalf("allowed subscriptions reported violations: %+v", r.viol.All()[n:])
	}
}

func TestHelloRequestReply(t *testing.T) {
	bustest.CheckGoroutines(t)
	r := newRig(t)
	hello, err := r.host.Subscribe(bus.AllAgents(run, bus.KindHello), func(m *nats.Msg) {
		id, _, _ := bus.AgentFromSubject(run, m.Subject)
		_ = m.Respond([]byte("welcome " + id))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hello.Unsubscribe() })
	if err := r.host.Flush(); err != nil {
		t.Fatal(err)
	}

	a := r.agent(t, "A")
	m, err := a.Request(bus.AgentSubject(run, "A", bus.KindHello), []byte("hello"), bustest.Timeout)
	if err != nil {
		t.Fatalf("hello request: %v", err)
	}
	if string(m.Data) != "welcome A" {
		t.Fatalf("reply %q", m.Data)
	}
	if !strings.HasPrefix(m.Subject, bus.InboxPrefix(run, "A")+".") {
		t.Fatalf("reply on %s, want under %s", m.Subject, bus.InboxPrefix(run, "A"))
	}
	if v := r.viol.All(); len(v) != 0 {
		t.Fatalf("unexpected violations: %+v", v)
	}
}

func TestAgentHasNoJetStream(t *testing.T) {
	bustest.CheckGoroutines(t)
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), bustest.Timeout)
	defer cancel()

	hjs, err := jetstream.New(r.host)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hjs.CreateStream(ctx, jetstream.StreamConfig{Name: "events", Subjects: []string{bus.EventPrefix(run)}}); err != nil {
		t.Fatalf("host create stream: %v", err)
	}

	a := r.agent(t, "A")
	ajs, err := jetstream.New(a)
	if err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	if _, err := ajs.AccountInfo(short); err == nil {
		t.Fatal("agent reached the JetStream API")
	}
	r.viol.Wait(t, bus.Violation{Agent: "A", User: "A", Op: bus.OpPublish, Subject: "$JS.API.INFO"})
}

func TestLoginRefusals(t *testing.T) {
	bustest.CheckGoroutines(t)
	r := newRig(t)
	good, err := r.s.AddAgent("A")
	if err != nil {
		t.Fatal(err)
	}
	hostLike := bus.Credentials{User: "terrarium.host", Password: "guess", InboxPrefix: "_INBOX.x"}
	// A failed login proved nothing: it names the user it presented and
	// blames no agent, even when that user is a registered agent's id.
	tests := []struct {
		name   string
		creds  bus.Credentials
		reason string
	}{
		{"wrong password", bus.Credentials{User: "A", Password: good.Password + "x"}, "wrong password"},
		{"empty password", bus.Credentials{User: "A"}, "wrong password"},
		{"unknown user", bus.Credentials{User: "Z", Password: good.Password}, `unknown user "Z"`},
		{"no credentials", bus.Credentials{}, `unknown user ""`},
		{"host user", hostLike, "wrong password for the host user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(r.viol.All())
			_, err := nats.Connect(r.s.ClientURL(), nats.UserInfo(tt.creds.User, tt.creds.Password), nats.NoReconnect())
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("connect: %v, want authorization violation", err)
			}
			var got []bus.Violation
			bustest.Eventually(t, "auth violation", func() bool {
				got = r.viol.All()[before:]
				return len(got) > 0
			})
			want := bus.Violation{User: tt.creds.User, Op: bus.OpAuth, Reason: tt.reason}
			if got[0] != want {
				t.Fatalf("got %+v, want %+v", got[0], want)
			}
		})
	}
	// The good credentials still work, and the refused logins were each
	// reported once (not again from the server's own log line).
	connectAgent(t, r.s, good)
	if err := r.host.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := len(r.viol.All()); got != len(tests) {
		t.Fatalf("%d violations reported, want %d: %+v", got, len(tests), r.viol.All())
	}
}

// Logins the server refuses without the authenticator refusing them are
// reported from the server's own log line: by the user name it names, and
// never blamed on an agent, even one whose password was right.
func TestLoginRefusalsFromServerLog(t *testing.T) {
	bustest.CheckGoroutines(t)
	r := newRig(t)
	good, err := r.s.AddAgent("A")
	if err != nil {
		t.Fatal(err)
	}
	connect := func(user, pass, extra string) string {
		b, err := json.Marshal(map[string]any{"user": user, "pass": pass, "verbose": false, "pedantic": false})
		if err != nil {
			t.Fatal(err)
		}
		return "CONNECT " + strings.TrimSuffix(string(b), "}") + extra + "}\r\n"
	}
	tests := []struct {
		name     string
		send     string // raw protocol after the server's INFO
		wantUser string
	}{
		{"account named in CONNECT", connect(good.User, good.Password, `,"account":"other"`), "A"},
		{"new account in CONNECT", connect(good.User, good.Password, `,"new_account":true`), "A"},
		{"publish before CONNECT", "PUB " + bus.AgentSubject(run, "A", bus.KindAct) + " 1\r\nx\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(r.viol.All())
			if line := rawExchange(t, r.s, tt.send); !strings.Contains(line, "Authorization Violation") {
				t.Fatalf("server answered %q, want an authorization violation", line)
			}
			// The server logs the refusal before it sends -ERR: once the
			// client has the error, the report is queued.
			r.s.Settle()
			got := r.viol.All()[before:]
			if len(got) != 1 {
				t.Fatalf("%d violations reported, want 1: %+v", len(got), got)
			}
			if v := got[0]; v.Agent != "" || v.User != tt.wantUser || v.Op != bus.OpAuth || v.Subject != "" || v.Reason == "" {
				t.Fatalf("got %+v, want user %q, op auth, no agent", v, tt.wantUser)
			}
		})
	}
}

// rawExchange connects to s over TCP, reads the server's INFO, sends send
// and returns the first line the server answers with after it.
func rawExchange(t *testing.T, s *bus.Server, send string) string {
	t.Helper()
	u, err := url.Parse(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	// A deadline against a hung test, not a performance threshold.
	if err := conn.SetDeadline(time.Now().Add(bustest.Timeout)); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(conn)
	info, err := rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(info, "INFO ") {
		t.Fatalf("read INFO: %q, %v", info, err)
	}
	if _, err := io.WriteString(conn, send); err != nil {
		t.Fatalf("send: %v", err)
	}
	line, err := rd.ReadString('\n')
	if err != nil {
		t.Fatalf("read answer: %q, %v", line, err)
	}
	return strings.TrimSpace(line)
}

func TestRemoveAgent(t *testing.T) {
	bustest.CheckGoroutines(t)
	r := newRig(t)
	c, err := r.s.AddAgent("A")
	if err != nil {
		t.Fatal(err)
	}
	a := connectAgent(t, r.s, c)
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}

	r.s.RemoveAgent("A")
	bustest.Eventually(t, "A's connection closed", a.IsClosed)
	_, err = nats.Connect(r.s.ClientURL(), nats.UserInfo(c.User, c.Password), nats.NoReconnect())
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("login after RemoveAgent: %v, want authorization violation", err)
	}
	if v := r.viol.Wait(t, bus.Violation{User: "A", Op: bus.OpAuth}); v != (bus.Violation{User: "A", Op: bus.OpAuth, Reason: "agent removed"}) {
		t.Fatalf("login after RemoveAgent reported as %+v", v)
	}
	r.s.RemoveAgent("A")       // again: nothing
	r.s.RemoveAgent("unknown") // never added: nothing

	// Added again, it gets new credentials; the old ones stay refused.
	c2, err := r.s.AddAgent("A")
	if err != nil {
		t.Fatal(err)
	}
	if c2.Password == c.Password {
		t.Fatal("re-added agent got the same password")
	}
	if _, err := nats.Connect(r.s.ClientURL(), nats.UserInfo(c.User, c.Password), nats.NoReconnect()); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("old password after re-add: %v", err)
	}
	connectAgent(t, r.s, c2)
}

func TestAddAgent(t *testing.T) {
	bustest.CheckGoroutines(t)
	s := bustest.NewServer(t, run)
	c, err := s.AddAgent("trader-01_x")
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "trader-01_x" || c.InboxPrefix != bus.InboxPrefix(run, "trader-01_x") || len(c.Password) < 32 {
		t.Fatalf("credentials %+v", c)
	}
	tests := []struct {
		id   string
		want error
	}{
		{"", bus.ErrBadID},
		{"a.b", bus.ErrBadID},
		{"a*", bus.ErrBadID},
		{">", bus.ErrBadID},
		{"a b", bus.ErrBadID},
		{"terrarium.host", bus.ErrBadID},
		{"trader-01_x", bus.ErrAgentExists},
	}
	for _, tt := range tests {
		if _, err := s.AddAgent(tt.id); !errors.Is(err, tt.want) {
			t.Errorf("AddAgent(%q) = %v, want %v", tt.id, err, tt.want)
		}
	}
}

func TestStartRefusesBadOptions(t *testing.T) {
	dir := t.TempDir()
	log := bustest.Logger(t)
	tests := []struct {
		name string
		opts bus.Options
	}{
		{"no logger", bus.Options{Run: run, Dir: dir}},
		{"no dir", bus.Options{Run: run, Logger: log}},
		{"bad run", bus.Options{Run: "a.b", Dir: dir, Logger: log}},
		{"empty run", bus.Options{Dir: dir, Logger: log}},
		{"public host", bus.Options{Run: run, Dir: dir, Logger: log, Host: "0.0.0.0"}},
		{"unparsable host", bus.Options{Run: run, Dir: dir, Logger: log, Host: "example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := bus.Start(tt.opts)
			if err == nil {
				_ = s.Close()
				t.Fatal("Start succeeded")
			}
		})
	}
}

func TestCloseTwice(t *testing.T) {
	bustest.CheckGoroutines(t)
	viol := &bustest.Violations{}
	s, err := bus.Start(bus.Options{Run: run, Dir: t.TempDir(), Logger: bustest.Logger(t), OnViolation: viol.Record})
	if err != nil {
		t.Fatal(err)
	}
	host, err := s.Connect("host")
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.AddAgent("A")
	if err != nil {
		t.Fatal(err)
	}
	a := connectAgent(t, s, c)
	publish(t, a, bus.AgentSubject(run, "B", bus.KindAct), "forged")
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Close waited for the pending OnViolation calls.
	if v := viol.All(); len(v) != 1 || v[0].Agent != "A" {
		t.Fatalf("violations after Close: %+v", v)
	}
	bustest.Eventually(t, "clients see the server gone", func() bool { return host.IsClosed() || !host.IsConnected() })
	host.Close()
	a.Close()
	if _, err := s.Connect("late"); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Connect after Close: %v", err)
	}
	if _, err := s.AddAgent("B"); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("AddAgent after Close: %v", err)
	}
}

func TestViolationAttributedByConnectionNotName(t *testing.T) {
	bustest.CheckGoroutines(t)
	r := newRig(t)
	r.agent(t, "A")
	c, err := r.s.AddAgent("B")
	if err != nil {
		t.Fatal(err)
	}
	// B names its connection to look like A's log prefix.
	b, err := nats.Connect(r.s.ClientURL(),
		nats.Name(`x" - "$G/user:A" - cid:1 - %s`),
		nats.UserInfo(c.User, c.Password),
		nats.CustomInboxPrefix(c.InboxPrefix),
		nats.NoReconnect(),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	publish(t, b, bus.AgentSubject(run, "A", bus.KindAct), "forged")
	r.viol.Wait(t, bus.Violation{Op: bus.OpPublish, Subject: bus.AgentSubject(run, "A", bus.KindAct)})
	for _, v := range r.viol.All() {
		if v.Agent != "B" || v.User != "B" {
			t.Fatalf("violation attributed to agent %q, user %q, want B: %+v", v.Agent, v.User, v)
		}
	}
}

// Settle returns only after every violation reported so far reached
// OnViolation: a host may close its event log right after it.
func TestSettleHandsOverReportedViolations(t *testing.T) {
	bustest.CheckGoroutines(t)
	viol := &bustest.Violations{}
	// A slow consumer of violations, so that they are still queued when
	// Settle is called.
	s := bustest.Start(t, bus.Options{Run: run, OnViolation: func(v bus.Violation) {
		time.Sleep(2 * time.Millisecond)
		viol.Record(v)
	}})
	r := &rig{s: s, viol: viol}
	if _, err := r.s.AddAgent("A"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		// A refused login is reported by the server's auth check before the
		// client sees its error: after Connect returns, it has been reported.
		_, err := nats.Connect(r.s.ClientURL(), nats.UserInfo("A", "wrong"), nats.NoReconnect())
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("connect: %v, want authorization violation", err)
		}
	}
	r.s.Settle()
	if got := len(r.viol.All()); got != 50 {
		t.Fatalf("after Settle %d violations handed over, want 50", got)
	}
	_ = r.s.Close()
	r.s.Settle() // after Close: returns at once
}
