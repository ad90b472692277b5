package adauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-adauth/adauth/groups"
	"github.com/caddy-adauth/adauth/internal/sambadc"
	"github.com/caddy-adauth/adauth/internal/serverproc"
	"github.com/caddy-adauth/adauth/internal/slapdtest"
)

// These tests run the real handler (Provision included) against real
// directory servers: Samba AD DCs and OpenLDAP.

type ldapHandler struct {
	t    *testing.T
	h    *Handler
	logs *observer.ObservedLogs
}

func newLDAPHandler(t *testing.T, cfg *LDAPConfig, mutate func(*Handler)) *ldapHandler {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	h := &Handler{
		SessionKeys: []string{testKey},
		BasicAuth:   &BasicAuthConfig{},
		LDAP:        cfg,
		// The tests make many failed sign-ins from one client address.
		Throttle: &ThrottleConfig{Failures: 1000, Window: caddy.Duration(time.Minute)},
		// A group name with a comma cannot pass through as an application
		// group (identity headers are comma-separated): it is mapped, by
		// its CN, which is what these tests check.
		Groups: &groups.Rules{Maps: []groups.Map{{From: "QA-Radiology, Nuclear", To: []string{"radiology"}}}, SameName: true},
	}
	if mutate != nil {
		mutate(h)
	}
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	h.logger = zap.New(core)
	t.Cleanup(func() { _ = h.Cleanup() })
	return &ldapHandler{t: t, h: h, logs: logs}
}

