package adauth_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-adauth/adauth/internal/caddyrun"
)

// echoUpstream stands in for QATrack+: it answers with the request headers
// it received, as JSON, so a test sees exactly what adauth passed on.
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "headers": r.Header})
	}))
	t.Cleanup(s.Close)
	return s
}

// upstreamSaw decodes the echo upstream's answer.
type upstreamSaw struct {
	Path    string              `json:"path"`
	Headers map[string][]string `json:"headers"`
}

func (u upstreamSaw) identityHeaders() map[string][]string {
	out := map[string][]string{}
	for k, v := range u.Headers {
		if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "x-remote-") {
			out[k] = v
		}
	}
	return out
}

// client is a browser-like HTTP client: a cookie jar, no automatic
// redirects (the test looks at each hop).
func client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:           jar,
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func do(t *testing.T, c *http.Client, method, u string, body url.Values, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(body.Encode())
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

const demoUsers = "examples/demo/users.json"

func gateCaddyfile(port int, upstream string, extra string) string {
	return fmt.Sprintf(`{
	admin {ADMIN}
	storage file_system {STORAGE}
	auto_https off
}
http://127.0.0.1:%d {
	adauth {
		local %s
		public /static/*
		basic_auth
		%s
	}
	adauth_require /admin/* admin
	reverse_proxy %s
}
`, port, demoUsers, extra, strings.TrimPrefix(upstream, "http://"))
}

func TestEndToEndLocal(t *testing.T) {
	up := echoUpstream(t)
	port := caddyrun.FreePort(t)
	cf := gateCaddyfile(port, up.URL, "")
	in := caddyrun.Start(t, cf, caddyrun.Options{})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	c := client(t)
	html := map[string]string{"Accept": "text/html"}

	// 1. A browser is sent to the login page, with next.
	resp, _ := do(t, c, "GET", base+"/qa/units/?x=1", nil, html)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/adauth/login?next=%2Fqa%2Funits%2F%3Fx%3D1") {
		t.Fatalf("unauthenticated navigation: %d Location=%q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// An API call gets 401 JSON with a Basic challenge.
	resp, body := do(t, c, "GET", base+"/api/x", nil, map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not signed in") || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("API call: %d %q", resp.StatusCode, body)
	}
	// 2. The login page works without JavaScript: a plain form.
	resp, body = do(t, c, "GET", base+"/adauth/login?next=/qa/", nil, html)
	if resp.StatusCode != 200 || !strings.Contains(body, `<form method="post" action="/adauth/login">`) || !strings.Contains(body, `name="password"`) {
		t.Fatalf("login page: %d\n%s", resp.StatusCode, body)
	}
	// 3. A wrong password: 401 and the one generic message.
	resp, body = do(t, c, "POST", base+"/adauth/login", url.Values{"username": {"alice"}, "password": {"nope"}, "next": {"/qa/"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Incorrect username or password.") {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	// 4. The right one: 303 to next, a session cookie.
	resp, _ = do(t, c, "POST", base+"/adauth/login", url.Values{"username": {"Alice"}, "password": {"demo-alice"}, "next": {"/qa/"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/qa/" {
		t.Fatalf("sign-in: %d Location=%q\n%s", resp.StatusCode, resp.Header.Get("Location"), in.Log())
	}
	// 5. The upstream sees the identity, and forged headers are gone.
	forged := map[string]string{"X-Remote-User": "bob", "x-remote-groups": "admin", "X_Remote_User": "bob"}
	resp, body = do(t, c, "GET", base+"/qa/", nil, forged)
	var saw upstreamSaw
	if err := json.Unmarshal([]byte(body), &saw); err != nil || resp.StatusCode != 200 {
		t.Fatalf("upstream: %d %s", resp.StatusCode, body)
	}
	want := map[string][]string{
		"X-Remote-User":   {"alice"},
		"X-Remote-Email":  {"alice@hospital.example"},
		"X-Remote-Name":   {"Alice Andersen"},
		"X-Remote-Groups": {"physics"},
	}
	if got := saw.identityHeaders(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("identity at upstream = %v, want %v", got, want)
	}
	// 6. Forged headers on a public path without a session never arrive.
	anon := client(t)
	_, body = do(t, anon, "GET", base+"/static/app.css", nil, forged)
	saw = upstreamSaw{}
	_ = json.Unmarshal([]byte(body), &saw)
	if got := saw.identityHeaders(); len(got) != 0 || saw.Path != "/static/app.css" {
		t.Fatalf("public path passed forged identity: %v (%s)", got, body)
	}
	// 7. whoami.
	_, body = do(t, c, "GET", base+"/adauth/whoami", nil, nil)
	var who struct {
		ID      string   `json:"id"`
		Groups  []string `json:"groups"`
		Backend string   `json:"backend"`
		Expires string   `json:"expires"`
	}
	if err := json.Unmarshal([]byte(body), &who); err != nil || who.ID != "alice" || who.Backend != "local" || len(who.Groups) != 1 || who.Expires == "" {
		t.Fatalf("whoami: %s", body)
	}
	// 8. adauth_require: alice (physics) may not see /admin/.
	resp, body = do(t, c, "GET", base+"/admin/users", nil, html)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "admin") {
		t.Fatalf("adauth_require: %d", resp.StatusCode)
	}
	// 9. Basic auth for an API client: bob is an admin.
	req, _ := http.NewRequest("GET", base+"/admin/api", nil)
	req.SetBasicAuth("bob", "demo-bob")
	req.Header.Set("X-Remote-User", "alice")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	saw = upstreamSaw{}
	_ = json.Unmarshal(b2, &saw)
	if r2.StatusCode != 200 || fmt.Sprint(saw.Headers["X-Remote-User"]) != "[bob]" {
		t.Fatalf("basic auth: %d %s", r2.StatusCode, b2)
	}
	req.SetBasicAuth("bob", "wrong")
	r3, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r3.Body.Close()
	if r3.StatusCode != http.StatusUnauthorized {
		t.Fatalf("basic auth with a wrong password: %d", r3.StatusCode)
	}

	// 10. `caddy reload` keeps the session (the key lives in storage).
	in.Reload(gateCaddyfile(port, up.URL, "session_idle 2h"))
	resp, _ = do(t, c, "GET", base+"/qa/", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("after reload: %d\n%s", resp.StatusCode, in.Log())
	}
	// 11. A second Caddy sharing the storage accepts the same cookie.
	port2 := caddyrun.FreePort(t)
	caddyrun.Start(t, gateCaddyfile(port2, up.URL, ""), caddyrun.Options{Storage: in.Storage})
	u1, _ := url.Parse(base)
	u2, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port2))
	c.Jar.SetCookies(u2, c.Jar.Cookies(u1))
	resp, body = do(t, c, "GET", u2.String()+"/qa/", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"X-Remote-User":["alice"]`) {
		t.Fatalf("second instance: %d %s", resp.StatusCode, body)
	}

	// 12. Logout: GET confirms, POST clears, the next navigation needs a sign-in.
	resp, body = do(t, c, "GET", base+"/adauth/logout", nil, html)
	if resp.StatusCode != 200 || !strings.Contains(body, `method="post"`) {
		t.Fatalf("logout page: %d", resp.StatusCode)
	}
	resp, _ = do(t, c, "POST", base+"/adauth/logout", url.Values{}, map[string]string{"Origin": base})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	resp, _ = do(t, c, "GET", base+"/qa/", nil, html)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("after logout: %d", resp.StatusCode)
	}
}

// TestEndToEndHTTPS checks the cookie attributes on a TLS site: the
// __Host- prefix and Secure, with Caddy's internal CA as a user's demo has.
func TestEndToEndHTTPS(t *testing.T) {
	up := echoUpstream(t)
	port := caddyrun.FreePort(t)
	cf := fmt.Sprintf(`{
	admin {ADMIN}
	storage file_system {STORAGE}
	local_certs
	skip_install_trust
	https_port %d
	auto_https disable_redirects
}
localhost {
	adauth {
		local %s
	}
	reverse_proxy %s
}
`, port, demoUsers, strings.TrimPrefix(up.URL, "http://"))
	in := caddyrun.Start(t, cf, caddyrun.Options{})
	roots := x509.NewCertPool()
	var pemBytes []byte
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		pemBytes, _ = os.ReadFile(filepath.Join(in.Storage, "pki", "authorities", "local", "root.crt"))
		if len(pemBytes) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("no internal CA root in storage; log:\n%s", in.Log())
	}
	c := client(t)
	c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}}
	base := fmt.Sprintf("https://localhost:%d", port)
	var resp *http.Response
	for time.Now().Before(deadline) { // the certificate is issued just after start
		req, _ := http.NewRequest("POST", base+"/adauth/login", strings.NewReader(url.Values{"username": {"bob"}, "password": {"demo-bob"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		var err error
		if resp, err = c.Do(req); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if resp == nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("HTTPS sign-in failed; log:\n%s", in.Log())
	}
	sc := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"__Host-adauth=", "Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	if strings.Contains(strings.ToLower(sc), "domain=") {
		t.Errorf("Set-Cookie %q has a Domain", sc)
	}
	resp, body := do(t, c, "GET", base+"/x", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"X-Remote-User":["bob"]`) {
		t.Fatalf("HTTPS request with the session: %d %s", resp.StatusCode, body)
	}
}
