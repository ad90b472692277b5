// Package browser starts Debian's headless Chromium for end-to-end tests
// and hands back a chromedp context, so tests drive the sign-in pages the
// way a clinician's browser would: real HTML forms, real cookies, real
// redirects.
package browser

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-adauth/adauth/internal/testenv"
)

// New starts a fresh headless Chromium with an empty profile and returns a
// context for chromedp actions, cancelled at the end of the test. It skips
// the test when Chromium is not installed (fails under
// ADAUTH_REQUIRE_SERVERS=1). TLS errors are ignored: the tests' sites use
// Caddy's internal CA, which this throwaway profile does not trust.
func New(t testing.TB) context.Context {
	t.Helper()
	bin := os.Getenv("ADAUTH_CHROMIUM")
	if bin == "" {
		bin = testenv.NeedCommand(t, "chromium")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox, // root in CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.IgnoreCertErrors,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelCtx := chromedp.NewContext(actx)
	// Start the browser now, on a context without a deadline (the first
	// run's context owns the browser), so a broken install fails here with
	// a clear message rather than inside the first navigation.
	if err := chromedp.Do(bctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("starting %s: %v", bin, err)
	}
	ctx, cancelTimeout := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}
