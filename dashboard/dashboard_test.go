package dashboard_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/dashboard"
	"github.com/terrarium-sim/terrarium/dashboard/dashboardtest"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/internal/leaktest"
	"github.com/terrarium-sim/terrarium/world"
)

// rec makes an event record.
func rec(seq uint64, kind string, tick world.Tick, agent world.AgentID, data string) events.Record {
	if data == "" {
		data = "{}"
	}
	return events.Record{V: 1, Seq: seq, Time: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC), Run: "r1", Kind: kind, Tick: tick, Agent: agent, Data: json.RawMessage(data)}
}

// controller records the actions it was asked for.
type controller struct {
	mu      sync.Mutex
	actions []string
	err     error
}

func (c *controller) Control(a string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.actions = append(c.actions, a)
	return c.err
}

func (c *controller) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.actions...)
}

func newServer(t *testing.T, cfg dashboard.Config) *dashboard.Server {
	t.Helper()
	leaktest.Goroutines(t)
	s, err := dashboard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		http.DefaultClient.CloseIdleConnections()
	})
	return s
}

// The model follows the run's events: roster, last actions, leases,
// violations, status, recent lines.
func TestSnapshotFollowsEvents(t *testing.T) {
	s := newServer(t, dashboard.Config{})
	for _, r := range []events.Record{
		rec(1, "run.started", 0, "", `{"scenario":"sc","world":"grid","stepping":"lockstep","ticks":10,"seed":7,"agents":2}`),
		rec(2, "agent.spawned", 0, "b-1", `{"pid":200,"group":"b"}`),
		rec(3, "agent.spawned", 0, "a-1", `{"pid":100,"group":"a"}`),
		rec(4, "agent.ready", 0, "a-1", ""),
		rec(5, "agent.ready", 0, "b-1", ""),
		rec(6, "tick.closed", 1, "", `{"actions":[{"agent":"a-1","data":{"move":"<img src=x>"}},{"agent":"b-1","data":0,"filled":"default"}],"hash":"h1","wall_us":900}`),
		rec(7, "lease.granted", 1, "a-1", `{"path":"plan.md","prefix":false,"token":1}`),
		rec(8, "lease.granted", 1, "b-1", `{"path":"dir","prefix":true,"token":2}`),
		rec(9, "lease.released", 1, "a-1", `{"path":"plan.md","token":1}`),
		rec(10, "violation", 1, "b-1", `{"path":"plan.md","reason":"changed without a lease"}`),
		rec(11, "run.paused", 1, "", ""),
		rec(12, "agent.exited", 1, "b-1", `{"pid":200,"code":-1,"signal":"killed","during_run":true}`),
	} {
		s.Apply(r)
	}
	got := dashboardtest.State(t, s.Info().URL)
	if got.Run != "r1" || got.Scenario != "sc" || got.World != "grid" || got.Ticks != 10 || got.Seed != 7 || got.Tick != 1 || got.WallUS != 900 {
		t.Errorf("header: %+v", got)
	}
	if got.Status != "paused" || got.Seq != 12 || got.Source != dashboard.SourceLive || got.Controls {
		t.Errorf("status %q seq %d source %q controls %v", got.Status, got.Seq, got.Source, got.Controls)
	}
	if len(got.Agents) != 2 || got.AgentsTotal != 2 {
		t.Fatalf("roster: %+v", got.Agents)
	}
	a, b := got.Agents[0], got.Agents[1] // sorted by id
	if a.ID != "a-1" || a.Group != "a" || a.State != "ready" || a.Pid != 100 || a.Actions != 1 || a.Missing != 0 || a.Last != `{"move":"<img src=x>"}` || a.LastTick != 1 || a.Filled {
		t.Errorf("a-1: %+v", a)
	}
	if b.ID != "b-1" || b.State != "exited" || b.Note != "killed by killed" || b.Actions != 0 || b.Missing != 1 || !b.Filled {
		t.Errorf("b-1: %+v", b)
	}
	if len(got.Leases) != 1 || got.Leases[0].Path != "dir" || !got.Leases[0].Prefix || got.Leases[0].Agent != "b-1" || got.Leases[0].Token != 2 {
		t.Errorf("leases: %+v", got.Leases)
	}
	if got.ViolationsTotal != 1 || len(got.Violations) != 1 || got.Violations[0].What != "plan.md" || got.Violations[0].Agent != "b-1" {
		t.Errorf("violations: %+v", got.Violations)
	}
	if len(got.Recent) != 11 || !strings.Contains(got.Recent[0], "agent.exited b-1") {
		t.Errorf("recent (newest first, no tick.closed): %q", got.Recent)
	}
	for _, l := range got.Recent {
		if strings.Contains(l, "tick.closed") {
			t.Errorf("tick.closed in recent: %q", l)
		}
	}
	s.Apply(rec(13, "run.unpaused", 1, "", `{"paused_ms":5}`))
	s.Apply(rec(14, "run.finished", 1, "", `{"status":"interrupted","ticks":1}`))
	if got := dashboardtest.State(t, s.Info().URL); got.Status != "interrupted" {
		t.Errorf("status after run.finished: %q", got.Status)
	}
}

