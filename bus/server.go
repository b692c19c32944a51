package bus

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Errors callers may branch on with errors.Is.
var (
	ErrClosed      = errors.New("bus server closed")
	ErrBadID       = errors.New("invalid id")
	ErrAgentExists = errors.New("agent already registered")
)

// idPattern is what run ids and agent ids must match (the same rule as
// world.IDPattern): one subject token, no wildcards, no dots.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// readyTimeout bounds how long Start waits for the server to accept connections.
const readyTimeout = 10 * time.Second

// violationQueue is how many violations may wait for OnViolation before
// further ones are dropped (and counted) rather than block the server.
const violationQueue = 1024

// Options configure Start.
type Options struct {
	Run    string       // run id; subjects are sim.<run>.…
	Dir    string       // JetStream store dir (inside the run directory), required
	Host   string       // default "127.0.0.1" (loopback only)
	Port   int          // 0 = random free port
	Logger hclog.Logger // required: server logs go here (Named("nats"))
	// Websocket, if set, is the HOST:PORT of a websocket listener for
	// browsers (port 0: a random one; loopback only, no TLS).
	Websocket string
	// OnViolation is called, one call at a time and never on a server
	// goroutine, when an agent breaks its permissions or a login fails.
	// A slow OnViolation delays later reports, never the server; when more
	// than a thousand reports wait, further ones are dropped and counted
	// (Server.DroppedViolations).
	OnViolation func(Violation)
}

// Violation is a refusal the server reported.
//
// Agent names who is to blame, and is set only when the connection proved
// an agent's credentials: for OpPublish and OpSubscribe it is the agent the
// connection logged in as. For OpAuth it is always "": nobody logged in,
// and the user name a failed login presents proves nothing (anyone may
// type it), so it is in User and blames no one.
type Violation struct {
	Agent   string // the authenticated agent's id; "" for OpAuth (and if unknown)
	User    string // the user name presented: the client's for OpAuth ("" if none), else the agent's id
	Op      string // OpPublish | OpSubscribe | OpAuth
	Subject string // the subject refused ("" for OpAuth)
	Reason  string // the server's text
}

// Violation operations.
const (
	OpPublish   = "publish"
	OpSubscribe = "subscribe"
	OpAuth      = "auth"
)

// Server is the embedded NATS server of one run.
type Server struct {
	run    string
	log    hclog.Logger
	ns     *server.Server
	auth   *authenticator
	onViol func(Violation)

	violations chan Violation
	flush      chan chan struct{} // Settle's requests to dispatch
	dropped    atomic.Uint64
	quit       chan struct{} // closed by Close: the dispatcher drains and exits
	done       chan struct{} // closed when the dispatcher has exited

	closeOnce sync.Once
	closed    atomic.Bool
	ws        bool // a websocket listener was asked for
}

// Start starts the embedded nats-server and returns when it accepts
// connections. The caller must Close it.
func Start(opts Options) (*Server, error) {
	if opts.Logger == nil {
		return nil, errors.New("start bus: Options.Logger is required")
	}
	if !idPattern.MatchString(opts.Run) {
		return nil, fmt.Errorf("start bus: run %q: %w (want %s)", opts.Run, ErrBadID, idPattern)
	}
	if opts.Dir == "" {
		return nil, errors.New("start bus: Options.Dir (JetStream store) is required")
	}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	if err := checkLoopback(host); err != nil {
		return nil, fmt.Errorf("start bus: %w", err)
	}
	port := opts.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}

	auth, err := newAuthenticator(opts.Run)
	if err != nil {
		return nil, fmt.Errorf("start bus: %w", err)
	}
	log := opts.Logger.Named("nats")
	s := &Server{
		run:        opts.Run,
		log:        log,
		auth:       auth,
		onViol:     opts.OnViolation,
		violations: make(chan Violation, violationQueue),
		flush:      make(chan chan struct{}),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	auth.report = s.report

	sopts := &server.Options{
		ServerName: "terrarium-" + opts.Run,
		Host:       host,
		Port:       port,
		NoSigs:     true,
		// Only the client port listens: no HTTP monitoring, cluster,
		// gateway, leaf node, websocket or MQTT listener.
		HTTPPort:                   0,
		MaxPayload:                 MaxPayload,
		JetStream:                  true,
		StoreDir:                   opts.Dir,
		CustomClientAuthentication: auth,
		// MaxPending (64 MiB per connection), WriteDeadline (10 s),
		// MaxControlLine (4 KiB), ping interval (2 min) and MaxConn (64 Ki)
		// keep the server defaults: a client that stops reading is cut
		// off as a slow consumer instead of holding memory.
	}
	if opts.Websocket != "" {
		if sopts.Websocket, err = websocketOpts(opts.Websocket); err != nil {
			return nil, fmt.Errorf("start bus: %w", err)
		}
		s.ws = true
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("start bus: new nats server: %w", err)
	}
	s.ns = ns
	auth.ns = ns
	ns.SetLoggerV2(&natsLogger{log: log, s: s}, log.IsDebug(), log.IsTrace(), false)

	go s.dispatch()
	ns.Start()
	if !ns.ReadyForConnections(readyTimeout) {
		_ = s.Close()
		return nil, fmt.Errorf("start bus: nats server not ready for connections after %s", readyTimeout)
	}
	log.Debug("bus started", "url", ns.ClientURL(), "store", opts.Dir)
	return s, nil
}

