package adauth

import (
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-adauth/adauth/internal/sambadc"
)

// The acceptance tests of the groups issue, end to end: the real handler
// (Provision included) with rules read from a Caddyfile `groups` block,
// against a real Samba AD DC. Each test has its own DC (sambadc.Start
// copies the provisioned database per DC), so the tests that change
// memberships in AD cannot disturb the others.

// issueGroups is the `groups` block of the issue: only therapists and
// physicists may sign in; both get an application group, everyone gets
// "everyone".
const issueGroups = `
	groups {
		qualify "QA-Therapists" "QA-Physicists"
		map "QA-Therapists" Therapists
		map "QA-Physicists" Physicists
		default everyone
	}`

// groupsHandler is newLDAPHandler on dc with the adauth directives in
// directives (a Caddyfile fragment: groups, recheck) parsed as Caddy would.
func groupsHandler(t *testing.T, dc *sambadc.DC, directives string, mutate func(*Handler)) *ldapHandler {
	t.Helper()
	var parsed Handler
	if err := parsed.UnmarshalCaddyfile(caddyfile.NewTestDispenser("adauth {\n" + directives + "\n}")); err != nil {
		t.Fatal(err)
	}
	if parsed.Groups == nil {
		t.Fatal("no groups block parsed")
	}
	t.Setenv("ADAUTH_TEST_LDAP_PASSWORD", dc.ServicePassword)
	return newLDAPHandler(t, sambaLDAPConfig(dc), func(h *Handler) {
		h.Groups, h.Recheck = parsed.Groups, parsed.Recheck
		if mutate != nil {
			mutate(h)
		}
	})
}

// site is the origin httptest.NewRequest addresses.
var site, _ = url.Parse("http://example.com/")

// browser is one user's browser: a cookie jar keeps the session cookie,
// takes the re-issued one and drops a cleared one, as a real browser does.
type browser struct {
	t   *testing.T
	lh  *ldapHandler
	jar *cookiejar.Jar
}

func (lh *ldapHandler) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, lh: lh, jar: jar}
}

func (b *browser) signIn(username, password string) {
	b.t.Helper()
	w := b.lh.login(username, password)
	if w.Code != http.StatusSeeOther || len(w.Result().Cookies()) != 1 {
		b.t.Fatalf("%q: status %d, %d cookies: %s", username, w.Code, len(w.Result().Cookies()), pageMessage(w.Body.String()))
	}
	b.jar.SetCookies(site, w.Result().Cookies())
}

func (b *browser) signedIn() bool { return len(b.jar.Cookies(site)) > 0 }

// visit is one page load through the gate.
type visit struct {
	w      *httptest.ResponseRecorder
	seen   *http.Request // what the next handler got; nil if the gate answered
	user   string        // X-Remote-User
	groups string        // X-Remote-Groups
}

// visit loads a page and checks that the identity header and the
// {http.auth.user.groups} placeholder the next handler sees agree.
func (b *browser) visit() visit {
	b.t.Helper()
	r := httptest.NewRequest("GET", "/qa/units/", nil)
	r.Header.Set("Accept", "text/html")
	for _, c := range b.jar.Cookies(site) {
		r.AddCookie(c)
	}
	w, seen := serve(b.lh.h, r)
	b.jar.SetCookies(site, w.Result().Cookies())
	v := visit{w: w, seen: seen}
	if seen != nil {
		v.user, v.groups = seen.Header.Get("X-Remote-User"), seen.Header.Get("X-Remote-Groups")
		repl := seen.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		if ph := repl.ReplaceAll("{http.auth.user.groups}", "?"); ph != v.groups {
			b.t.Errorf("{http.auth.user.groups} = %q, X-Remote-Groups = %q", ph, v.groups)
		}
	}
	return v
}

// mustPass loads a page that must reach the next handler as user.
func (b *browser) mustPass(user string) visit {
	b.t.Helper()
	v := b.visit()
	if v.seen == nil || v.user != user {
		b.t.Fatalf("%s: the gate answered %d (Location %q), X-Remote-User %q", user, v.w.Code, v.w.Header().Get("Location"), v.user)
	}
	return v
}

