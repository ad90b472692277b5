package adauth

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-adauth/adauth/groups"
)

// fakeBackend is a password backend for handler tests that are not about a
// backend: it accepts one user and counts calls.
type fakeBackend struct {
	user, password string
	groups         []string
	err            error
	calls          atomic.Int64
}

func (f *fakeBackend) Authenticate(_ context.Context, u, p string) (groups.Identity, bool, error) {
	f.calls.Add(1)
	if f.err != nil {
		return groups.Identity{}, false, f.err
	}
	if strings.EqualFold(u, f.user) && p == f.password {
		id := groups.Identity{ID: strings.ToLower(u), Email: f.user + "@hospital.example", GivenName: "Alice", FamilyName: "Andersen"}
		for _, g := range f.groups {
			id.Groups = append(id.Groups, groups.Group{Name: g})
		}
		return id, true, nil
	}
	return groups.Identity{}, false, nil
}

func newTestHandler(t testing.TB, mutate func(*Handler), backends ...*passwordBackend) *Handler {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	h := &Handler{SessionKeys: []string{testKey}, Public: []string{"/static/*"}}
	if mutate != nil {
		mutate(h)
	}
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	h.logger = zap.NewNop()
	if len(backends) == 0 {
		backends = []*passwordBackend{{name: "local", impl: &fakeBackend{user: "alice", password: "right", groups: []string{"physics"}}, sem: make(chan struct{}, 2)}}
	}
	h.passwords = backends
	t.Cleanup(func() { _ = h.Cleanup() })
	return h
}

// serve runs one request through h the way Caddy's server prepares it and
// returns the response and the request the next handler saw (nil if none).
func serve(h *Handler, r *http.Request) (*httptest.ResponseRecorder, *http.Request) {
	w := httptest.NewRecorder()
	repl := caddy.NewReplacer()
	r = caddyhttp.PrepareRequest(r, repl, w, nil)
	var seen *http.Request
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		seen = r
		w.WriteHeader(http.StatusOK)
		return nil
	})
	if err := h.ServeHTTP(w, r, next); err != nil {
		if he, ok := err.(caddyhttp.HandlerError); ok {
			w.Code = he.StatusCode
		} else {
			w.Code = 500
		}
	}
	return w, seen
}

func signedInCookie(t testing.TB, h *Handler, r *http.Request) *http.Cookie {
	t.Helper()
	ss := testSession(h.now())
	w := httptest.NewRecorder()
	if err := h.writeSession(w, r, ss); err != nil {
		t.Fatal(err)
	}
	return w.Result().Cookies()[0]
}

func TestForgedIdentityHeadersAreStripped(t *testing.T) {
	h := newTestHandler(t, nil)
	for _, path := range []string{"/static/app.css", "/protected"} {
		for _, signedIn := range []bool{false, true} {
			r := httptest.NewRequest("GET", path, nil)
			r.Header["X-Remote-User"] = []string{"admin", "root"}
			r.Header["x-remote-user"] = []string{"admin"}
			r.Header["X_Remote_User"] = []string{"admin"}
			r.Header["X-REMOTE-GROUPS"] = []string{"admin"}
			r.Header["X-Remote-Email"] = []string{"admin@evil"}
			if signedIn {
				r.AddCookie(signedInCookie(t, h, r))
			}
			_, seen := serve(h, r)
			if seen == nil {
				if path == "/static/app.css" || signedIn {
					t.Fatalf("%s signedIn=%v: request did not pass", path, signedIn)
				}
				continue
			}
			for k, v := range seen.Header {
				if sameHeaderName(k, "X-Remote-User") || sameHeaderName(k, "X-Remote-Groups") || sameHeaderName(k, "X-Remote-Email") {
					if !signedIn {
						t.Errorf("%s: forged %s: %v reached upstream", path, k, v)
					} else if strings.Contains(strings.Join(v, ","), "admin") && k != "X-Remote-Groups" {
						t.Errorf("%s: forged value in %s: %v", path, k, v)
					}
				}
			}
			if signedIn {
				if got := seen.Header.Values("X-Remote-User"); len(got) != 1 || got[0] != "alice" {
					t.Errorf("%s: X-Remote-User = %v, want [alice]", path, got)
				}
				if got := seen.Header.Get("X-Remote-Groups"); got != "admin,physics" {
					t.Errorf("%s: X-Remote-Groups = %q", path, got)
				}
			}
		}
	}
}

