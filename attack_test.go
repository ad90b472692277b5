package adauth_test

// The attack suite: each test names one attack on a login gate in its
// comment and proves, against a real Caddy with adauth in front of a real
// upstream, that it fails. LDAP injection and AD FS token forgery live with
// their backends (ldapauth, adfsauth) and their end-to-end tests.

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-adauth/adauth"
	"github.com/caddy-adauth/adauth/internal/caddyrun"
)

// attackSite is one Caddy with adauth for the whole suite: the local demo
// users, a public area, an admin area, basic auth, and a handle_errors
// block that proxies to the upstream too (so an error path cannot carry a
// forged identity either).
type attackSite struct {
	base     string
	port     int
	in       *caddyrun.Instance
	upstream *recordingUpstream
}

// recordingUpstream records every request that reached the application.
type recordingUpstream struct {
	mu   sync.Mutex
	seen []seenRequest
	addr string
}

type seenRequest struct {
	Path    string
	RawPath string
	Header  http.Header
}

func (u *recordingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.seen = append(u.seen, seenRequest{Path: r.URL.Path, RawPath: r.URL.RawPath, Header: r.Header.Clone()})
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "headers": r.Header})
}

func (u *recordingUpstream) reset() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.seen
	u.seen = nil
	return s
}

func startAttackSite(t *testing.T) *attackSite {
	t.Helper()
	up := &recordingUpstream{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: up, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	up.addr = l.Addr().String()

	port := caddyrun.FreePort(t)
	cf := fmt.Sprintf(`{
	admin {ADMIN}
	storage file_system {STORAGE}
	auto_https off
}
http://127.0.0.1:%d {
	adauth {
		local examples/demo/users.json
		public /static/* /health
		basic_auth
		throttle 50 1m
	}
	adauth_require /admin/* admin
	reverse_proxy %s
	handle_errors {
		reverse_proxy %s
	}
}
`, port, up.addr, up.addr)
	in := caddyrun.Start(t, cf, caddyrun.Options{})
	return &attackSite{base: fmt.Sprintf("http://127.0.0.1:%d", port), port: port, in: in, upstream: up}
}

// signIn returns a session cookie header value for user.
func (s *attackSite) signIn(t *testing.T, user, password string) string {
	t.Helper()
	c := client(t)
	resp, _ := do(t, c, "POST", s.base+"/adauth/login", url.Values{"username": {user}, "password": {password}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in as %s: %d", user, resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "adauth" {
			return ck.Name + "=" + ck.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// raw sends one request exactly as written (path bytes untouched by Go's
// client) and returns the status code.
func (s *attackSite) raw(t *testing.T, method, target string, headers ...string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n", method, target, s.port)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestAttacks(t *testing.T) {
	s := startAttackSite(t)
	alice := s.signIn(t, "alice", "demo-alice") // groups: physics
	bob := s.signIn(t, "bob", "demo-bob")       // groups: admin, physics

	// Forged identity headers, in every spelling a framework may read as
	// X-Remote-User, never reach the application: not signed out, not on a
	// public path, not signed in as someone else, not with Basic auth, not
	// on an error page.
	t.Run("forged identity headers", func(t *testing.T) {
		forged := []string{
			"X-Remote-User: bob", "x-remote-user: bob", "X-REMOTE-USER: bob", "X_Remote_User: bob",
			"x_remote_user: bob", "X-Remote-User: root", "X-Remote-Groups: admin", "x-remote-groups: admin",
			"X-Remote-Email: bob@hospital.example", "X-Remote-Name: Bob",
		}
		basic := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("alice:demo-alice"))
		cases := []struct {
			name, target string
			extra        []string
			wantUser     string
		}{
			{"signed out, public path", "/static/app.css", nil, ""},
			{"signed out, public exact path", "/health", nil, ""},
			{"signed in as alice", "/qa/", []string{"Cookie: " + alice}, "alice"},
			{"alice on a public path", "/static/x", []string{"Cookie: " + alice}, "alice"},
			{"basic auth as alice", "/qa/", []string{basic}, "alice"},
			{"error page (404 under the prefix)", "/adauth/nope", []string{"Cookie: " + alice}, ""},
			{"signed out, protected path", "/qa/", nil, ""},
		}
		for _, c := range cases {
			s.upstream.reset()
			s.raw(t, "GET", c.target, append(append([]string{}, forged...), c.extra...)...)
			for _, req := range s.upstream.reset() {
				for k, v := range req.Header {
					n := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
					if !strings.HasPrefix(n, "x-remote-") {
						continue
					}
					if n == "x-remote-user" && c.wantUser != "" && len(v) == 1 && v[0] == c.wantUser {
						continue
					}
					if c.wantUser != "" && n != "x-remote-user" && !strings.Contains(strings.Join(v, ","), "bob") && !strings.Contains(strings.Join(v, ","), "admin") {
						continue // alice's own email, name, groups
					}
					t.Errorf("%s: %s: %v reached the application", c.name, k, v)
				}
			}
		}
	})

	// Cookie tampering: a flipped bit, a truncated cookie, an appended
	// byte, another site's key, or a cookie made up from scratch all count
	// as signed out (browsers redirected, nothing passed upstream).
	t.Run("tampered cookies", func(t *testing.T) {
		name, val, _ := strings.Cut(alice, "=")
		flip := []byte(val)
		flip[len(flip)/2] ^= 0x01
		forgedJSON := base64.RawURLEncoding.EncodeToString([]byte(`{"id":"bob","groups":["admin"]}`))
		other := otherKeyCookie(t)
		for label, v := range map[string]string{
			"bit flipped":   string(flip),
			"truncated":     val[:len(val)-4],
			"appended":      val + "A",
			"empty":         "",
			"made up":       forgedJSON,
			"other key":     other,
			"quoted":        `"` + val[:10] + `"`,
			"huge":          strings.Repeat("A", 8000),
			"NUL":           val[:10] + "%00" + val[10:],
			"invalid UTF-8": "\xff\xfe" + val,
		} {
			s.upstream.reset()
			code := s.raw(t, "GET", "/qa/", "Accept: text/html", "Cookie: "+name+"="+v)
			if code != http.StatusFound || len(s.upstream.reset()) != 0 {
				t.Errorf("%s cookie: status %d, want 302 to the login page and nothing upstream", label, code)
			}
		}
	})

	// Open redirects: next must stay on this site, whatever the spelling.
	t.Run("open redirects in next", func(t *testing.T) {
		c := client(t)
		for _, next := range []string{
			"//evil.example/", "/\\evil.example", "https://evil.example/", "%2F%2Fevil.example",
			"javascript:alert(1)", "/\t/evil.example", "\\\\evil.example", "http:evil.example",
			"/%0d%0aSet-Cookie:x=y", "///evil.example",
		} {
			resp, _ := do(t, c, "POST", s.base+"/adauth/login", url.Values{"username": {"alice"}, "password": {"demo-alice"}, "next": {next}}, nil)
			loc := resp.Header.Get("Location")
			u, err := url.Parse(loc)
			if resp.StatusCode != http.StatusSeeOther || err != nil || u.Host != "" || u.Scheme != "" || strings.HasPrefix(loc, "//") || strings.ContainsAny(loc, "\\\r\n") {
				t.Errorf("next=%q: %d Location %q", next, resp.StatusCode, loc)
			}
		}
	})

	// CSRF: another site's page cannot sign a user in (login CSRF plants
	// the attacker's account) nor out.
	t.Run("cross-site login and logout", func(t *testing.T) {
		c := client(t)
		for _, hdr := range []map[string]string{
			{"Sec-Fetch-Site": "cross-site"},
			{"Origin": "https://evil.example"},
		} {
			resp, _ := do(t, c, "POST", s.base+"/adauth/login", url.Values{"username": {"alice"}, "password": {"demo-alice"}}, hdr)
			if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
				t.Errorf("cross-site login with %v: %d, cookies %v", hdr, resp.StatusCode, resp.Cookies())
			}
			h := map[string]string{"Cookie": alice}
			for k, v := range hdr {
				h[k] = v
			}
			resp, _ = do(t, c, "POST", s.base+"/adauth/logout", url.Values{}, h)
			if resp.StatusCode != http.StatusForbidden || strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0") {
				t.Errorf("cross-site logout with %v: %d", hdr, resp.StatusCode)
			}
		}
	})

	// Session fixation: a session cookie planted before sign-in is not
	// kept: the sign-in issues a new sealed value, and an unopenable
	// planted value is never echoed back.
	t.Run("session fixation", func(t *testing.T) {
		c := client(t)
		resp, _ := do(t, c, "POST", s.base+"/adauth/login",
			url.Values{"username": {"alice"}, "password": {"demo-alice"}},
			map[string]string{"Cookie": "adauth=attacker-chosen-value"})
		var got string
		for _, ck := range resp.Cookies() {
			if ck.Name == "adauth" {
				got = ck.Value
			}
		}
		if got == "" || got == "attacker-chosen-value" {
			t.Fatalf("sign-in kept the planted session value: %q", got)
		}
	})

	// Path tricks around public and adauth_require: however the path is
	// spelled, what the application receives is what adauth judged. A
	// request that reached the upstream unsigned must be for a public path
	// once cleaned and decoded; alice (not admin) must never reach /admin.
	t.Run("path tricks", func(t *testing.T) {
		tricks := []string{
			"/static/../admin/users", "/static/%2e%2e/admin/users", "/static/%2E%2E/qa/", "/static/..%2fadmin/users",
			"/static%2f..%2fadmin/users", "//admin/users", "/ADMIN/users", "/Admin/users", "/admin./users",
			"/admin%2fusers", "/%61dmin/users", "/admin//users", "/./admin/users", "/static/./../qa/",
			"/admin;/users", "/static/..;/admin/users", "/STATIC/../admin/", "/static/%252e%252e/admin/",
			"/admin%00/users", "/admin%20/users", "/qa/%2e%2e/static/x",
		}
		judge := func(p string) string {
			p = strings.ToLower(path.Clean("/" + p))
			return p
		}
		for _, trick := range tricks {
			// Signed out: only public paths may pass.
			s.upstream.reset()
			s.raw(t, "GET", trick)
			for _, req := range s.upstream.reset() {
				p := judge(req.Path)
				if !strings.HasPrefix(p, "/static/") && p != "/health" {
					t.Errorf("signed out %q reached the application as %q (raw %q)", trick, req.Path, req.RawPath)
				}
			}
			// alice: never the admin area.
			s.raw(t, "GET", trick, "Cookie: "+alice)
			for _, req := range s.upstream.reset() {
				if p := judge(req.Path); p == "/admin" || strings.HasPrefix(p, "/admin/") {
					t.Errorf("alice %q reached the admin area as %q (raw %q)", trick, req.Path, req.RawPath)
				}
			}
		}
		// Spellings that some application servers read as another path are
		// refused outright (400), signed in or not.
		for _, trick := range []string{"/admin./users", "/admin%00/users", "/admin%20/users", "/admin%5cusers", "/static/x%0a", "/admin.%20/x"} {
			s.upstream.reset()
			if code := s.raw(t, "GET", trick, "Cookie: "+bob); code != http.StatusBadRequest || len(s.upstream.reset()) != 0 {
				t.Errorf("%q: %d, want 400 and nothing upstream", trick, code)
			}
		}
		// And bob does get in, so the 403s above are about groups.
		s.upstream.reset()
		if code := s.raw(t, "GET", "/admin/users", "Cookie: "+bob); code != http.StatusOK {
			t.Errorf("bob (admin) /admin/users: %d", code)
		}
	})

	// Oversized, NUL-laden and invalid UTF-8 sign-in forms are refused
	// with a clear status and never sign anyone in.
	t.Run("hostile sign-in forms", func(t *testing.T) {
		c := client(t)
		for label, form := range map[string]url.Values{
			"oversized body":     {"username": {"alice"}, "password": {strings.Repeat("x", 64<<10)}},
			"NUL in username":    {"username": {"alice\x00bob"}, "password": {"demo-alice"}},
			"NUL in password":    {"username": {"alice"}, "password": {"demo-alice\x00"}},
			"invalid UTF-8":      {"username": {"\xffalice"}, "password": {"demo-alice"}},
			"empty password":     {"username": {"alice"}, "password": {""}},
			"spaces as password": {"username": {"alice"}, "password": {"   "}},
			"huge username":      {"username": {strings.Repeat("a", 5000)}, "password": {"demo-alice"}},
			"newline in name":    {"username": {"alice\r\nX-Remote-User: bob"}, "password": {"demo-alice"}},
		} {
			resp, _ := do(t, c, "POST", s.base+"/adauth/login", form, nil)
			if resp.StatusCode == http.StatusSeeOther || len(resp.Cookies()) != 0 || resp.StatusCode >= 500 {
				t.Errorf("%s: %d with cookies %v", label, resp.StatusCode, resp.Cookies())
			}
		}
	})

	// Replay after logout: stateless sessions cannot be revoked one by one
	// (see the README); what logout must do is clear the browser's copy.
	t.Run("logout clears the cookie", func(t *testing.T) {
		c := client(t)
		resp, _ := do(t, c, "POST", s.base+"/adauth/logout", url.Values{}, map[string]string{"Cookie": alice, "Origin": s.base})
		sc := resp.Header.Get("Set-Cookie")
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(sc, "adauth=;") || !strings.Contains(sc, "Max-Age=0") {
			t.Fatalf("logout: %d Set-Cookie %q", resp.StatusCode, sc)
		}
	})
}

// otherKeyCookie is a well-formed session for bob (admin) sealed under a
// key this site does not have.
func otherKeyCookie(t *testing.T) string {
	t.Helper()
	return adauth.SealSessionForTest("another-site-key-0123456789abcdef0123456789", "bob", "admin")
}