// requireAllows runs adauth_require <groups...> on the request the gate
// passed on, as the next handler in a Caddy route would.
func requireAllows(t *testing.T, seen *http.Request, groups ...string) bool {
	t.Helper()
	rq := &Require{Groups: groups}
	if err := rq.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	if err := rq.Validate(); err != nil {
		t.Fatal(err)
	}
	passed := false
	w := httptest.NewRecorder()
	err := rq.ServeHTTP(w, seen, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		passed = true
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !passed && (w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "Access denied")) {
		t.Errorf("adauth_require %v refused with %d:\n%s", groups, w.Code, pageMessage(w.Body.String()))
	}
	return passed
}

// eventually polls cond until it holds, failing after within; it returns
// how long that took.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not after %v", what, within)
		}
		time.Sleep(150 * time.Millisecond)
	}
	return time.Since(start)
}

// logged reports whether the handler logged a message containing msg with
// field user = user.
func (lh *ldapHandler) logged(msg, user string) bool {
	for _, e := range lh.logs.FilterMessageSnippet(msg).All() {
		for _, f := range e.Context {
			if f.Key == "user" && f.Type == zapcore.StringType && f.String == user {
				return true
			}
		}
	}
	return false
}

// recheckWithin bounds how long a change in AD takes to reach a session with
// recheck 1s: a look-up already in flight may have read the old state, the
// next starts a second later, and its answer is applied by the request
// after it.
const recheckWithin = 8 * time.Second

// TestGroupsE2ESignIn: acceptance items 1 and 2, sign-in against the
// groups rules.
func TestGroupsE2ESignIn(t *testing.T) {
	dc := sambadc.Start(t)
	lh := groupsHandler(t, dc, issueGroups, nil)

	// Bob is only in QA-Therapists-Nested, which is a member of
	// QA-Therapists: he qualifies, and is mapped, through the nesting.
	t.Run("nested group qualifies and maps", func(t *testing.T) {
		if who := lh.signIn("bob", sambadc.Bob.Password); who.ID != "bob" || !slices.Equal(who.Groups, []string{"Therapists", "everyone"}) {
			t.Fatalf("bob: %+v", who)
		}
		if who := lh.signIn("alice", sambadc.Alice.Password); !slices.Equal(who.Groups, []string{"Physicists", "everyone"}) {
			t.Fatalf("alice: %+v", who)
		}
		b := lh.browser(t)
		b.signIn(`HOSPITAL\bob`, sambadc.Bob.Password)
		v := b.mustPass("bob")
		if v.groups != "Therapists,everyone" {
			t.Fatalf("bob: X-Remote-Groups %q", v.groups)
		}
		if !requireAllows(t, v.seen, "Therapists") || !requireAllows(t, v.seen, "admin", "everyone") {
			t.Error("adauth_require refused bob a group he has")
		}
		if requireAllows(t, v.seen, "Physicists") || requireAllows(t, v.seen, "QA-Therapists") {
			t.Error("adauth_require let bob through for a group he does not have (directory names are not application groups)")
		}
	})

	// The control: without nested groups Bob is in QA-Therapists-Nested
	// only, which qualifies for nothing. This is what the test above
	// depends on.
	t.Run("without nesting bob does not qualify", func(t *testing.T) {
		flat := groupsHandler(t, dc, issueGroups, func(h *Handler) { h.LDAP.NestedGroups = new(false) })
		flat.wantRefused("bob", sambadc.Bob.Password, http.StatusForbidden, "Your account is not in a group that is allowed to use this service")
	})

	t.Run("not qualified is refused", func(t *testing.T) {
		// Carol is only in QA-Admins; Oscar is in no group at all. Both
		// have the right password.
		lh.wantRefused("carol", sambadc.Carol.Password, http.StatusForbidden, "Your account is not in a group that is allowed to use this service")
		lh.wantRefused("oscar", sambadc.Oscar.Password, http.StatusForbidden, "Your account is not in a group that is allowed to use this service")
		if !lh.loggedReason("not in a qualifying group") || !lh.loggedReason("QA-Admins") {
			t.Error("the log does not say carol is not in a qualifying group, with her groups")
		}
		// A wrong password still gets the generic answer: the refusal
		// above is only for the account's owner.
		lh.wantRefused("carol", "Wrong.Pass", http.StatusUnauthorized, "Incorrect username or password")
		// HTTP Basic is refused the same way and passes nothing on.
		r := httptest.NewRequest("GET", "/api/units", nil)
		r.SetBasicAuth("carol", sambadc.Carol.Password)
		if w, seen := serve(lh.h, r); seen != nil || w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "not in a group") {
			t.Errorf("basic auth for carol: %d passed=%v %s", w.Code, seen != nil, w.Body.String())
		}
		// Her refusal does not come from a broken directory: she signs
		// in where the rules let her.
		open := groupsHandler(t, dc, `groups {
			qualify "QA-Admins"
			default everyone
		}`, nil)
		if who := open.signIn("carol", sambadc.Carol.Password); !slices.Equal(who.Groups, []string{"everyone"}) {
			t.Errorf("carol with qualify QA-Admins: %+v", who)
		}
	})
}

