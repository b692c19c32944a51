package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/terrarium-sim/terrarium"
)

// progress shows how far a run is: a bar redrawn in place on a terminal, a
// line every 10% (or every 5 s) otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	quiet bool

	mu       sync.Mutex
	lastLine time.Time
	lastPct  int
	drawn    bool
}

func newProgress(w io.Writer, quiet bool) *progress {
	p := &progress{w: w, quiet: quiet, lastPct: -1}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(pr terrarium.Progress) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	pct := -1
	if pr.Ticks > 0 {
		pct = int(100 * pr.Tick / pr.Ticks)
	}
	if p.tty {
		if now.Sub(p.lastLine) < 50*time.Millisecond && pr.Tick != pr.Ticks {
			return
		}
		p.lastLine = now
		if pct >= 0 {
			const width = 30
			n := width * pct / 100
			fmt.Fprintf(p.w, "\r[%s%s] %3d%%  tick %d/%d  %s ", strings.Repeat("#", n), strings.Repeat(".", width-n), pct, pr.Tick, pr.Ticks, pr.Elapsed.Round(time.Millisecond))
		} else {
			fmt.Fprintf(p.w, "\rtick %d  %s ", pr.Tick, pr.Elapsed.Round(time.Millisecond))
		}
		p.drawn = true
		return
	}
	switch {
	case pct >= 0 && pct/10 != p.lastPct/10:
		p.lastPct = pct
	case pct < 0 && now.Sub(p.lastLine) >= 5*time.Second:
	default:
		return
	}
	p.lastLine = now
	if pct >= 0 {
		fmt.Fprintf(p.w, "tick %d/%d (%d%%) %s\n", pr.Tick, pr.Ticks, pct, pr.Elapsed.Round(time.Millisecond))
	} else {
		fmt.Fprintf(p.w, "tick %d %s\n", pr.Tick, pr.Elapsed.Round(time.Millisecond))
	}
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
