// Package browsertest starts headless Chromium for the tests that render
// pages (the report, the dashboard), and collects what the page logged.
package browsertest

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/terrarium-sim/terrarium/internal/testenv"
)

// Path returns the browser's path, or skips the test; under CI=true a
// missing browser fails it (.ci/deps/chromium.sh installs it).
func Path(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "chromium is not installed (run .ci/deps/chromium.sh)")
	return ""
}

// Browser is one headless Chromium tab.
type Browser struct {
	Ctx context.Context // for chromedp.Run

	mu      sync.Mutex
	console []string // errors: console.error calls and uncaught exceptions
}

// New starts a headless Chromium (the flags this machine needs: no
// sandbox as root, no background networking) with a fresh profile, for at
// most limit; it is stopped when the test ends.
func New(t testing.TB, limit time.Duration) *Browser {
	t.Helper()
	path := Path(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.WindowSize(1400, 1000),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		bcancel()
		acancel()
		cancel()
	})
	b := &Browser{Ctx: bctx}
	// Open the tab first, so the listener misses nothing of the page.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	err := chromedp.Listen(bctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
				}
				b.add("console." + string(ev.Type) + ": " + strings.Join(parts, " "))
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				b.add(fmt.Sprintf("log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			b.add(fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber, msg))
		}
	})
	if err != nil {
		t.Fatalf("listen to chromium: %v", err)
	}
	if _, err := chromedp.Call(bctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("chromium: enable the log: %v", err)
	}
	return b
}

func (b *Browser) add(s string) {
	b.mu.Lock()
	b.console = append(b.console, s)
	b.mu.Unlock()
}

// Errors returns the console errors and uncaught exceptions so far.
func (b *Browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}
