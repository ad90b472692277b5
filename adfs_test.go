package adauth

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-adauth/adauth/groups"
	"github.com/caddy-adauth/adauth/internal/adfstest"
)

const ssoSite = "qa.hospital.example"

var ssoUsers = []adfstest.User{
	{Username: "alice", Password: "pw", GivenName: "Alice", FamilyName: "Andersen", Email: "alice@hospital.example", Groups: []string{"QA-Physicists"}},
	{Username: "bob", Password: "pw", WinAccountName: "bob", Groups: []string{"QA-Physicists", "QA-Admins"}},
	{Username: "carol", Password: "pw"},
	{Username: "nameless", Password: "pw", Omit: []string{"winaccountname"}},
}

type ssoEnv struct {
	t    *testing.T
	emu  *adfstest.Server
	h    *Handler
	logs *observer.ObservedLogs
}

func newSSOEnv(t *testing.T, before func(*adfstest.Server), mutate func(*Handler)) *ssoEnv {
	t.Helper()
	emu := adfstest.New(t, ssoUsers, []adfstest.Client{{ID: "qatrackplus", Secret: "s3cret",
		RedirectURIs: []string{"https://" + ssoSite + "/adauth/callback"}}})
	if before != nil {
		before(emu)
	}
	h := newTestHandler(t, func(h *Handler) {
		h.ADFS = &ADFSConfig{Server: emu.Host, ClientID: "qatrackplus", ClientSecret: "s3cret", RelyingPartyID: "qatrackplus",
			CAFile: emu.CAFile, Button: "Hospital account", SingleLogout: true, retryAfter: time.Millisecond}
		if mutate != nil {
			mutate(h)
		}
	})
	core, logs := observer.New(zap.InfoLevel)
	h.logger = zap.New(core)
	return &ssoEnv{t: t, emu: emu, h: h, logs: logs}
}

func ssoRequest(method, target string, cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest(method, "https://"+ssoSite+target, nil)
	r.TLS = &tls.ConnectionState{}
	r.Header.Set("Accept", "text/html")
	for _, c := range cookies {
		if c != nil {
			r.AddCookie(c)
		}
	}
	return r
}

func cookieNamed(w *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == name && c.MaxAge >= 0 {
			return c
		}
	}
	return nil
}

// start opens /adauth/adfs and returns the authorize URL and flow cookie.
func (e *ssoEnv) start(next string) (string, *http.Cookie) {
	e.t.Helper()
	w, _ := serve(e.h, ssoRequest("GET", "/adauth/adfs?next="+url.QueryEscape(next)))
	if w.Code != http.StatusFound {
		e.t.Fatalf("start: %d %s", w.Code, w.Body.String())
	}
	fc := cookieNamed(w, flowCookieTLS)
	if fc == nil || !fc.HttpOnly || !fc.Secure || fc.MaxAge != 600 {
		e.t.Fatalf("flow cookie: %+v", w.Result().Cookies())
	}
	return w.Header().Get("Location"), fc
}

// callback delivers the provider's redirect to the handler.
func (e *ssoEnv) callback(cb *url.URL, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	e.t.Helper()
	if cb.Host != ssoSite || cb.Path != "/adauth/callback" {
		e.t.Fatalf("provider redirected to %s", cb)
	}
	w, _ := serve(e.h, ssoRequest("GET", cb.RequestURI(), cookies...))
	if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
		e.t.Fatalf("callback answered %d", w.Code)
	}
	return w
}

// signIn runs the whole flow for user and returns the final response.
func (e *ssoEnv) signIn(user, next string) *httptest.ResponseRecorder {
	e.t.Helper()
	authURL, fc := e.start(next)
	cb, err := e.emu.SignIn(authURL, user, "pw")
	if err != nil {
		e.t.Fatal(err)
	}
	return e.callback(cb, fc)
}

