package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/dashboard"
	"github.com/terrarium-sim/terrarium/dashboard/dashboardtest"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/replay"
	"github.com/terrarium-sim/terrarium/world"
)

// terrarium ui plays a finished run back: the dashboard ends at the run's
// last tick with its status, every agent, every tick's metrics and the
// world's tables rebuilt from the recorded actions; pause and step act on
// the playback; Ctrl-C ends it with exit 0.
func TestUIPlaysARunBack(t *testing.T) {
	dir := t.TempDir()
	_, runDir, _ := runShortTournament(t, dir, 12)

	cmd := exec.Command(os.Args[0], "ui", "--speed", "0", "--addr", "127.0.0.1:0", runDir)
	cmd.Env = append(cmd.Environ(), "TERRARIUM_TEST_CLI=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		b := make([]byte, 64<<10)
		var acc string
		for {
			n, err := stderr.Read(b)
			acc += string(b[:n])
			for {
				i := strings.IndexByte(acc, '\n')
				if i < 0 {
					break
				}
				lines <- acc[:i]
				acc = acc[i+1:]
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	url := ""
	re := regexp.MustCompile(`^dashboard: (http://[^#]+)#token=([0-9a-f]+) `)
	for url == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("ui ended before printing its URL")
			}
			if m := re.FindStringSubmatch(l); m != nil {
				url = m[1]
			}
		case <-time.After(time.Minute):
			t.Fatal("no dashboard line")
		}
	}
	var s dashboard.Snapshot
	deadline := time.Now().Add(time.Minute)
	for {
		s = dashboardtest.State(t, url)
		if s.Status == "finished" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.Source != dashboard.SourceRecording || s.Tick != 12 || s.AgentsTotal != 2 || len(s.Series.Ticks) != 12 || s.ViewTick != 12 || !strings.Contains(string(s.View), "matches after round 12") {
		t.Errorf("played back: source %q status %q tick %d agents %d points %d view at %d %s", s.Source, s.Status, s.Tick, s.AgentsTotal, len(s.Series.Ticks), s.ViewTick, s.View)
	}
	for _, a := range s.Agents {
		if a.Actions != 12 {
			t.Errorf("agent %s: %d actions, want 12", a.ID, a.Actions)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd.Wait()); code != 0 {
		t.Errorf("ui after Ctrl-C: exit %d", code)
	}
}

// sink records what a Player plays.
type sink struct {
	mu       sync.Mutex
	ticks    []world.Tick
	statuses []string
	views    int
	changed  chan struct{}
}

func (s *sink) Apply(r events.Record) {
	if r.Kind != world.EventTickClosed {
		return
	}
	s.mu.Lock()
	s.ticks = append(s.ticks, r.Tick)
	s.mu.Unlock()
	s.poke()
}
func (s *sink) Frame(f dashboard.Frame) {
	if f.View != nil {
		s.mu.Lock()
		s.views++
		s.mu.Unlock()
	}
}
func (s *sink) WantsView() bool { return false }
func (s *sink) SetStatus(st string) {
	s.mu.Lock()
	s.statuses = append(s.statuses, st)
	s.mu.Unlock()
	s.poke()
}
func (s *sink) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *sink) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		s.mu.Lock()
		ok := cond()
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A Player paused before it plays shows nothing until a step, then
// exactly one tick per step; resumed, it plays to the end, with the
// world's picture at the last tick.
func TestPlayerPausesAndSteps(t *testing.T) {
	_, runDir, _ := runShortTournament(t, t.TempDir(), 6)
	p, err := replay.NewPlayer(runDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.NoWorld != "" || p.Bad != "" {
		t.Fatalf("player: no world %q, bad %q", p.NoWorld, p.Bad)
	}
	if err := p.Control(dashboard.ActionStep); err == nil {
		t.Error("step while playing: no error")
	}
	_ = p.Control(dashboard.ActionPause)
	s := &sink{changed: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() { done <- p.Play(context.Background(), s) }()
	s.waitFor(t, "paused", func() bool { return slices.Contains(s.statuses, "paused") })
	s.mu.Lock()
	if len(s.ticks) != 0 {
		t.Errorf("ticks played while paused: %v", s.ticks)
	}
	s.mu.Unlock()
	for want := 1; want <= 2; want++ {
		_ = p.Control(dashboard.ActionStep)
		s.waitFor(t, fmt.Sprintf("tick %d", want), func() bool { return len(s.ticks) == want })
	}
	_ = p.Control(dashboard.ActionResume)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.ticks, []world.Tick{1, 2, 3, 4, 5, 6}) || s.views != 1 {
		t.Errorf("played ticks %v with %d views, want 1-6 and the last tick's view", s.ticks, s.views)
	}
	// Whether a step or Resume came before or after the player waited
	// again is a matter of timing: only the start is certain.
	if len(s.statuses) < 2 || s.statuses[0] != "playing" || s.statuses[1] != "paused" {
		t.Errorf("statuses %q, want playing, paused, ...", s.statuses)
	}
}