// checkLoopback refuses hosts that are not a loopback address.
func checkLoopback(host string) error {
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("host %q: only loopback addresses are allowed", host)
	}
	return nil
}

// Run is the run id the server was started for.
func (s *Server) Run() string { return s.run }

// ClientURL is the URL agent processes connect to (nats://127.0.0.1:PORT).
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// NATS is the embedded server itself, for what this package does not wrap
// (monitoring structures such as Connz or Jsz). Do not Shutdown it; Close s.
func (s *Server) NATS() *server.Server { return s.ns }

// Connect opens the host's own in-process connection with full permissions
// (JetStream included). name is the connection name the server shows; o
// are applied after the defaults, so they may override them.
func (s *Server) Connect(name string, o ...nats.Option) (*nats.Conn, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("connect %s: %w", name, ErrClosed)
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.InProcessServer(s.ns),
		nats.UserInfo(s.auth.hostUser, s.auth.hostPass),
	}
	nc, err := nats.Connect("", append(opts, o...)...)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", name, err)
	}
	return nc, nil
}

// DroppedViolations counts violations not handed to OnViolation because
// too many were waiting.
func (s *Server) DroppedViolations() uint64 { return s.dropped.Load() }

// Close shuts the server down and waits for it and for the pending
// OnViolation calls. It is idempotent: a second call does nothing and
// returns nil.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		close(s.quit)
		<-s.done
		s.log.Debug("bus closed")
	})
	return nil
}

// Settle waits until every violation reported before the call has been
// handed to OnViolation (or dropped), so a host can close its event log
// knowing none is still on its way. It returns at once after Close.
func (s *Server) Settle() {
	ch := make(chan struct{})
	select {
	case s.flush <- ch:
		<-ch
	case <-s.done:
	}
}

// report queues v for OnViolation without blocking. It may be called on a
// server goroutine holding server locks.
func (s *Server) report(v Violation) {
	s.log.Warn("violation", "agent", v.Agent, "user", v.User, "op", v.Op, "subject", v.Subject, "reason", v.Reason)
	if s.onViol == nil {
		return
	}
	select {
	case s.violations <- v:
	default:
		s.dropped.Add(1)
	}
}

// dispatch calls OnViolation for queued violations until Close, then for
// the ones still queued.
func (s *Server) dispatch() {
	defer close(s.done)
	for {
		select {
		case v := <-s.violations:
			s.onViol(v)
		case ch := <-s.flush:
			for settled := false; !settled; {
				select {
				case v := <-s.violations:
					s.onViol(v)
				default:
					settled = true
				}
			}
			close(ch)
		case <-s.quit:
			for {
				select {
				case v := <-s.violations:
					s.onViol(v)
				default:
					return
				}
			}
		}
	}
}

// randomSecret returns n random bytes, hex encoded.
func randomSecret(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}