func (lh *ldapHandler) login(username, password string) *httptest.ResponseRecorder {
	form := url.Values{"username": {username}, "password": {password}, "next": {"/qa/"}}
	r := httptest.NewRequest("POST", "/adauth/login", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w, _ := serve(lh.h, r)
	return w
}

type whoami struct {
	ID, Email, Name, Backend string
	Groups                   []string
}

// signIn signs in and returns whoami.
func (lh *ldapHandler) signIn(username, password string) whoami {
	lh.t.Helper()
	w := lh.login(username, password)
	if w.Code != http.StatusSeeOther {
		lh.t.Fatalf("%q: status %d: %s", username, w.Code, pageMessage(w.Body.String()))
	}
	r := httptest.NewRequest("GET", "/adauth/whoami", nil)
	for _, c := range w.Result().Cookies() {
		r.AddCookie(c)
	}
	w, _ = serve(lh.h, r)
	var who whoami
	if err := json.Unmarshal(w.Body.Bytes(), &who); err != nil {
		lh.t.Fatalf("whoami: %d %s", w.Code, w.Body.String())
	}
	return who
}

// pageMessage is a short excerpt of a login page for failure messages.
func pageMessage(body string) string {
	if len(body) > 300 {
		body = body[:300]
	}
	return body
}

func (lh *ldapHandler) wantRefused(username, password string, status int, words string) {
	lh.t.Helper()
	w := lh.login(username, password)
	if w.Code != status || !strings.Contains(w.Body.String(), words) || len(w.Result().Cookies()) != 0 {
		lh.t.Errorf("%q: status %d (want %d), page has %q: %v", username, w.Code, status, words, strings.Contains(w.Body.String(), words))
	}
}

func (lh *ldapHandler) loggedReason(words string) bool {
	for _, e := range lh.logs.All() {
		for _, f := range e.Context {
			if f.Key == "reason" && strings.Contains(f.String, words) {
				return true
			}
		}
	}
	return false
}

func sambaLDAPConfig(dc *sambadc.DC) *LDAPConfig {
	return &LDAPConfig{
		URL: []string{dc.LDAPSURL}, CAFile: dc.CAFile,
		Domain: dc.Domain, UPNSuffix: dc.UPNSuffix, BaseDN: dc.BaseDN,
		BindDN: dc.ServiceDN, BindPassword: "{env.ADAUTH_TEST_LDAP_PASSWORD}",
		Timeout: caddy.Duration(3 * time.Second),
	}
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}

func TestLDAPE2ESamba(t *testing.T) {
	dc := sambadc.Start(t)
	t.Setenv("ADAUTH_TEST_LDAP_PASSWORD", dc.ServicePassword)
	lh := newLDAPHandler(t, sambaLDAPConfig(dc), nil)

	t.Run("username forms", func(t *testing.T) {
		for _, typed := range []string{"alice", "ALICE", `HOSPITAL\alice`, "alice@hospital.test"} {
			start := time.Now()
			who := lh.signIn(typed, sambadc.Alice.Password)
			if who.ID != "alice" || who.Backend != "ldap" || !containsFold(who.Groups, "QA-Physicists") ||
				!containsFold(who.Groups, "radiology") {
				t.Fatalf("%q: %+v", typed, who)
			}
			t.Logf("%q signed in as %s in %v, groups %q", typed, who.ID, time.Since(start), who.Groups)
		}
	})

	t.Run("groups and names", func(t *testing.T) {
		if who := lh.signIn("bob", sambadc.Bob.Password); !containsFold(who.Groups, "QA-Therapists") {
			t.Errorf("bob: %+v", who)
		}
		if who := lh.signIn("jürgen", sambadc.Juergen.Password); who.ID != "jürgen" {
			t.Errorf("jürgen: %+v", who)
		}
		if who := lh.signIn("mallory", sambadc.MalloryPassword); who.ID != "mallory" {
			t.Errorf("mallory: %+v", who)
		}
	})

	t.Run("account states", func(t *testing.T) {
		lh.wantRefused("dave", sambadc.Dave.Password, http.StatusForbidden, "Your account is disabled")
		lh.wantRefused("erin", sambadc.Erin.Password, http.StatusForbidden, "hospital PC")
		lh.wantRefused("frank", sambadc.Frank.Password, http.StatusForbidden, "Your password has expired")
		lh.wantRefused("grace", sambadc.Grace.Password, http.StatusForbidden, "Your account has expired")
		for range sambadc.LockoutThreshold {
			lh.wantRefused("heidi", "Wrong.Pass", http.StatusUnauthorized, "Incorrect username or password")
		}
		lh.wantRefused("heidi", sambadc.Heidi.Password, http.StatusForbidden, "locked")
	})

	t.Run("bad input is generic", func(t *testing.T) {
		for _, c := range []struct{ u, p string }{
			{"alice", "wrong"}, {"nobody", "x"}, {"*", sambadc.Alice.Password}, {"admin)(|(uid=*", "x"},
			{"alice)(|(sAMAccountName=*", sambadc.Alice.Password}, {`OTHER\alice`, sambadc.Alice.Password},
			{"alice", " "}, {"alice", "\t"},
		} {
			lh.wantRefused(c.u, c.p, http.StatusUnauthorized, "Incorrect username or password")
		}
		lh.wantRefused("alice", "", http.StatusUnauthorized, "")
	})

	t.Run("basic auth", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/api/units", nil)
		r.SetBasicAuth(`HOSPITAL\alice`, sambadc.Alice.Password)
		w, seen := serve(lh.h, r)
		if seen == nil || seen.Header.Get("X-Remote-User") != "alice" {
			t.Fatalf("basic: %d %s", w.Code, w.Body.String())
		}
		// HTTP Basic checks may be answered from the credential cache.
		impl := lh.h.passwords[0].impl
		var took [3]time.Duration
		for i, ctx := range []context.Context{t.Context(), withBasicAuth(t.Context()), withBasicAuth(t.Context())} {
			start := time.Now()
			if _, ok, err := impl.Authenticate(ctx, "carol", sambadc.Carol.Password); !ok || err != nil {
				t.Fatal(ok, err)
			}
			took[i] = time.Since(start)
		}
		t.Logf("form check %v, first basic check %v, cached basic check %v", took[0], took[1], took[2])
		if took[2] > took[1]/5 {
			t.Errorf("cached basic check not faster: %v", took)
		}
		r = httptest.NewRequest("GET", "/api/units", nil)
		r.SetBasicAuth("alice", "wrong")
		if w, seen := serve(lh.h, r); seen != nil || w.Code != http.StatusUnauthorized {
			t.Fatalf("basic wrong: %d", w.Code)
		}
	})

	t.Run("starttls", func(t *testing.T) {
		c := sambaLDAPConfig(dc)
		c.URL, c.StartTLS = []string{dc.LDAPURL}, true
		if who := newLDAPHandler(t, c, nil).signIn("alice", sambadc.Alice.Password); who.ID != "alice" {
			t.Fatal(who)
		}
	})

	t.Run("wrong CA", func(t *testing.T) {
		c := sambaLDAPConfig(dc)
		c.CAFile = dc.PKI.Other().CAFile
		bad := newLDAPHandler(t, c, nil)
		bad.wantRefused("alice", sambadc.Alice.Password, http.StatusServiceUnavailable, "could not be reached")
		if !bad.loggedReason("certificate") {
			t.Errorf("log does not say certificate: %v", bad.logs.All())
		}
	})

	t.Run("dead first URL", func(t *testing.T) {
		c := sambaLDAPConfig(dc)
		c.URL = []string{"ldaps://127.0.0.1:1", dc.LDAPSURL}
		start := time.Now()
		newLDAPHandler(t, c, nil).signIn("alice", sambadc.Alice.Password)
		t.Logf("dead first URL: signed in via the second in %v", time.Since(start))
	})

	t.Run("all dead", func(t *testing.T) {
		c := sambaLDAPConfig(dc)
		c.URL = []string{"ldaps://127.0.0.1:1", "ldaps://127.0.0.1:2"}
		dead := newLDAPHandler(t, c, nil)
		dead.wantRefused("alice", sambadc.Alice.Password, http.StatusServiceUnavailable, "could not be reached")
		r := httptest.NewRequest("GET", "/api/units", nil)
		r.SetBasicAuth("alice", sambadc.Alice.Password)
		if w, seen := serve(dead.h, r); seen != nil || w.Code != http.StatusServiceUnavailable {
			t.Fatalf("basic with all DCs dead: %d passed=%v", w.Code, seen != nil)
		}
	})

	t.Run("slow DC", func(t *testing.T) {
		c := sambaLDAPConfig(dc)
		c.Timeout = caddy.Duration(time.Second)
		c.URL = []string{"ldaps://" + serverproc.SilentListener(t)}
		slow := newLDAPHandler(t, c, nil)
		start := time.Now()
		slow.wantRefused("alice", sambadc.Alice.Password, http.StatusServiceUnavailable, "could not be reached")
		took := time.Since(start)
		t.Logf("silent DC, timeout 1s: 503 after %v", took)
		if took > 2500*time.Millisecond {
			t.Fatalf("took %v", took)
		}
		c.URL = append(c.URL, dc.LDAPSURL)
		start = time.Now()
		newLDAPHandler(t, c, nil).signIn("alice", sambadc.Alice.Password)
		t.Logf("silent first DC, second used: %v", time.Since(start))
	})

	t.Run("concurrent", func(t *testing.T) {
		const n = 32
		one, wall := lh.burst("carol", sambadc.Carol.Password, n)
		t.Logf("through the handler: one sign-in %v, %d concurrent %v wall (serial ~%v)", one, n, wall, n*one)
	})
}