func (e *ssoEnv) whoami(sc *http.Cookie) map[string]any {
	e.t.Helper()
	w, _ := serve(e.h, ssoRequest("GET", "/adauth/whoami", sc))
	var who map[string]any
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &who) != nil {
		e.t.Fatalf("whoami: %d %s", w.Code, w.Body.String())
	}
	return who
}

func TestADFSSignIn(t *testing.T) {
	e := newSSOEnv(t, nil, nil)
	for _, tc := range []struct {
		user   string
		groups []string
	}{
		{"alice", []string{"QA-Physicists"}},            // HOSPITAL\alice, group claim a string
		{"bob", []string{"QA-Admins", "QA-Physicists"}}, // bare winaccountname, an array
		{"carol", []string{}},                           // no group claim
	} {
		w := e.signIn(tc.user, "/qa/units?x=1")
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/qa/units?x=1" {
			t.Fatalf("%s: %d Location=%q %s", tc.user, w.Code, w.Header().Get("Location"), w.Body.String())
		}
		if c := w.Result().Cookies(); !slices.ContainsFunc(c, func(c *http.Cookie) bool { return c.Name == flowCookieTLS && c.MaxAge < 0 }) {
			t.Errorf("%s: flow cookie not cleared", tc.user)
		}
		who := e.whoami(cookieNamed(w, sessionCookieTLS))
		var gs []string
		for _, g := range who["groups"].([]any) {
			gs = append(gs, g.(string))
		}
		slices.Sort(gs)
		if who["id"] != tc.user || who["backend"] != "adfs" || !slices.Equal(gs, tc.groups) && len(gs)+len(tc.groups) > 0 {
			t.Errorf("%s: whoami %v", tc.user, who)
		}
	}
	// The tokens and the code never reach the log.
	for _, entry := range e.logs.All() {
		for _, f := range entry.Context {
			if strings.Contains(f.String, "eyJ") {
				t.Errorf("log line carries a token: %v", entry)
			}
		}
	}
	if n := e.logs.FilterMessage("sign-in").FilterField(zap.String("outcome", "success")).Len(); n != 3 {
		t.Errorf("%d success lines, want 3", n)
	}
}

func TestADFSOpenRedirect(t *testing.T) {
	e := newSSOEnv(t, nil, nil)
	for _, next := range []string{"//evil.example/", "https://evil.example/", `/\evil.example`} {
		if w := e.signIn("alice", next); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
			t.Errorf("next=%q: %d Location=%q", next, w.Code, w.Header().Get("Location"))
		}
	}
}

func TestADFSLoginPageAndAutoRedirect(t *testing.T) {
	e := newSSOEnv(t, nil, nil)
	w, _ := serve(e.h, ssoRequest("GET", "/adauth/login?next=/qa/"))
	if !strings.Contains(w.Body.String(), `href="/adauth/adfs?next=%2fqa%2f"`) && !strings.Contains(w.Body.String(), `href="/adauth/adfs?next=%2Fqa%2F"`) ||
		!strings.Contains(w.Body.String(), "Hospital account") {
		t.Fatalf("login page has no SSO button:\n%s", w.Body.String())
	}
	w, _ = serve(e.h, ssoRequest("GET", "/qa/"))
	if loc := w.Header().Get("Location"); !strings.HasPrefix(loc, "/adauth/login") {
		t.Fatalf("without auto_redirect: %s", loc)
	}
	e2 := newSSOEnv(t, nil, func(h *Handler) { h.ADFS.AutoRedirect = true })
	w, _ = serve(e2.h, ssoRequest("GET", "/qa/?u=1"))
	if w.Code != http.StatusFound || w.Header().Get("Location") != "/adauth/adfs?next=%2Fqa%2F%3Fu%3D1" {
		t.Fatalf("auto_redirect: %d %s", w.Code, w.Header().Get("Location"))
	}
	// API calls still get 401.
	r := ssoRequest("GET", "/api/x")
	r.Header.Set("Accept", "application/json")
	if w, _ = serve(e2.h, r); w.Code != http.StatusUnauthorized {
		t.Fatalf("API call with auto_redirect: %d", w.Code)
	}
}

