package browsertest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/terrarium-sim/terrarium/internal/browsertest"
)

// The browser reports a page's console errors and uncaught exceptions,
// so a test that finds none has looked.
func TestErrorsAreCollected(t *testing.T) {
	b := browsertest.New(t, time.Minute)
	page := `data:text/html,<script>console.log("fine"); console.error("broken thing"); setTimeout(() => { throw new Error("uncaught one") }, 0)</script>`
	if err := chromedp.Do(b.Ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(b.Errors()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	errs := b.Errors()
	got := strings.Join(errs, "\n")
	if len(errs) != 2 || !strings.HasPrefix(errs[0], "console.error: broken thing") || !strings.Contains(got, "uncaught one") {
		t.Errorf("errors: %q, want the console.error and the exception only", b.Errors())
	}
}