// The metric series keeps at most 1000 points, always ends at the newest
// tick and stays in tick order; views are kept with their tick.
func TestSeriesThinsAndKeepsTheNewest(t *testing.T) {
	s := newServer(t, dashboard.Config{})
	const n = 5003
	for tk := world.Tick(1); tk <= n; tk++ {
		f := dashboard.Frame{Tick: tk, Metrics: map[string]float64{"x": float64(tk), "y": -float64(tk)}}
		if tk == 4000 {
			f.View = &world.View{Lines: []string{"hello"}}
		}
		s.Frame(f)
	}
	got := dashboardtest.State(t, s.Info().URL).Series
	if len(got.Ticks) > 1000 || len(got.Ticks) < 500 {
		t.Fatalf("%d points, want 500-1000", len(got.Ticks))
	}
	if got.Ticks[0] != 1 || got.Ticks[len(got.Ticks)-1] != n {
		t.Errorf("series from t%d to t%d, want t1 to t%d", got.Ticks[0], got.Ticks[len(got.Ticks)-1], n)
	}
	for i := range got.Ticks {
		if i > 0 && got.Ticks[i] <= got.Ticks[i-1] {
			t.Fatalf("ticks out of order at %d: %v", i, got.Ticks[i-1:i+1])
		}
		if got.Values["x"][i] != float64(got.Ticks[i]) || got.Values["y"][i] != -float64(got.Ticks[i]) {
			t.Fatalf("point %d: tick %d x %v y %v", i, got.Ticks[i], got.Values["x"][i], got.Values["y"][i])
		}
	}
	if strings.Join(got.Names, ",") != "x,y" {
		t.Errorf("names %v", got.Names)
	}
	snap := dashboardtest.State(t, s.Info().URL)
	if snap.ViewTick != 4000 || string(snap.View) != `{"lines":["hello"]}` {
		t.Errorf("view at %d: %s", snap.ViewTick, snap.View)
	}
}