func TestADFSStateChecks(t *testing.T) {
	e := newSSOEnv(t, nil, nil)
	authURL, fc := e.start("/x")
	cb, err := e.emu.SignIn(authURL, "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	before := e.emu.TokenRequests()
	// No flow cookie: another browser, or cookies blocked.
	if w := e.callback(cb); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "start again") {
		t.Fatalf("no flow cookie: %d %s", w.Code, w.Body.String())
	}
	// Another browser's flow cookie.
	_, other := e.start("/y")
	if w := e.callback(cb, other); w.Code != http.StatusBadRequest {
		t.Fatalf("other browser's flow cookie: %d", w.Code)
	}
	// Tampered state.
	bad := *cb
	q := bad.Query()
	q.Set("state", q.Get("state")+"x")
	bad.RawQuery = q.Encode()
	if w := e.callback(&bad, fc); w.Code != http.StatusBadRequest {
		t.Fatalf("tampered state: %d", w.Code)
	}
	// Tampered cookie.
	if w := e.callback(cb, &http.Cookie{Name: fc.Name, Value: fc.Value[:len(fc.Value)-2] + "AA"}); w.Code != http.StatusBadRequest {
		t.Fatalf("tampered flow cookie: %d", w.Code)
	}
	// Missing state.
	q = cb.Query()
	q.Del("state")
	bad.RawQuery = q.Encode()
	if w := e.callback(&bad, fc); w.Code != http.StatusBadRequest {
		t.Fatalf("missing state: %d", w.Code)
	}
	if e.emu.TokenRequests() != before {
		t.Fatal("a callback with a bad state reached the token endpoint")
	}
	// The real one works once; a replay (same code, same old cookie value)
	// fails at the token endpoint with a clear page.
	if w := e.callback(cb, fc); w.Code != http.StatusSeeOther {
		t.Fatalf("genuine callback: %d %s", w.Code, w.Body.String())
	}
	if w := e.callback(cb, fc); w.Code != http.StatusBadRequest || cookieNamed(w, sessionCookieTLS) != nil {
		t.Fatalf("replayed code: %d", w.Code)
	}
	// An expired flow cookie.
	authURL, fc = e.start("/x")
	cb, _ = e.emu.SignIn(authURL, "alice", "pw")
	e.h.now = func() time.Time { return time.Now().Add(11 * time.Minute) }
	if w := e.callback(cb, fc); w.Code != http.StatusBadRequest {
		t.Fatalf("expired flow: %d", w.Code)
	}
	e.h.now = time.Now
}

func TestADFSRefusals(t *testing.T) {
	e := newSSOEnv(t, nil, nil)
	for _, tc := range []struct {
		name   string
		user   string
		setup  func()
		status int
		text   string
	}{
		{"access denied", "alice", func() { e.emu.SetAuthorizeError("access_denied") }, 403, "refused access"},
		{"other provider error", "alice", func() { e.emu.SetAuthorizeError("server_error") }, 400, "server_error"},
		{"missing username claim", "nameless", nil, 403, "claim is missing"},
		{"wrong audience", "alice", func() {
			e.emu.SetTokenHook(func(a, _ map[string]any) { a["aud"] = "microsoft:identityserver:other" })
		}, 403, "could not be verified"},
		{"wrong issuer", "alice", func() {
			e.emu.SetTokenHook(func(a, _ map[string]any) { a["iss"] = "http://evil.example/adfs/services/trust" })
		}, 403, "could not be verified"},
		{"expired token", "alice", func() { e.emu.SetLifetime(-10 * time.Minute) }, 403, "clocks"},
		{"skew beyond leeway", "alice", func() { e.emu.SetSkew(10 * time.Minute) }, 403, "clocks"},
		{"skew within leeway", "alice", func() { e.emu.SetSkew(time.Minute) }, 303, ""},
	} {
		if tc.setup != nil {
			tc.setup()
		}
		w := e.signIn(tc.user, "/x")
		e.emu.SetAuthorizeError("")
		e.emu.SetTokenHook(nil)
		e.emu.SetLifetime(time.Hour)
		e.emu.SetSkew(0)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.text) {
			t.Errorf("%s: %d %s", tc.name, w.Code, w.Body.String())
		}
		if tc.status != 303 && cookieNamed(w, sessionCookieTLS) != nil {
			t.Errorf("%s: a session was set", tc.name)
		}
	}
	if e.logs.FilterField(zap.String("outcome", "refused")).Len() == 0 {
		t.Error("refusals were not logged")
	}
}