// burst times one sign-in (the mean of five), then n at once through the
// handler, each of which must succeed.
func (lh *ldapHandler) burst(username, password string, n int) (one, wall time.Duration) {
	start := time.Now()
	for range 5 {
		lh.signIn(username, password)
	}
	one = time.Since(start) / 5
	var wg sync.WaitGroup
	codes := make(chan int, n)
	start = time.Now()
	for range n {
		wg.Go(func() { codes <- lh.login(username, password).Code })
	}
	wg.Wait()
	wall = time.Since(start)
	close(codes)
	for c := range codes {
		if c != http.StatusSeeOther {
			lh.t.Errorf("concurrent sign-in of %s: status %d", username, c)
		}
	}
	return one, wall
}

func TestLDAPE2ESlapd(t *testing.T) {
	s := slapdtest.Start(t)
	cfg := &LDAPConfig{
		URL: []string{s.LDAPSURL}, CAFile: s.CAFile, Flavor: "openldap",
		BaseDN: s.BaseDN, BindDN: s.ServiceDN, BindPassword: s.ServicePassword,
	}
	lh := newLDAPHandler(t, cfg, nil)
	who := lh.signIn("alice", slapdtest.Alice.Password)
	if who.ID != "alice" || !containsFold(who.Groups, "radiology") || !containsFold(who.Groups, "QA-Physicists") {
		t.Fatalf("alice: %+v", who)
	}
	lh.signIn("ALICE", slapdtest.Alice.Password)
	if who := lh.signIn("bob", slapdtest.Bob.Password); !containsFold(who.Groups, "QA-Therapists") {
		t.Errorf("bob nested: %+v", who)
	}
	if who := lh.signIn("jürgen", slapdtest.Juergen.Password); who.ID != "jürgen" {
		t.Errorf("jürgen: %+v", who)
	}
	lh.signIn("mallory", slapdtest.MalloryPassword)
	lh.wantRefused("dave", slapdtest.Dave.Password, http.StatusForbidden, "locked")
	lh.wantRefused("erin", slapdtest.Erin.Password, http.StatusForbidden, "must be changed")
	lh.wantRefused("frank", slapdtest.Frank.Password, http.StatusForbidden, "expired")
	for _, c := range []struct{ u, p string }{
		{"alice", "wrong"}, {"nobody", "x"}, {"*", slapdtest.Alice.Password}, {"admin)(|(uid=*", "x"}, {"alice", " "},
	} {
		lh.wantRefused(c.u, c.p, http.StatusUnauthorized, "Incorrect username or password")
	}
	for range slapdtest.LockoutThreshold {
		lh.wantRefused("heidi", "Wrong.Pass", http.StatusUnauthorized, "Incorrect username or password")
	}
	lh.wantRefused("heidi", slapdtest.Heidi.Password, http.StatusForbidden, "locked")

	st := *cfg
	st.URL, st.StartTLS = []string{s.URL}, true
	newLDAPHandler(t, &st, nil).signIn("alice", slapdtest.Alice.Password)

	// slapd answers in parallel, so here the client-side parallelism shows.
	const n = 32
	one, wall := lh.burst("carol", slapdtest.Carol.Password, n)
	t.Logf("slapd through the handler: one sign-in %v, %d concurrent %v wall (serial ~%v)", one, n, wall, n*one)
}