// The controls need the token in a header of a POST; anything else is
// refused before the controller hears of it.
func TestControlNeedsTheToken(t *testing.T) {
	c := &controller{}
	s := newServer(t, dashboard.Config{Control: c})
	tok := s.Info().Token
	if len(tok) != 32 {
		t.Fatalf("token %q: want 128 random bits in hex", tok)
	}
	for _, tc := range []struct {
		token, body string
		code        int
		says        string
	}{
		{"", `{"action":"pause"}`, 403, "token"},
		{"wrong", `{"action":"pause"}`, 403, "token"},
		{tok[:31], `{"action":"pause"}`, 403, "token"},
		{tok, `not json`, 400, "JSON"},
		{tok, `{"action":"explode"}`, 400, "unknown action"},
		{tok, `{"action":"pause"}`, 200, `"ok":true`},
		{tok, `{"action":"step"}`, 200, `"ok":true`},
		{tok, `{"action":"resume"}`, 200, `"ok":true`},
	} {
		code, body := dashboardtest.Post(t, s.Info().URL, tc.token, tc.body)
		if code != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("token %q body %s: %d %s, want %d with %q", tc.token, tc.body, code, body, tc.code, tc.says)
		}
	}
	if got := strings.Join(c.got(), ","); got != "pause,step,resume" {
		t.Errorf("controller got %q, want pause,step,resume", got)
	}
	// A bearer token works too; a GET is not a control.
	req, _ := http.NewRequest(http.MethodPost, s.Info().URL+"api/control", strings.NewReader(`{"action":"pause"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Errorf("bearer token: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	if res, err := http.Get(s.Info().URL + "api/control?action=pause&token=" + tok); err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET control: %v %v, want 405", res, err)
	} else {
		res.Body.Close()
	}
	// The controller's refusal reaches the page.
	c.err = errors.New("the run has ended")
	if code, body := dashboardtest.Post(t, s.Info().URL, tok, `{"action":"pause"}`); code != 409 || !strings.Contains(body, "the run has ended") {
		t.Errorf("refused control: %d %s", code, body)
	}
	// Without a controller: 409, never a silent success.
	s2 := newServer(t, dashboard.Config{})
	if code, body := dashboardtest.Post(t, s2.Info().URL, s2.Info().Token, `{"action":"pause"}`); code != 409 || !strings.Contains(body, dashboard.ErrNoControl.Error()) {
		t.Errorf("no controller: %d %s", code, body)
	}
}

// The page and its assets are served from the binary, with headers that
// keep anything else out.
func TestServesThePage(t *testing.T) {
	s := newServer(t, dashboard.Config{})
	for path, want := range map[string]string{"": "<title>Terrarium dashboard</title>", "app.js": "EventSource", "app.css": "--accent"} {
		res, err := http.Get(s.Info().URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("/%s: %d, no %q", path, res.StatusCode, want)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("/%s: CSP %q", path, csp)
		}
		if res.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("/%s: framing allowed", path)
		}
	}
}

// A page gets the current state at once, then the changes, at most Rate
// times a second; Close sends the last state, then the end.
func TestStreamSendsStateThenEnd(t *testing.T) {
	s := newServer(t, dashboard.Config{Rate: 50})
	s.Apply(rec(1, "run.started", 0, "", `{"scenario":"sc","ticks":3}`))
	st := dashboardtest.OpenStream(t, s.Info().URL)
	first := st.First(t)
	if first.Seq != 1 || first.Scenario != "sc" {
		t.Fatalf("first snapshot %+v", first)
	}
	if !s.WantsView() {
		t.Error("WantsView is false with a page watching and no view sent yet")
	}
	for tk := world.Tick(1); tk <= 3; tk++ {
		s.Apply(rec(uint64(tk)+1, "tick.closed", tk, "", `{"actions":[],"hash":"h"}`))
		s.Frame(dashboard.Frame{Tick: tk, Metrics: map[string]float64{"m": float64(tk)}, View: &world.View{Lines: []string{fmt.Sprint(tk)}}})
	}
	s.Apply(rec(5, "run.finished", 3, "", `{"status":"finished","ticks":3}`))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	last, n := st.Wait(t)
	if last.Seq != 5 || last.Status != "finished" || last.Tick != 3 || last.ViewTick != 3 || len(last.Series.Ticks) != 3 {
		t.Errorf("last snapshot before the end: seq %d status %q tick %d view %d points %d", last.Seq, last.Status, last.Tick, last.ViewTick, len(last.Series.Ticks))
	}
	if n < 2 {
		t.Errorf("%d snapshots, want the first and at least the last", n)
	}
}

// Nobody watching: no view is asked for (drawing the world costs); a
// script polling /api/state counts as watching.
func TestNoViewWithoutPages(t *testing.T) {
	s := newServer(t, dashboard.Config{})
	if s.WantsView() {
		t.Error("WantsView with no page")
	}
	dashboardtest.State(t, s.Info().URL)
	if !s.WantsView() {
		t.Error("WantsView false right after a GET /api/state")
	}
}