func TestADFSQualify(t *testing.T) {
	e := newSSOEnv(t, nil, func(h *Handler) {
		h.Groups = &groups.Rules{Qualify: []string{"QA-Physicists"}, Maps: []groups.Map{{From: "QA-Admins", To: []string{"admin"}}, {From: "QA-Physicists", To: []string{"physics"}}}}
	})
	if w := e.signIn("carol", "/x"); w.Code != http.StatusForbidden || cookieNamed(w, sessionCookieTLS) != nil {
		t.Fatalf("unqualified user: %d", w.Code)
	}
	w := e.signIn("bob", "/x")
	who := e.whoami(cookieNamed(w, sessionCookieTLS))
	if gs, _ := json.Marshal(who["groups"]); string(gs) != `["admin","physics"]` {
		t.Fatalf("mapped groups: %s", gs)
	}
}

func TestADFSKeyRotationMidSession(t *testing.T) {
	e := newSSOEnv(t, nil, nil)
	sc := cookieNamed(e.signIn("alice", "/x"), sessionCookieTLS)
	e.emu.Rotate(t, false)
	if who := e.whoami(sc); who["id"] != "alice" {
		t.Fatal("session lost on rotation")
	}
	if w := e.signIn("bob", "/x"); w.Code != http.StatusSeeOther {
		t.Fatalf("sign-in after rotation: %d %s", w.Code, w.Body.String())
	}
}

func TestADFSDownAtStartThenUp(t *testing.T) {
	e := newSSOEnv(t, func(s *adfstest.Server) { s.SetDown(true) }, nil)
	w, _ := serve(e.h, ssoRequest("GET", "/adauth/adfs?next=/x"))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "could not be reached") {
		t.Fatalf("down: %d %s", w.Code, w.Body.String())
	}
	e.emu.SetDown(false)
	time.Sleep(5 * time.Millisecond)
	if w := e.signIn("alice", "/x"); w.Code != http.StatusSeeOther {
		t.Fatalf("up again: %d %s", w.Code, w.Body.String())
	}
	// Down between start and callback: 503, not 500.
	authURL, fc := e.start("/x")
	cb, _ := e.emu.SignIn(authURL, "alice", "pw")
	e.emu.SetDown(true)
	if w := e.callback(cb, fc); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("down at the callback: %d", w.Code)
	}
}