func TestChallenge(t *testing.T) {
	h := newTestHandler(t, func(h *Handler) { h.BasicAuth = &BasicAuthConfig{Realm: "QA"} })
	r := httptest.NewRequest("GET", "/qa/units?x=1", nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml")
	w, seen := serve(h, r)
	if seen != nil || w.Code != http.StatusFound {
		t.Fatalf("browser navigation: status %d, passed=%v", w.Code, seen != nil)
	}
	loc, _ := url.Parse(w.Header().Get("Location"))
	if loc.Path != "/adauth/login" || loc.Query().Get("next") != "/qa/units?x=1" {
		t.Fatalf("Location = %s", w.Header().Get("Location"))
	}

	r = httptest.NewRequest("POST", "/api/data", nil)
	r.Header.Set("Accept", "application/json")
	w, seen = serve(h, r)
	if seen != nil || w.Code != http.StatusUnauthorized {
		t.Fatalf("API call: status %d, passed=%v", w.Code, seen != nil)
	}
	if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Basic realm="QA"`) {
		t.Fatalf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
	}
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["error"] == "" {
		t.Fatalf("401 body %q is not the JSON error", w.Body.String())
	}
}

func TestLoginFlow(t *testing.T) {
	h := newTestHandler(t, nil)
	post := func(form url.Values, headers map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/adauth/login", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range headers {
			r.Header.Set(k, v)
		}
		w, _ := serve(h, r)
		return w
	}
	w := post(url.Values{"username": {"alice"}, "password": {"wrong"}, "next": {"/x"}}, nil)
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "Incorrect username or password") {
		t.Fatalf("wrong password: %d %s", w.Code, w.Body.String())
	}
	if len(w.Result().Cookies()) != 0 {
		t.Fatal("a failed sign-in set a cookie")
	}
	w = post(url.Values{"username": {"ALICE"}, "password": {"right"}, "next": {"//evil.example/"}}, nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
		t.Fatalf("sign-in with open redirect next: %d Location=%q", w.Code, w.Header().Get("Location"))
	}
	w = post(url.Values{"username": {"alice"}, "password": {"right"}, "next": {"/qa/?unit=1"}}, nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/qa/?unit=1" {
		t.Fatalf("sign-in: %d Location=%q", w.Code, w.Header().Get("Location"))
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Name != "adauth" || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteLaxMode || cookies[0].Path != "/" {
		t.Fatalf("session cookie: %+v", cookies)
	}
	// The cookie signs the next request in.
	r := httptest.NewRequest("GET", "/adauth/whoami", nil)
	r.AddCookie(cookies[0])
	w, _ = serve(h, r)
	var who map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &who); err != nil || who["id"] != "alice" || who["backend"] != "local" {
		t.Fatalf("whoami: %d %s", w.Code, w.Body.String())
	}
	if gs, _ := who["groups"].([]any); len(gs) != 1 || gs[0] != "physics" {
		t.Fatalf("whoami groups: %v", who["groups"])
	}
	// Cross-site POST (CSRF) is refused before any backend is asked.
	fb := h.passwords[0].impl.(*fakeBackend)
	before := fb.calls.Load()
	w = post(url.Values{"username": {"alice"}, "password": {"right"}}, map[string]string{"Sec-Fetch-Site": "cross-site"})
	if w.Code != http.StatusForbidden || fb.calls.Load() != before {
		t.Fatalf("cross-site login: %d, backend calls %d", w.Code, fb.calls.Load()-before)
	}
	// Oversized body.
	w = post(url.Values{"username": {"alice"}, "password": {strings.Repeat("x", 20<<10)}}, nil)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d", w.Code)
	}
}

func TestBadInputNeverReachesBackend(t *testing.T) {
	fb := &fakeBackend{user: "alice", password: "right"}
	h := newTestHandler(t, nil, &passwordBackend{name: "ldap", impl: fb, directory: true, sem: make(chan struct{}, 1)})
	for _, c := range []struct{ user, pass string }{
		{"alice", ""},
		{"", "right"},
		{"   ", "right"},
		{"ali\x00ce", "right"},
		{"alice\n", "right\x00"},
		{"ali\x01ce", "right"},
		{"\xff\xfe", "right"},
		{strings.Repeat("a", 300), "right"},
		{strings.Repeat("a", 256) + " ", "right"}, // over the limit as sent, whatever trimming leaves
		{"alice", strings.Repeat("p", 2000)},
	} {
		res := h.signIn(context.Background(), c.user, c.pass, "192.0.2.1")
		if res.outcome != outcomeBad {
			t.Errorf("signIn(%q, %q) = %v", c.user, c.pass, res.outcome)
		}
	}
	if n := fb.calls.Load(); n != 0 {
		t.Fatalf("backend was called %d times for malformed input", n)
	}
}

func TestBackendsTriedInOrder(t *testing.T) {
	down := &fakeBackend{err: context.DeadlineExceeded}
	local := &fakeBackend{user: "breakglass", password: "right"}
	h := newTestHandler(t, nil,
		&passwordBackend{name: "local", impl: local, sem: make(chan struct{}, 1)},
		&passwordBackend{name: "ldap", impl: down, directory: true, sem: make(chan struct{}, 1)},
	)
	if res := h.signIn(context.Background(), "breakglass", "right", "192.0.2.1"); res.outcome != outcomeOK || res.backend != "local" {
		t.Fatalf("local account with the directory down: %v %s", res.outcome, res.reason)
	}
	if res := h.signIn(context.Background(), "alice", "right", "192.0.2.1"); res.outcome != outcomeUnavailable {
		t.Fatalf("directory user with the directory down: %v, want unavailable", res.outcome)
	}
}

func TestThrottle(t *testing.T) {
	fb := &fakeBackend{user: "alice", password: "right"}
	h := newTestHandler(t, func(h *Handler) { h.Throttle = &ThrottleConfig{Failures: 3, Window: caddy.Duration(time.Minute)} },
		&passwordBackend{name: "ldap", impl: fb, directory: true, sem: make(chan struct{}, 1)})
	now := time.Unix(1_800_000_000, 0)
	h.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		if res := h.signIn(context.Background(), "alice", "wrong", "192.0.2.1"); res.outcome != outcomeBad {
			t.Fatalf("attempt %d: %v", i, res.outcome)
		}
	}
	calls := fb.calls.Load()
	for _, u := range []string{"alice", "ALICE", `HOSPITAL\alice`, "alice@hospital.example"} {
		res := h.signIn(context.Background(), u, "right", "198.51.100.7")
		if res.outcome != outcomeThrottled || res.wait <= 0 || res.wait > time.Minute {
			t.Fatalf("%s after 3 failures: %v wait %s", u, res.outcome, res.wait)
		}
	}
	if fb.calls.Load() != calls {
		t.Fatal("a throttled sign-in reached the directory")
	}
	now = now.Add(time.Minute + time.Second)
	if res := h.signIn(context.Background(), "alice", "right", "192.0.2.1"); res.outcome != outcomeOK {
		t.Fatalf("after the window: %v", res.outcome)
	}
	// Password spray from one IP: 4x the per-user limit across users.
	for i := 0; i < 12; i++ {
		h.signIn(context.Background(), "user"+string(rune('a'+i)), "guess", "203.0.113.9")
	}
	if res := h.signIn(context.Background(), "alice", "right", "203.0.113.9"); res.outcome != outcomeThrottled {
		t.Fatalf("spraying IP not throttled: %v", res.outcome)
	}
	if res := h.signIn(context.Background(), "alice", "right", "192.0.2.55"); res.outcome != outcomeOK {
		t.Fatalf("real user from another IP during a spray: %v", res.outcome)
	}
}

// TestThrottleParallel: an attacker who sends many guesses at once gets no
// more of them to the directory than one who sends them in turn; the
// attempts in flight count against the limit before their outcome is known.
func TestThrottleParallel(t *testing.T) {
	fb := &slowBackend{fakeBackend: fakeBackend{user: "alice", password: "right"}, delay: 20 * time.Millisecond}
	h := newTestHandler(t, func(h *Handler) { h.Throttle = &ThrottleConfig{Failures: 5, Window: caddy.Duration(time.Minute)} },
		&passwordBackend{name: "ldap", impl: fb, directory: true, sem: make(chan struct{}, 64)})
	var wg sync.WaitGroup
	var throttled atomic.Int64
	for i := range 100 {
		wg.Go(func() {
			// One user from many addresses, then many users from one.
			if res := h.signIn(t.Context(), "alice", "wrong", fmt.Sprintf("192.0.2.%d", i)); res.outcome == outcomeThrottled {
				throttled.Add(1)
			}
		})
	}
	wg.Wait()
	if n := fb.calls.Load(); n != 5 {
		t.Fatalf("100 parallel guesses for one user: %d reached the backend, want 5", n)
	}
	fb.calls.Store(0)
	for i := range 100 {
		wg.Go(func() { h.signIn(t.Context(), fmt.Sprintf("user%d", i), "wrong", "203.0.113.9") })
	}
	wg.Wait()
	if n := fb.calls.Load(); n != 4*5 {
		t.Fatalf("100 parallel guesses from one address: %d reached the backend, want 20", n)
	}
	if throttled.Load() != 95 {
		t.Fatalf("%d of the first 100 were throttled, want 95", throttled.Load())
	}
}

// slowBackend answers like fakeBackend, after a delay, so that parallel
// attempts overlap.
type slowBackend struct {
	fakeBackend
	delay time.Duration
}

func (s *slowBackend) Authenticate(ctx context.Context, u, p string) (groups.Identity, bool, error) {
	time.Sleep(s.delay)
	return s.fakeBackend.Authenticate(ctx, u, p)
}

func TestCookieNamesFollowTLS(t *testing.T) {
	h := newTestHandler(t, nil)
	r := httptest.NewRequest("GET", "https://qa.hospital.example/", nil)
	r.TLS = &tls.ConnectionState{}
	c := signedInCookie(t, h, r)
	if c.Name != "__Host-adauth" || !c.Secure {
		t.Fatalf("HTTPS cookie: %+v", c)
	}
	// A cookie issued on plain HTTP is not accepted on HTTPS, even renamed.
	plain := httptest.NewRequest("GET", "http://qa.hospital.example/", nil)
	pc := signedInCookie(t, h, plain)
	r2 := httptest.NewRequest("GET", "https://qa.hospital.example/x", nil)
	r2.TLS = &tls.ConnectionState{}
	r2.AddCookie(&http.Cookie{Name: "__Host-adauth", Value: pc.Value})
	if ss, _ := h.currentSession(r2); ss != nil {
		t.Fatal("plain-HTTP cookie accepted on HTTPS")
	}
}

func BenchmarkSessionOpen(b *testing.B) {
	h := newTestHandler(b, nil)
	r := httptest.NewRequest("GET", "/qa/", nil)
	r.AddCookie(signedInCookie(b, h, r))
	b.ReportAllocs()
	for b.Loop() {
		if ss, _ := h.currentSession(r); ss == nil {
			b.Fatal("no session")
		}
	}
}

func BenchmarkServeHTTPSignedIn(b *testing.B) {
	h := newTestHandler(b, nil)
	r := httptest.NewRequest("GET", "/qa/", nil)
	r.AddCookie(signedInCookie(b, h, r))
	r.Header.Set("Accept", "text/html")
	w := httptest.NewRecorder()
	repl := caddy.NewReplacer()
	r = caddyhttp.PrepareRequest(r, repl, w, nil)
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	b.ReportAllocs()
	for b.Loop() {
		if err := h.ServeHTTP(w, r, next); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAmbiguousPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/":                      false,
		"/qa/units/":             false,
		"/static/app.v1.css":     false,
		"/static/../admin/x":     false, // cleaned alike by Caddy and the application
		"/./x":                   false,
		"/..":                    false,
		"/a b/c":                 false,
		"/admin./x":              true,
		"/admin.":                true,
		"/admin /x":              true,
		"/admin\\x":              true,
		"/admin\x00/x":           true,
		"/x\n":                   true,
		"/x\x7f":                 true,
		"/static/report.pdf.":    true,
		"/static/...":            true,
		"/qa/%2e%2e/static/x.js": false, // still escaped: the matcher decodes, then cleans
	} {
		if got := ambiguousPath(p); got != want {
			t.Errorf("ambiguousPath(%q) = %v, want %v", p, got, want)
		}
	}
}

// A user in so many groups that the session would not fit in a cookie is
// refused with a message, never given a cookie the browser drops (which
// would loop them through the login page).
func TestTooManyGroupsForACookie(t *testing.T) {
	var many []string
	for i := 0; i < 400; i++ {
		many = append(many, "application-group-number-"+strings.Repeat("x", 5)+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	h := newTestHandler(t, nil, &passwordBackend{name: "local", impl: &fakeBackend{user: "alice", password: "right", groups: many}, sem: make(chan struct{}, 1)})
	r := httptest.NewRequest("POST", "/adauth/login", strings.NewReader(url.Values{"username": {"alice"}, "password": {"right"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w, _ := serve(h, r)
	if w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 || !strings.Contains(w.Body.String(), "too many groups") {
		t.Fatalf("%d cookies=%d\n%s", w.Code, len(w.Result().Cookies()), w.Body.String())
	}
}

// A panicking backend costs one failed sign-in, not the server, and the
// next backend still answers.
func TestBackendPanicIsContained(t *testing.T) {
	h := newTestHandler(t, nil,
		&passwordBackend{name: "ldap", impl: panicBackend{}, directory: true, sem: make(chan struct{}, 1)},
		&passwordBackend{name: "local", impl: &fakeBackend{user: "breakglass", password: "right"}, sem: make(chan struct{}, 1)},
	)
	if res := h.signIn(context.Background(), "alice", "x", "192.0.2.1"); res.outcome != outcomeUnavailable || !strings.Contains(res.reason, "panicked") {
		t.Fatalf("panicking backend: %v %q", res.outcome, res.reason)
	}
	if res := h.signIn(context.Background(), "breakglass", "right", "192.0.2.1"); res.outcome != outcomeOK {
		t.Fatalf("local after a panicking backend: %v", res.outcome)
	}
}

type panicBackend struct{}

func (panicBackend) Authenticate(context.Context, string, string) (groups.Identity, bool, error) {
	panic("bug in a backend")
}

// identityBackend accepts any password and returns one fixed identity: what
// a directory or token says about a user, unchecked.
type identityBackend struct{ id groups.Identity }

func (b identityBackend) Authenticate(context.Context, string, string) (groups.Identity, bool, error) {
	return b.id, true, nil
}

// A directory's words about a user reach the application without control
// characters; a username with one is refused, never cleaned into another
// user's name.
func TestDirectoryControlCharacters(t *testing.T) {
	login := func(h *Handler) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/adauth/login", strings.NewReader(url.Values{"username": {"alice"}, "password": {"x"}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w, _ := serve(h, r)
		return w
	}
	backend := func(id groups.Identity) *passwordBackend {
		return &passwordBackend{name: "ldap", impl: identityBackend{id}, directory: true, sem: make(chan struct{}, 1)}
	}
	same := func(h *Handler) { h.Groups = &groups.Rules{SameName: true} }

	h := newTestHandler(t, same, backend(groups.Identity{ID: "alice",
		Name: "Alice\r\nX-Remote-User: admin", Email: "alice@hospital.example\x00", GivenName: "Al\tice", FamilyName: "A\x7fndersen",
		Groups: []groups.Group{{Name: "physics"}}}))
	w := login(h)
	if w.Code != http.StatusSeeOther || len(w.Result().Cookies()) != 1 {
		t.Fatalf("sign-in: %d\n%s", w.Code, w.Body.String())
	}
	r := httptest.NewRequest("GET", "/protected", nil)
	r.AddCookie(w.Result().Cookies()[0])
	_, seen := serve(h, r)
	if seen == nil {
		t.Fatal("signed-in request did not pass")
	}
	want := map[string]string{"X-Remote-User": "alice", "X-Remote-Name": "AliceX-Remote-User: admin", "X-Remote-Email": "alice@hospital.example"}
	for k, v := range want {
		if got := seen.Header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	repl := seen.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	for ph, v := range map[string]string{"http.auth.user.given_name": "Alice", "http.auth.user.family_name": "Andersen", "http.auth.user.name": want["X-Remote-Name"]} {
		if got, _ := repl.GetString(ph); got != v {
			t.Errorf("{%s} = %q, want %q", ph, got, v)
		}
	}

	for _, id := range []string{"ali\x01ce", "alice\n", "\x00", "", " alice", "al\xffice"} {
		h := newTestHandler(t, same, backend(groups.Identity{ID: id, Groups: []groups.Group{{Name: "physics"}}}))
		if w := login(h); w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 || !strings.Contains(w.Body.String(), "cannot be used here") {
			t.Errorf("directory username %q: %d, %d cookies\n%s", id, w.Code, len(w.Result().Cookies()), w.Body.String())
		}
	}
}

// JSON configuration does not pass through the Caddyfile parser: Validate
// is what stops a bad one, with a message that names the setting.
func TestValidateRefuses(t *testing.T) {
	users := t.TempDir() + "/users.json"
	if err := os.WriteFile(users, []byte(`{"users": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	local := `"local": {"file": "` + users + `"}, "session_keys": ["` + testKey + `"]`
	cases := map[string]string{
		`{"session_keys": ["` + testKey + `"]}`:                       "at least one backend",
		`{` + local + `, "path_prefix": "auth"}`:                      `path_prefix "auth" must be a plain path`,
		`{` + local + `, "path_prefix": "/auth/*"}`:                   "must be a plain path",
		`{` + local + `, "session_idle": "11h"}`:                      "session_idle (11h0m0s) is longer than session_lifetime (10h0m0s)",
		`{` + local + `, "session_idle": "30s"}`:                      "must be at least 1m",
		`{` + local + `, "session_idle": "30m", "path_prefix": "/a"}`: "",
	}
	for cfg, want := range cases {
		var h Handler
		if err := json.Unmarshal([]byte(cfg), &h); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := h.Provision(ctx)
		if err == nil {
			err = h.Validate()
		}
		_ = h.Cleanup()
		cancel()
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", cfg, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: got %v, want an error with %q", cfg, err, want)
		}
	}
}
