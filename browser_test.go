package adauth_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-adauth/adauth/internal/browser"
	"github.com/caddy-adauth/adauth/internal/caddyrun"
)

// TestBrowserSignInLocal walks the sign-in as a clinician does, in a real
// headless Chromium against a real Caddy on HTTPS: a protected page sends
// the browser to the login form, the form signs in, the page shows the
// identity adauth passed upstream, and signing out ends the session.
func TestBrowserSignInLocal(t *testing.T) {
	ctx := browser.New(t)
	port, upPort := caddyrun.FreePort(t), caddyrun.FreePort(t)
	in := caddyrun.Start(t, fmt.Sprintf(`{
	admin {ADMIN}
	storage file_system {STORAGE}
	local_certs
	skip_install_trust
	https_port %d
	auto_https disable_redirects
}
localhost {
	adauth {
		local examples/demo/users.json
	}
	adauth_require /admin/* admin
	reverse_proxy 127.0.0.1:%d
}
http://:%d {
	bind 127.0.0.1
	root * examples/demo/site
	templates
	file_server
}
`, port, upPort, upPort), caddyrun.Options{})
	base := fmt.Sprintf("https://localhost:%d", port)
	in.WaitTLS(fmt.Sprintf("127.0.0.1:%d", port), "localhost")

	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("username")),
	)
	if err != nil {
		t.Fatalf("opening a protected page: %v\ncaddy log:\n%s", err, in.Log())
	}
	loginURL, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(loginURL, "/adauth/login?next=%2F") {
		t.Errorf("protected page went to %q, want the login page with next=/", loginURL)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "demo-alice"),
		chromedp.Click(chromedp.ID("submit")),
	)
	if err == nil {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err = chromedp.Do(wctx, chromedp.WaitVisible(chromedp.ID("identity")))
		cancel()
	}
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Logf("browser is at %s showing:\n%s", loc, body)
		t.Fatalf("sign-in in the browser: %v\ncaddy log:\n%s", err, in.Log())
	}
	user := text(ctx, t, "user")
	groups := text(ctx, t, "groups")
	if user != "alice" || groups != "physics" {
		t.Fatalf("page shows user %q groups %q, want alice / physics", user, groups)
	}

	// alice is not an admin: the admin page is refused with the 403 page.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/admin/")); err != nil {
		t.Fatal(err)
	}
	if denied := text(ctx, t, "error"); !strings.Contains(denied, "admin") {
		t.Errorf("admin page for a non-admin says %q", denied)
	}

	// Sign out: the confirm page, its button, then the login page again.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/adauth/logout"),
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("info")),
	); err != nil {
		t.Fatalf("sign-out in the browser: %v", err)
	}
	info := text(ctx, t, "info")
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("username")),
	); err != nil {
		t.Fatalf("after sign-out: %v", err)
	}
	if !strings.Contains(info, "signed out") {
		t.Errorf("after sign-out the page says %q", info)
	}
}

// text reads the text of the element with the given id.
func text(ctx context.Context, t *testing.T, id string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		t.Fatalf("reading #%s: %v", id, err)
	}
	return strings.TrimSpace(s)
}