func TestCheckLDAPCommand(t *testing.T) {
	dc := sambadc.Start(t)
	t.Setenv("ADAUTH_TEST_LDAP_PASSWORD", dc.ServicePassword)
	run := func(t *testing.T, caddyfile, stdin string, args ...string) (string, error) {
		t.Helper()
		f := t.TempDir() + "/Caddyfile"
		if err := os.WriteFile(f, []byte(caddyfile), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := newCheckLDAPCmd()
		var out strings.Builder
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetIn(strings.NewReader(stdin))
		cmd.SetArgs(append([]string{"--config", f, "--adapter", "caddyfile"}, args...))
		err := cmd.Execute()
		return out.String(), err
	}
	caddyfile := func(ca string, urls ...string) string {
		return `:8080 {
	adauth {
		session_key "0123456789abcdef0123456789abcdef-check"
		ldap {
			url ` + strings.Join(urls, " ") + `
			ca_file ` + ca + `
			domain HOSPITAL
			upn_suffix hospital.test
			base_dn "DC=hospital,DC=test"
			bind_dn "` + dc.ServiceDN + `"
			bind_password {env.ADAUTH_TEST_LDAP_PASSWORD}
		}
		groups {
			map "QA-Physicists" physics
			map "CN=QA-Radiology\, Nuclear,OU=Groups,DC=hospital,DC=test" radiology
			default everyone
		}
	}
	respond ok
}
`
	}
	out, err := run(t, caddyfile(dc.CAFile, dc.LDAPSURL), sambadc.Alice.Password+"\n", "--user", `HOSPITAL\alice`, "-v")
	t.Logf("check-ldap output:\n%s", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"certificate valid for 127.0.0.", "service account bound", "QA-Radiology, Nuclear",
		`sign-in as HOSPITAL\alice succeeded`, "all checks passed", "· ldap: bind",
		"application groups (after the groups rules): everyone, physics, radiology"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, dc.ServicePassword) || strings.Contains(out, sambadc.Alice.Password) {
		t.Fatal("a secret was printed")
	}

	out, err = run(t, caddyfile(dc.PKI.Other().CAFile, "ldaps://127.0.0.1:1", dc.LDAPSURL), "")
	t.Logf("check-ldap output (wrong CA, dead DC):\n%s", out)
	if err == nil || !strings.Contains(out, "certificate not trusted: the DC's certificate is signed by an authority not in ca_file") ||
		!strings.Contains(out, "connect 127.0.0.1:1") {
		t.Fatalf("err=%v", err)
	}

	out, err = run(t, caddyfile(dc.CAFile, dc.LDAPSURL), sambadc.Dave.Password+"\n", "--user", "dave")
	if err == nil || !strings.Contains(out, "Your account is disabled") {
		t.Fatalf("dave: err=%v\n%s", err, out)
	}
}

// TestLDAPE2ERecheck: a signed-in directory user whose account is disabled
// in AD loses the session at the next re-check (the Lookup path).
func TestLDAPE2ERecheck(t *testing.T) {
	dc := sambadc.Start(t)
	t.Setenv("ADAUTH_TEST_LDAP_PASSWORD", dc.ServicePassword)
	lh := newLDAPHandler(t, sambaLDAPConfig(dc), func(h *Handler) {
		d := caddy.Duration(time.Second)
		h.Recheck = &d
	})
	w := lh.login("carol", sambadc.Carol.Password)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", w.Code)
	}
	cookies := w.Result().Cookies()
	get := func() int {
		r := httptest.NewRequest("GET", "/api/units", nil)
		r.Header.Set("Accept", "application/json")
		for _, c := range cookies {
			r.AddCookie(c)
		}
		w, seen := serve(lh.h, r)
		if nc := w.Result().Cookies(); len(nc) > 0 {
			cookies = nc // the browser keeps the re-issued cookie
		}
		if seen != nil {
			return http.StatusOK
		}
		return w.Code
	}
	// Re-checks of a healthy account keep the session.
	time.Sleep(1100 * time.Millisecond)
	for range 5 {
		if code := get(); code != http.StatusOK {
			t.Fatalf("healthy account: %d", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	dc.SambaTool(t, "user", "disable", "carol")
	deadline := time.Now().Add(6 * time.Second)
	for {
		time.Sleep(300 * time.Millisecond)
		if code := get(); code != http.StatusOK {
			t.Logf("disabled in AD: session ended with %d", code)
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the session of a disabled account survived the re-check")
		}
	}
}

// TestLDAPBasicAuthCache: API clients with HTTP Basic are answered from the
// credential cache, through the real handler: once a Basic request has
// succeeded, the same credentials keep working while every DC is down,
// and nothing else does (other credentials, the sign-in form).
func TestLDAPBasicAuthCache(t *testing.T) {
	dc := sambadc.Start(t)
	t.Setenv("ADAUTH_TEST_LDAP_PASSWORD", dc.ServicePassword)
	lh := newLDAPHandler(t, sambaLDAPConfig(dc), nil)
	basic := func(user, password string) (int, *http.Request) {
		r := httptest.NewRequest("GET", "/api/units", nil)
		r.SetBasicAuth(user, password)
		w, seen := serve(lh.h, r)
		return w.Code, seen
	}
	if code, seen := basic(`HOSPITAL\alice`, sambadc.Alice.Password); seen == nil {
		t.Fatalf("first Basic request: %d", code)
	}
	dc.Stop()
	for range 3 {
		if code, seen := basic(`HOSPITAL\alice`, sambadc.Alice.Password); seen == nil || seen.Header.Get("X-Remote-User") != "alice" {
			t.Fatalf("cached Basic request with the DC down: %d", code)
		}
	}
	if code, seen := basic("carol", sambadc.Carol.Password); seen != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("uncached credentials with the DC down: %d, passed=%v", code, seen != nil)
	}
	if code, seen := basic(`HOSPITAL\alice`, "wrong"); seen != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("a wrong password with the DC down: %d, passed=%v", code, seen != nil)
	}
	if w := lh.login("alice", sambadc.Alice.Password); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("the sign-in form is never cached: %d", w.Code)
	}
}