func TestADFSSingleLogout(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		e := newSSOEnv(t, func(s *adfstest.Server) { s.SetLegacy(legacy) }, nil)
		w := e.signIn("alice", "/x")
		if w.Code != http.StatusSeeOther {
			t.Fatalf("legacy=%v sign-in: %d %s", legacy, w.Code, w.Body.String())
		}
		sc := cookieNamed(w, sessionCookieTLS)
		w, _ = serve(e.h, ssoRequest("POST", "/adauth/logout", sc))
		loc, _ := url.Parse(w.Header().Get("Location"))
		if w.Code != http.StatusSeeOther || loc.Host != e.emu.Host {
			t.Fatalf("legacy=%v logout: %d %s", legacy, w.Code, loc)
		}
		if !slices.ContainsFunc(w.Result().Cookies(), func(c *http.Cookie) bool { return c.Name == sessionCookieTLS && c.MaxAge < 0 }) {
			t.Fatal("session cookie not cleared")
		}
		back := "https://" + ssoSite + "/adauth/login?signed_out=1"
		path := "/adfs/oauth2/logout"
		if legacy {
			path = "/adfs/ls/"
			if loc.Query().Get("wa") != "wsignout1.0" || loc.Query().Get("wreply") != back {
				t.Fatalf("2012 sign-out URL: %s", loc)
			}
		} else if loc.Query().Get("post_logout_redirect_uri") != back || loc.Query().Get("client_id") != "qatrackplus" {
			t.Fatalf("end_session URL: %s", loc)
		}
		resp, err := e.emu.Client().Get(loc.String())
		if err == nil {
			resp.Body.Close()
		}
		if len(e.emu.Hits(path)) != 1 {
			t.Fatalf("legacy=%v: %s not hit", legacy, path)
		}
	}
	// A local user's logout stays local.
	e := newSSOEnv(t, nil, nil)
	r := ssoRequest("POST", "/adauth/logout")
	r.AddCookie(signedInCookie(t, e.h, r))
	if w, _ := serve(e.h, r); w.Header().Get("Location") != "/adauth/login?signed_out=1" {
		t.Fatalf("local logout: %s", w.Header().Get("Location"))
	}
}

func TestADFS2012Metadata(t *testing.T) {
	e := newSSOEnv(t, func(s *adfstest.Server) { s.SetLegacy(true) }, nil)
	w := e.signIn("bob", "/x")
	if w.Code != http.StatusSeeOther {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	if who := e.whoami(cookieNamed(w, sessionCookieTLS)); who["id"] != "bob" {
		t.Fatalf("%v", who)
	}
}

func TestSSOGenericOIDC(t *testing.T) {
	e := newSSOEnv(t, func(s *adfstest.Server) { s.SetGeneric(true) }, func(h *Handler) {
		h.ADFS.Issuer = "https://" + h.ADFS.Server + "/adfs"
		h.ADFS.Server, h.ADFS.RelyingPartyID = "", ""
	})
	if e.h.sso.client.IsADFS() {
		t.Fatal("issuer mode expected")
	}
	w := e.signIn("bob", "/x")
	if w.Code != http.StatusSeeOther {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	who := e.whoami(cookieNamed(w, sessionCookieTLS))
	if who["id"] != "bob" || len(who["groups"].([]any)) != 2 {
		t.Fatalf("%v", who)
	}
}

func TestSSOMethodNotAllowed(t *testing.T) {
	e := newSSOEnv(t, nil, nil)
	if w, _ := serve(e.h, ssoRequest("POST", "/adauth/callback")); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST callback: %d", w.Code)
	}
}

func TestCheckADFS(t *testing.T) {
	emu := adfstest.New(t, ssoUsers, nil)
	var out strings.Builder
	cfg := &ADFSConfig{Server: emu.Host, ClientID: "qatrackplus", CAFile: emu.CAFile, SingleLogout: true}
	if err := checkADFS(t.Context(), &out, cfg); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "ok    discovery") || !strings.Contains(out.String(), emu.KeyID()) || !strings.Contains(out.String(), "clock skew") {
		t.Fatalf("output:\n%s", out.String())
	}
	emu.SetLegacy(true)
	out.Reset()
	if err := checkADFS(t.Context(), &out, cfg); err != nil || !strings.Contains(out.String(), "2012 R2") {
		t.Fatalf("legacy: %v\n%s", err, out.String())
	}
	emu.SetDown(true)
	out.Reset()
	if err := checkADFS(t.Context(), &out, &ADFSConfig{Server: emu.Host, ClientID: "x", CAFile: emu.CAFile}); err == nil {
		t.Fatal("down provider passed the check")
	}
	// Without ca_file the emulator's private CA is not trusted.
	emu.SetDown(false)
	if err := checkADFS(t.Context(), &out, &ADFSConfig{Server: emu.Host, ClientID: "x"}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted CA: %v", err)
	}
	blocks, err := findADFSBlocks([]byte(`{"apps":{"http":{"servers":{"s":{"routes":[{"handle":[{"handler":"adauth","adfs":{"server":"adfs.example","client_id":"qa"}}]}]}}}}}`))
	if err != nil || len(blocks) != 1 || blocks[0].Server != "adfs.example" {
		t.Fatalf("findADFSBlocks: %v %v", blocks, err)
	}
}

