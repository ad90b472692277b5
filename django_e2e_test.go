package adauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-adauth/adauth/internal/caddyrun"
	"github.com/caddy-adauth/adauth/internal/djangotest"
)

// djangoSeed stands for an existing QATrack+ database: the groups an
// administrator created (with their permissions) and a user, bob, who was
// given "auditors" by hand — a group adauth does not manage.
const djangoSeed = `
from django.contrib.auth.models import Group, User
for name in ("physics", "admin", "auditors"):
    Group.objects.get_or_create(name=name)
bob = User.objects.create(username="bob")
bob.groups.add(Group.objects.get(name="auditors"))
`

// TestDjangoBehindAdauth puts a real Caddy with adauth in front of a real
// Django project using examples/qatrack/adauth_qatrack.py, as a QATrack+
// site is deployed, and checks what Django makes of the identity.
func TestDjangoBehindAdauth(t *testing.T) {
	djangotest.NeedDjango(t)
	start := time.Now()

	// The users file is a copy, so the test can change alice's and bob's
	// groups while Caddy runs.
	dir := t.TempDir()
	usersPath := filepath.Join(dir, "users.json")
	raw, err := os.ReadFile(demoUsers)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(usersPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	proj := djangotest.NewProject(t, djangoSeed)
	// A: the QATrack+ arrangement: trusts the Caddy hop (127.0.0.1, the
	// default), manages only the groups adauth hands out, admin = superuser.
	djA := proj.Serve(t, map[string]any{
		"SESSION_COOKIE_NAME":     "qa_a",
		"ADAUTH_MANAGED_GROUPS":   []string{"admin", "physics", "therapists"},
		"ADAUTH_SUPERUSER_GROUPS": []string{"admin"},
		"ADAUTH_STAFF_GROUPS":     []string{"admin"},
	})
	// B: trusts only 127.0.0.2, an address this Caddy does not use, and
	// creates missing groups.
	djB := proj.Serve(t, map[string]any{
		"SESSION_COOKIE_NAME":    "qa_b",
		"ADAUTH_TRUSTED_PROXIES": []string{"127.0.0.2"},
		"ADAUTH_CREATE_GROUPS":   true,
	})
	t.Logf("django project and two servers ready after %v", time.Since(start).Round(time.Millisecond))

	port := caddyrun.FreePort(t)
	cf := fmt.Sprintf(`{
	admin {ADMIN}
	storage file_system {STORAGE}
	auto_https off
}
http://127.0.0.1:%d {
	adauth {
		local %s
		public /public/*
	}
	reverse_proxy %s
}
`, port, usersPath, djA.Addr)
	in := caddyrun.Start(t, cf, caddyrun.Options{})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	html := map[string]string{"Accept": "text/html"}
	t.Logf("caddy ready after %v", time.Since(start).Round(time.Millisecond))

	dump := func() string {
		return fmt.Sprintf("\n--- caddy:\n%s\n--- django A:\n%s\n--- django B:\n%s", in.Log(), djA.Log(), djB.Log())
	}
	who := func(c *http.Client, u string, hdr map[string]string) djangotest.Who {
		t.Helper()
		resp, body := do(t, c, "GET", u, nil, hdr)
		var w djangotest.Who
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &w) != nil {
			t.Fatalf("GET %s: %d %s%s", u, resp.StatusCode, body, dump())
		}
		return w
	}
	signIn := func(c *http.Client, user, pass string) {
		t.Helper()
		resp, _ := do(t, c, "POST", base+"/adauth/login", url.Values{"username": {user}, "password": {pass}, "next": {"/whoami-django/"}}, nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in %s: %d%s", user, resp.StatusCode, dump())
		}
	}
	expect := func(step string, w djangotest.Who, user string, groups []string, email, first, last string) {
		t.Helper()
		if !w.Authenticated || w.Username != user || !slices.Equal(w.Groups, groups) ||
			w.Email != email || w.FirstName != first || w.LastName != last {
			t.Fatalf("%s: django sees %+v, want %s %v %s %q %q%s", step, w, user, groups, email, first, last, dump())
		}
		if w.Backend != "adauth_qatrack.AdauthBackend" {
			t.Fatalf("%s: session backend %q", step, w.Backend)
		}
	}

	// 1. alice signs in through adauth and is alice in Django, created on
	// first sight with her group, e-mail and names.
	alice := client(t)
	signIn(alice, "alice", "demo-alice")
	w := who(alice, base+"/whoami-django/", nil)
	expect("alice", w, "alice", []string{"physics"}, "alice@hospital.example", "Alice", "Andersen")
	if w.Staff || w.Superuser {
		t.Fatalf("alice is staff/superuser: %+v", w)
	}
	// A forged header from a signed-in user changes nothing: adauth replaced it.
	w = who(alice, base+"/whoami-django/", map[string]string{"X-Remote-User": "bob", "X-Remote-Groups": "admin"})
	expect("alice forging bob", w, "alice", []string{"physics"}, "alice@hospital.example", "Alice", "Andersen")

	// 2. bob, an existing Django user: admin and physics added, auditors
	// (given by hand, not managed by adauth) kept; admin makes him superuser.
	bob := client(t)
	signIn(bob, "bob", "demo-bob")
	w = who(bob, base+"/whoami-django/", nil)
	expect("bob", w, "bob", []string{"admin", "auditors", "physics"}, "bob@hospital.example", "Bob", "Berg")
	if !w.Staff || !w.Superuser {
		t.Fatalf("bob should be staff and superuser: %+v", w)
	}

	// 3. Forged identity headers sent to Caddy without a session never log
	// anyone in: a protected path sends the browser to the login page, and on
	// a public path Django sees an anonymous user and no identity header.
	for _, h := range []string{"X-Remote-User", "X_Remote_User", "x-remote-user", "X-REMOTE-USER"} {
		forged := map[string]string{h: "bob", "X-Remote-Groups": "admin", "Accept": "text/html"}
		anon := client(t)
		resp, _ := do(t, anon, "GET", base+"/whoami-django/", nil, forged)
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/adauth/login?next=") {
			t.Fatalf("forged %s on a protected path: %d %q%s", h, resp.StatusCode, resp.Header.Get("Location"), dump())
		}
		w = who(anon, base+"/public/whoami/", forged)
		if w.Authenticated || len(w.Headers) != 0 {
			t.Fatalf("forged %s on a public path: django sees %+v%s", h, w, dump())
		}
	}
	// A signed-in user on a public path is still themselves in Django.
	w = who(bob, base+"/public/whoami/", nil)
	expect("bob on a public path", w, "bob", []string{"admin", "auditors", "physics"}, "bob@hospital.example", "Bob", "Berg")

	// 4. Straight to Django, bypassing Caddy. From 127.0.0.1 the forged header
	// IS trusted: the reason gunicorn must listen on loopback only, where
	// nobody but Caddy (and the server's own admins) can reach it.
	direct := client(t)
	w = who(direct, djA.URL+"/whoami-django/", map[string]string{"X-Remote-User": "mallory", "X-Remote-Groups": "admin"})
	if !w.Authenticated || w.Username != "mallory" {
		t.Fatalf("a header sent to Django from a trusted address should be believed: %+v", w)
	}
	// Django B trusts only 127.0.0.2: from 127.0.0.1 the header is ignored
	// and removed, so no view can read it either.
	direct = client(t)
	w = who(direct, djB.URL+"/whoami-django/", map[string]string{"X-Remote-User": "bob", "X-Remote-Groups": "admin"})
	if w.Authenticated || len(w.Headers) != 0 || w.RemoteAddr != "127.0.0.1" {
		t.Fatalf("untrusted 127.0.0.1: django believed the header: %+v%s", w, dump())
	}
	// From 127.0.0.2 it is trusted, and with ADAUTH_CREATE_GROUPS the
	// unknown group is created.
	from2 := client(t)
	from2.Transport = &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}).DialContext}
	w = who(from2, djB.URL+"/whoami-django/", map[string]string{
		"X-Remote-User": "carol", "X-Remote-Groups": "physics,radiographers", "X-Remote-Name": "Andersson, Carol",
		"X-Remote-Email": "carol@hospital.example",
	})
	expect("carol from 127.0.0.2", w, "carol", []string{"physics", "radiographers"}, "carol@hospital.example", "Carol", "Andersson")
	// carol's Django session, used from an untrusted address without the
	// header (or with someone else's), stays carol's: an untrusted request
	// neither logs in nor logs out.
	jar2 := from2.Jar
	untrusted := client(t)
	untrusted.Jar = jar2
	for _, hdr := range []map[string]string{nil, {"X-Remote-User": "bob"}} {
		w = who(untrusted, djB.URL+"/whoami-django/", hdr)
		if !w.Authenticated || w.Username != "carol" || w.RemoteAddr != "127.0.0.1" {
			t.Fatalf("untrusted request with carol's session and %v: %+v", hdr, w)
		}
	}
	// ...but from the trusted hop, no header means adauth has nobody signed
	// in: carol's Django session ends.
	w = who(from2, djB.URL+"/whoami-django/", nil)
	if w.Authenticated {
		t.Fatalf("trusted request without a header kept the session: %+v", w)
	}

	// 5. Groups change in the directory (here: the users file, which adauth
	// re-reads within ~2 s). alice moves from physics to admin and a group
	// QATrack+ does not have (therapists: not created, ADAUTH_CREATE_GROUPS
	// is off) and gets her name with an accent; bob loses admin.
	var uf struct {
		Users []map[string]any `json:"users"`
	}
	if err := json.Unmarshal(raw, &uf); err != nil {
		t.Fatal(err)
	}
	for _, u := range uf.Users {
		switch u["username"] {
		case "alice":
			u["groups"] = []string{"admin", "therapists"}
			u["family_name"] = "Ångström"
		case "bob":
			u["groups"] = []string{"physics"}
		}
	}
	changed, _ := json.MarshalIndent(uf, "", "  ")
	if err := os.WriteFile(usersPath+".tmp", changed, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(usersPath+".tmp", usersPath); err != nil {
		t.Fatal(err)
	}
	// Local users' groups are fixed in the adauth session: sign in again
	// until adauth has the new file.
	reloaded := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		signIn(alice, "alice", "demo-alice")
		_, body := do(t, alice, "GET", base+"/adauth/whoami", nil, nil)
		if strings.Contains(body, `"therapists"`) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("adauth did not pick up the changed users file: %s%s", body, dump())
		case <-time.After(250 * time.Millisecond):
		}
	}
	t.Logf("users file reload seen after %v", time.Since(reloaded).Round(time.Millisecond))
	// alice keeps her Django session (same username, so RemoteUserMiddleware
	// would not authenticate again): the middleware sees the headers changed
	// and re-applies them.
	w = who(alice, base+"/whoami-django/", nil)
	expect("alice after the change", w, "alice", []string{"admin"}, "alice@hospital.example", "Alice", "Ångström")
	if !w.Superuser || !w.Staff {
		t.Fatalf("alice is now admin, so superuser: %+v", w)
	}
	signIn(bob, "bob", "demo-bob")
	w = who(bob, base+"/whoami-django/", nil)
	expect("bob after the change", w, "bob", []string{"auditors", "physics"}, "bob@hospital.example", "Bob", "Berg")
	if w.Superuser || w.Staff {
		t.Fatalf("bob lost admin, so superuser and staff too: %+v", w)
	}
	if !strings.Contains(djA.Log(), "group 'therapists', which does not exist") {
		t.Fatalf("no warning about the missing group in the django log%s", dump())
	}
	if got := proj.Run(t, `from django.contrib.auth.models import Group; print(Group.objects.filter(name="therapists").exists())`); got != "False" {
		t.Fatalf("group therapists was created without ADAUTH_CREATE_GROUPS: %s", got)
	}

	// 6. Signing out of adauth ends the Django session at the next request.
	resp, _ := do(t, bob, "POST", base+"/adauth/logout", url.Values{}, map[string]string{"Origin": base})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	w = who(bob, base+"/public/whoami/", nil)
	if w.Authenticated {
		t.Fatalf("after adauth logout django still has %+v", w)
	}
	resp, _ = do(t, bob, "GET", base+"/whoami-django/", nil, html)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("after logout a protected page: %d", resp.StatusCode)
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// TestDjangoModuleUnits checks the corners of adauth_qatrack.py that the
// end-to-end test does not reach (IPv6 and mapped addresses, networks in
// ADAUTH_TRUSTED_PROXIES, case-insensitive group names, managed and created
// groups, deactivated users) with Django's RequestFactory.
func TestDjangoModuleUnits(t *testing.T) {
	djangotest.NeedDjango(t)
	proj := djangotest.NewProject(t, "")
	code, err := os.ReadFile(filepath.Join("internal", "djangotest", "testdata", "adauth_qatrack_unit.py"))
	if err != nil {
		t.Fatal(err)
	}
	if out := proj.Run(t, string(code)); !strings.HasSuffix(out, "ok") {
		t.Fatalf("unit checks: %s", out)
	}
}