// TestGroupsE2ERecheckGroupChanges: acceptance item 3. Alice qualifies
// through QA-Staff as well, so losing QA-Physicists costs her only the
// application group; being put into QA-Therapists-Nested gains her one
// (through the nesting) without a new sign-in.
func TestGroupsE2ERecheckGroupChanges(t *testing.T) {
	dc := sambadc.Start(t)
	lh := groupsHandler(t, dc, `recheck 1s
	groups {
		qualify "QA-Therapists" "QA-Physicists" "QA-Staff"
		map "QA-Therapists" Therapists
		map "QA-Physicists" Physicists
		default everyone
	}`, nil)
	b := lh.browser(t)
	b.signIn("alice", sambadc.Alice.Password)
	v := b.mustPass("alice")
	if v.groups != "Physicists,everyone" || !requireAllows(t, v.seen, "Physicists") {
		t.Fatalf("alice at sign-in: %q", v.groups)
	}

	// A re-check that finds nothing changed keeps everything.
	time.Sleep(1100 * time.Millisecond)
	b.mustPass("alice") // due: starts the look-up
	waitLookups(t, lh.h, "alice")
	if v := b.mustPass("alice"); v.groups != "Physicists,everyone" {
		t.Fatalf("after an unchanged re-check: %q", v.groups)
	}

	change := func(want string, args ...string) visit {
		t.Helper()
		start := time.Now()
		dc.SambaTool(t, args...)
		tool := time.Since(start)
		var last visit
		eventually(t, recheckWithin, "alice's groups after "+strings.Join(args, " "), func() bool {
			last = b.mustPass("alice") // the session goes on throughout
			return last.groups == want
		})
		t.Logf("samba-tool %s (%v): alice's groups %q %v after it started", strings.Join(args, " "),
			tool.Round(time.Millisecond), want, time.Since(start).Round(time.Millisecond))
		return last
	}

	v = change("everyone", "group", "removemembers", "QA-Physicists", "alice")
	if requireAllows(t, v.seen, "Physicists") || !requireAllows(t, v.seen, "everyone") {
		t.Error("adauth_require after alice left QA-Physicists")
	}
	if !lh.logged("re-check updated groups", "alice") {
		t.Error("the group change was not logged")
	}

	v = change("Therapists,everyone", "group", "addmembers", "QA-Therapists-Nested", "alice")
	if !requireAllows(t, v.seen, "Therapists") || requireAllows(t, v.seen, "Physicists") {
		t.Error("adauth_require after alice joined QA-Therapists-Nested")
	}

	// The re-checked session is what whoami reports too.
	r := httptest.NewRequest("GET", "/adauth/whoami", nil)
	for _, c := range b.jar.Cookies(site) {
		r.AddCookie(c)
	}
	if w, _ := serve(lh.h, r); !strings.Contains(w.Body.String(), `"groups":["Therapists","everyone"]`) {
		t.Errorf("whoami after the changes: %s", w.Body.String())
	}
}

