package adauth_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-adauth/adauth/internal/adfstest"
	"github.com/caddy-adauth/adauth/internal/browser"
	"github.com/caddy-adauth/adauth/internal/caddyrun"
)

// TestBrowserSignInLocal walks the sign-in as a clinician does, in a real
// headless Chromium against a real Caddy on HTTPS: a protected page sends
// the browser to the login form, the form signs in, the page shows the
// identity adauth passed upstream, and signing out ends the session.
func TestBrowserSignInLocal(t *testing.T) {
	ctx := browser.New(t)
	base, in := startDemoSite(t, "local examples/demo/users.json", "")
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
	submitForm(ctx, t, in, "alice", "demo-alice", "identity")
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

// TestBrowserSignInADFS walks single sign-on in a real headless Chromium:
// a protected page sends the browser to the login page, its SSO button to
// the AD FS emulator's own sign-in form, and AD FS back to the page the
// user wanted, which shows the identity and the mapped groups.
func TestBrowserSignInADFS(t *testing.T) {
	ctx := browser.New(t)
	port := caddyrun.FreePort(t)
	redirect := fmt.Sprintf("https://localhost:%d/adauth/callback", port)
	emu := adfstest.New(t, []adfstest.User{
		{Username: "carol", Password: "Carol.Pass", WinAccountName: `HOSPITAL\carol`, GivenName: "Carol", FamilyName: "Clark",
			Email: "carol@hospital.example", Groups: []string{"QA-Physicists", "QA-Admins"}},
	}, []adfstest.Client{{ID: "qatrackplus", Secret: "s3cret", RedirectURIs: []string{redirect}}})
	base, in := startDemoSite(t, fmt.Sprintf(`adfs {
			server           %s
			client_id        qatrackplus
			client_secret    s3cret
			relying_party_id qatrackplus
			ca_file          %s
			button           "Sign in with your hospital account"
		}
		groups {
			map "QA-Physicists" physics
			map "QA-Admins"     admin
		}`, emu.Host, emu.CAFile), strconv.Itoa(port))

	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/admin/"),
		chromedp.WaitVisible(chromedp.ID("sso")),
	); err != nil {
		t.Fatalf("opening a protected page: %v\ncaddy log:\n%s", err, in.Log())
	}
	if label := text(ctx, t, "sso"); label != "Sign in with your hospital account" {
		t.Errorf("SSO button says %q", label)
	}
	// The button leads to AD FS's own form (another origin, its own TLS).
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("sso")),
		chromedp.WaitVisible(chromedp.ID("loginForm")),
	); err != nil {
		t.Fatalf("SSO button: %v\ncaddy log:\n%s", err, in.Log())
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, "https://"+emu.Host+"/adfs/oauth2/authorize") {
		t.Errorf("SSO button went to %q, want the AD FS authorize endpoint", loc)
	}
	submitForm(ctx, t, in, "carol", "Carol.Pass", "groups")
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != base+"/admin/" {
		t.Errorf("after AD FS the browser is at %q, want the page it asked for, %s/admin/", loc, base)
	}
	if user, groups := text(ctx, t, "user"), text(ctx, t, "groups"); user != "carol" || groups != "admin,physics" {
		t.Fatalf("page shows user %q groups %q, want carol / admin,physics", user, groups)
	}
}

// startDemoSite starts a real Caddy serving the demo site on HTTPS
// localhost behind adauth with the given backend block(s), and returns the
// site's base URL. port is the HTTPS port, or "" for a free one.
func startDemoSite(t *testing.T, backends, port string) (string, *caddyrun.Instance) {
	t.Helper()
	if port == "" {
		port = strconv.Itoa(caddyrun.FreePort(t))
	}
	upPort := caddyrun.FreePort(t)
	in := caddyrun.Start(t, fmt.Sprintf(`{
	admin {ADMIN}
	storage file_system {STORAGE}
	local_certs
	skip_install_trust
	https_port %s
	auto_https disable_redirects
}
localhost {
	adauth {
		%s
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
`, port, backends, upPort, upPort), caddyrun.Options{})
	in.WaitTLS("127.0.0.1:"+port, "localhost")
	return "https://localhost:" + port, in
}

// submitForm types a username and password into the page's form (adauth's
// or AD FS's: both use the ids username, password and submit), submits it
// and waits for the element with id want on the page it leads to.
func submitForm(ctx context.Context, t *testing.T, in *caddyrun.Instance, username, password, want string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("username"), username),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")),
	)
	if err == nil {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err = chromedp.Do(wctx, chromedp.WaitVisible(chromedp.ID(want)))
		cancel()
	}
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("signing in as %s in the browser: %v\nbrowser at %s showing:\n%s\ncaddy log:\n%s", username, err, loc, body, in.Log())
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
