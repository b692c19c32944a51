package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium/events"
)

//go:embed assets
var assets embed.FS

// Control actions (POST /api/control).
const (
	ActionPause  = "pause"
	ActionResume = "resume"
	ActionStep   = "step"
)

// Sources of a dashboard (Snapshot.Source).
const (
	SourceLive      = "live"
	SourceRecording = "recording"
)

// TokenHeader carries the control token of a POST /api/control.
const TokenHeader = "X-Terrarium-Token"

// DefaultRate is how many snapshots a second each page gets at most.
const DefaultRate = 10

// ErrNoControl is what Control answers when the run cannot be paused
// (a game's own loop steps it, or it has ended).
var ErrNoControl = errors.New("this run cannot be paused or stepped from here")

// Controller pauses, resumes and steps what the dashboard shows: the
// host's loop, or the playback of a recording.
type Controller interface {
	Control(action string) error
}

// Config configures a Server.
type Config struct {
	// Addr is where it listens (HOST:PORT; port 0 picks one). Default
	// 127.0.0.1:0.
	Addr string
	// Listener, if set, is used instead of listening on Addr (a caller
	// that checks the address early, before it makes anything else).
	Listener net.Listener
	// Token is the control token; default a random one (128 bits).
	Token string
	// Control, if set, serves pause, step and resume.
	Control Controller
	// Source is SourceLive (default) or SourceRecording.
	Source string
	// Rate is the most snapshots a second a page gets (default DefaultRate).
	Rate   float64
	Logger hclog.Logger
}

// Info is where a dashboard is and the token its controls need.
type Info struct {
	URL   string `json:"url"`   // http://HOST:PORT/
	Token string `json:"token"` // for POST /api/control (X-Terrarium-Token)
}

// Server serves the dashboard: the page, its assets, the run's state as
// JSON (/api/state), a stream of it as server-sent events (/api/stream),
// and the controls (/api/control, with the token).
//
// Apply and Frame feed it, from one goroutine; they never block on a
// page: each page gets the newest snapshot at most Rate times a second,
// and a page that reads slowly skips snapshots, never the state in them.
type Server struct {
	cfg  Config
	log  hclog.Logger
	ln   net.Listener
	http *http.Server
	url  string

	mu       sync.Mutex
	m        *model
	version  uint64    // bumped by every change
	lastView time.Time // when Frame last took a view
	lastPoll time.Time // when /api/state was last asked for
	clients  map[chan []byte]struct{}

	wake      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Listen listens on addr for a dashboard (New's Config.Listener).
func Listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w (choose another HOST:PORT; port 0 picks a free one)", err)
	}
	return ln, nil
}

// New listens on cfg.Addr (or takes cfg.Listener) and starts serving.
func New(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Source == "" {
		cfg.Source = SourceLive
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Token == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("dashboard token: %w", err)
		}
		cfg.Token = hex.EncodeToString(b[:])
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = Listen(cfg.Addr); err != nil {
			return nil, err
		}
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger.Named("dashboard"), ln: ln,
		m:       newModel(cfg.Source, cfg.Control != nil),
		clients: map[chan []byte]struct{}{},
		wake:    make(chan struct{}, 1), done: make(chan struct{}),
	}
	host := ln.Addr().String()
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		cfg.Logger.Named("dashboard").Warn("the dashboard listens beyond loopback: whoever reaches it can watch the run (its controls still need the token); it is plain HTTP", "addr", host)
		if tcp.IP.IsUnspecified() {
			host = net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
		}
	}
	s.url = "http://" + host + "/"
	static, _ := fs.Sub(assets, "assets")
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /api/state", s.serveState)
	mux.HandleFunc("GET /api/stream", s.serveStream)
	mux.HandleFunc("POST /api/control", s.serveControl)
	mux.HandleFunc("GET /api/control", s.serveControl) // refused: controls are POSTs
	s.http = &http.Server{Handler: secure(mux), ReadHeaderTimeout: 10 * time.Second, ErrorLog: s.log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "error", err)
		}
	}()
	go s.broadcast()
	s.log.Info("dashboard", "url", s.url)
	return s, nil
}

// secure sets the headers every answer carries: no framing, no sniffing,
// nothing loaded from elsewhere.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// Info returns the dashboard's URL and control token.
func (s *Server) Info() Info { return Info{URL: s.url, Token: s.cfg.Token} }

// Apply takes in one event of the run.
func (s *Server) Apply(r events.Record) {
	s.mu.Lock()
	s.m.apply(r)
	s.version++
	s.mu.Unlock()
	if r.Kind == events.RunFinished {
		s.poke() // the end goes out at once
	}
}

// SetStatus shows status as the run's until an event changes it (a
// recording's player: playing, paused).
func (s *Server) SetStatus(status string) {
	s.mu.Lock()
	s.m.snap.Status = status
	s.version++
	s.mu.Unlock()
	s.poke()
}

// pollWatch is how long a GET /api/state counts as someone watching: a
// script that polls the state gets the world's picture too.
const pollWatch = 5 * time.Second

// WantsView reports whether a page (or a poller) is watching and the last view is
// older than a snapshot interval: the run then puts a view in its next
// Frame (drawing the world costs, so it is not drawn for nobody).
func (s *Server) WantsView() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	watched := len(s.clients) > 0 || time.Since(s.lastPoll) < pollWatch
	return watched && time.Since(s.lastView) >= s.interval()
}