// TestGroupsE2ERecheckStopsQualifying: acceptance item 4. Alice qualifies
// only through QA-Physicists and is removed from it; Bob qualifies only
// through QA-Therapists, and his group QA-Therapists-Nested is taken out of
// it. Both are signed out at the next re-check, with the reason on the
// login page, and cannot sign in again.
func TestGroupsE2ERecheckStopsQualifying(t *testing.T) {
	dc := sambadc.Start(t)
	lh := groupsHandler(t, dc, "recheck 1s\n"+issueGroups, nil)
	users := []struct {
		id, password string
		change       []string
		b            *browser
	}{
		{id: "alice", password: sambadc.Alice.Password, change: []string{"group", "removemembers", "QA-Physicists", "alice"}},
		{id: "bob", password: sambadc.Bob.Password, change: []string{"group", "removemembers", "QA-Therapists", "QA-Therapists-Nested"}},
	}
	for i := range users {
		u := &users[i]
		u.b = lh.browser(t)
		u.b.signIn(u.id, u.password)
	}
	// Re-checks of qualifying accounts keep the sessions.
	time.Sleep(1100 * time.Millisecond)
	for _, u := range users {
		u.b.mustPass(u.id)
		waitLookups(t, lh.h, u.id)
		u.b.mustPass(u.id)
	}

	changed := time.Now()
	for _, u := range users {
		dc.SambaTool(t, u.change...)
	}
	for _, u := range users {
		var ended visit
		eventually(t, recheckWithin, u.id+" signed out", func() bool {
			ended = u.b.visit()
			return ended.seen == nil
		})
		t.Logf("%s: signed out %v after the samba-tool changes started", u.id, time.Since(changed).Round(time.Millisecond))
		loc := ended.w.Header().Get("Location")
		if ended.w.Code != http.StatusFound || !strings.HasPrefix(loc, "/adauth/login?") || !strings.Contains(loc, "reason=ended") {
			t.Errorf("%s: the first request after the re-check got %d, Location %q", u.id, ended.w.Code, loc)
		}
		if u.b.signedIn() {
			t.Errorf("%s: the session cookie was not cleared", u.id)
		}
		if v := u.b.visit(); v.seen != nil || v.w.Code != http.StatusFound {
			t.Errorf("%s: after sign-out: %d passed=%v", u.id, v.w.Code, v.seen != nil)
		}
		if !lh.logged("no longer in a qualifying group", u.id) {
			t.Errorf("%s: the log does not say why the session ended", u.id)
		}
		page, _ := serve(lh.h, httptest.NewRequest("GET", loc, nil))
		if !strings.Contains(page.Body.String(), "account changed in the directory") {
			t.Errorf("%s: the login page does not say why:\n%s", u.id, pageMessage(page.Body.String()))
		}
		lh.wantRefused(u.id, u.password, http.StatusForbidden, "Your account is not in a group that is allowed to use this service")
	}
}

// TestGroupsE2EDirectoryDownKeepsSessions: acceptance item 5. With the DC
// gone, re-checks fail, are logged, and sign nobody out; groups stay as
// they were.
func TestGroupsE2EDirectoryDownKeepsSessions(t *testing.T) {
	dc := sambadc.Start(t)
	lh := groupsHandler(t, dc, "recheck 1s\n"+issueGroups, nil)
	users := map[string]*browser{"alice": lh.browser(t), "bob": lh.browser(t)}
	want := map[string]string{"alice": "Physicists,everyone", "bob": "Therapists,everyone"}
	users["alice"].signIn("alice", sambadc.Alice.Password)
	users["bob"].signIn("bob", sambadc.Bob.Password)
	// One healthy re-check each first: re-checks are running.
	time.Sleep(1100 * time.Millisecond)
	for id, b := range users {
		b.mustPass(id)
		waitLookups(t, lh.h, id)
	}

	dc.Stop()
	down := time.Now()
	check := func() {
		t.Helper()
		for id, b := range users {
			if v := b.mustPass(id); v.groups != want[id] {
				t.Fatalf("%s with the directory down: groups %q, want %q", id, v.groups, want[id])
			}
		}
	}
	took := eventually(t, recheckWithin, "re-checks logging the directory unreachable", func() bool {
		check()
		return lh.logged("re-check could not reach the directory", "alice") &&
			lh.logged("re-check could not reach the directory", "bob")
	})
	t.Logf("re-checks failed and were logged %v after the DC stopped", took.Round(time.Millisecond))
	// Several more recheck intervals: still signed in, nothing ended.
	for time.Since(down) < took+3*time.Second {
		check()
		time.Sleep(200 * time.Millisecond)
	}
	if lh.logs.FilterMessageSnippet("ended").Len() != 0 {
		t.Errorf("a session was ended with the directory down: %v", lh.logs.FilterMessageSnippet("ended").All())
	}
	// The directory really is down: a new sign-in cannot be checked.
	lh.wantRefused("carol", sambadc.Carol.Password, http.StatusServiceUnavailable, "could not be reached")
}