func TestParseADFS(t *testing.T) {
	// Errors must name the line (caddy adapt shows it).
	for _, tc := range []struct{ in, want string }{
		{"adfs {\n server a\n bogus x\n}", "unknown adfs subdirective"},
		{"adfs {\n client_id x\n}", "server (AD FS host) or issuer"},
		{"adfs {\n server a\n issuer https://b\n client_id x\n}", "not both"},
		{"adfs {\n server a\n}", "client_id"},
		{"adfs {\n server a\n client_id\n}", "wrong argument count"},
		{"adfs {\n server a\n client_id x\n claim email\n}", "claim takes"},
		{"adfs {\n server a\n client_id x\n claim phone tel\n}", "unknown identity field"},
		{"adfs {\n server a\n client_id x\n leeway soon\n}", "bad duration"},
		{"adfs {\n server a\n client_id x\n auto_redirect yes\n}", "wrong argument count"},
		{"adfs {\n issuer http://idp.example\n client_id x\n}", "https URL"},
		{"adfs {\n server adfs.example/adfs\n client_id x\n}", "host name"},
	} {
		d := caddyfile.NewTestDispenser(tc.in)
		d.Next()
		_, err := parseADFS(d)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Testfile:") {
			t.Errorf("%q: err = %v, want %q with a line", tc.in, err, tc.want)
		}
	}
	d := caddyfile.NewTestDispenser("adfs {\n server adfs.hospital.example\n client_id qa\n username_claim winaccountname upn\n claim email mail\n leeway 90s\n auto_redirect\n single_logout\n scopes openid allatclaims\n}")
	d.Next()
	c, err := parseADFS(d)
	if err != nil || !c.AutoRedirect || !c.SingleLogout || len(c.UsernameClaim) != 2 || c.Claims["email"] != "mail" || time.Duration(c.Leeway) != 90*time.Second {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestSSORefreshAccount(t *testing.T) {
	e := newSSOEnv(t, nil, nil)
	w := e.signIn("alice", "/x")
	ss, _ := e.h.currentSession(ssoRequest("GET", "/", cookieNamed(w, sessionCookieTLS)))
	if ss == nil || ss.Refresh == "" {
		t.Fatal("no refresh token in the session")
	}
	e.emu.AddUser(adfstest.User{Username: "alice", Password: "pw", Groups: []string{"QA-Admins", "QA-Staff"}})
	got, err := lookupRefresh(t, e.h.sso, ss.Refresh)
	if err != nil || len(got.identity.Groups) != 2 || got.refresh == "" {
		t.Fatalf("refresh: %v %+v", err, got)
	}
	_, err = lookupRefresh(t, e.h.sso, "revoked")
	var um userMessenger
	if !errors.As(err, &um) {
		t.Fatalf("revoked refresh token: %v", err)
	}
	e.emu.SetDown(true)
	if _, err = lookupRefresh(t, e.h.sso, ss.Refresh); err == nil || errors.As(err, &um) {
		t.Fatalf("down provider must not end the session: %v", err)
	}
}

// lookupRefresh runs the re-check's AD FS look-up for a session holding
// the refresh token.
func lookupRefresh(t *testing.T, b *ssoBackend, refresh string) (identityRefresh, error) {
	id, rt, err := b.lookupAccount(t.Context(), &session{ID: "x", Backend: "adfs", Refresh: refresh})
	return identityRefresh{id, rt}, err
}

type identityRefresh struct {
	identity groups.Identity
	refresh  string
}