// Frame takes in a tick's metrics and, if f.View is set, the world's
// picture.
func (s *Server) Frame(f Frame) {
	var view json.RawMessage
	if f.View != nil {
		b, err := json.Marshal(f.View)
		if err != nil {
			s.log.Warn("the world's view cannot be encoded", "tick", f.Tick, "error", err)
		} else {
			view = b
		}
	}
	s.mu.Lock()
	s.m.frame(f, view)
	if f.View != nil {
		s.lastView = time.Now()
	}
	s.version++
	s.mu.Unlock()
}

func (s *Server) interval() time.Duration {
	return time.Duration(float64(time.Second) / s.cfg.Rate)
}

func (s *Server) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// broadcast sends the newest snapshot to every page, at most Rate times a
// second and only when something changed.
func (s *Server) broadcast() {
	defer s.wg.Done()
	tick := time.NewTicker(s.interval())
	defer tick.Stop()
	var sent uint64
	for {
		select {
		case <-s.done:
			return
		case <-tick.C:
		case <-s.wake:
		}
		s.mu.Lock()
		if s.version == sent || len(s.clients) == 0 {
			s.mu.Unlock()
			continue
		}
		b, err := s.m.snapshot()
		sent = s.version
		clients := make([]chan []byte, 0, len(s.clients))
		for c := range s.clients {
			clients = append(clients, c)
		}
		s.mu.Unlock()
		if err != nil {
			s.log.Error("encode snapshot", "error", err)
			continue
		}
		for _, c := range clients {
			offer(c, b)
		}
	}
}

// offer puts b in c, replacing a snapshot the page has not taken yet.
func offer(c chan []byte, b []byte) {
	for {
		select {
		case c <- b:
			return
		default:
		}
		select {
		case <-c:
		default:
		}
	}
}

func (s *Server) current() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.snapshot()
}

func (s *Server) serveState(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	s.lastPoll = time.Now()
	s.mu.Unlock()
	b, err := s.current()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// serveStream sends snapshots as server-sent events ("state"), the
// current one first.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	c := make(chan []byte, 1)
	s.mu.Lock()
	b, err := s.m.snapshot()
	s.clients[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.clients, c)
		s.mu.Unlock()
	}()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	send := func(b []byte) bool {
		if _, err := fmt.Fprintf(w, "event: state\ndata: %s\n\n", b); err != nil {
			return false
		}
		fl.Flush()
		return true
	}
	if _, err := io.WriteString(w, "retry: 1000\n\n"); err != nil || !send(b) {
		return
	}
	for {
		select {
		case b := <-c:
			if !send(b) {
				return
			}
		case <-r.Context().Done():
			return
		case <-s.done:
			// The last snapshot, if one is waiting, then the end.
			select {
			case b := <-c:
				send(b)
			default:
			}
			_, _ = io.WriteString(w, "event: end\ndata: {}\n\n")
			fl.Flush()
			return
		}
	}
}

type controlAnswer struct {
	OK     bool   `json:"ok"`
	Action string `json:"action,omitempty"`
	Error  string `json:"error,omitempty"`
}

// serveControl runs a control action for a request that carries the
// token: in the X-Terrarium-Token header (or Authorization: Bearer), never
// in the URL, so a link or a form on another site cannot send it.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	answer := func(code int, a controlAnswer) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(a)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		answer(http.StatusMethodNotAllowed, controlAnswer{Error: "controls take a POST with the token in the " + TokenHeader + " header"})
		return
	}
	token := r.Header.Get(TokenHeader)
	if token == "" {
		token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.Token)) != 1 {
		s.log.Warn("control refused: wrong or missing token", "remote", r.RemoteAddr)
		answer(http.StatusForbidden, controlAnswer{Error: "wrong or missing control token (the one printed at start, in the " + TokenHeader + " header)"})
		return
	}
	var req struct {
		Action string `json:"action"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		answer(http.StatusBadRequest, controlAnswer{Error: `want a JSON body {"action": "pause"|"resume"|"step"}: ` + err.Error()})
		return
	}
	switch req.Action {
	case ActionPause, ActionResume, ActionStep:
	default:
		answer(http.StatusBadRequest, controlAnswer{Error: fmt.Sprintf("unknown action %q: want pause, resume or step", req.Action)})
		return
	}
	if s.cfg.Control == nil {
		answer(http.StatusConflict, controlAnswer{Action: req.Action, Error: ErrNoControl.Error()})
		return
	}
	if err := s.cfg.Control.Control(req.Action); err != nil {
		answer(http.StatusConflict, controlAnswer{Action: req.Action, Error: err.Error()})
		return
	}
	s.log.Info("control", "action", req.Action, "remote", r.RemoteAddr)
	answer(http.StatusOK, controlAnswer{OK: true, Action: req.Action})
}

// Close sends every page the last state and stops serving. Safe to call
// more than once.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		// The last state goes out before the pages are told it ended.
		s.mu.Lock()
		b, serr := s.m.snapshot()
		clients := make([]chan []byte, 0, len(s.clients))
		for c := range s.clients {
			clients = append(clients, c)
		}
		s.mu.Unlock()
		if serr == nil {
			for _, c := range clients {
				offer(c, b)
			}
		}
		close(s.done)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err = s.http.Shutdown(ctx)
		if err != nil {
			_ = s.http.Close()
		}
		s.wg.Wait()
	})
	return err
}
