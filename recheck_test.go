package adauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-adauth/adauth/groups"
)

// fakeDirectory answers re-check look-ups with whatever the test sets.
type fakeDirectory struct {
	fakeBackend
	mu      sync.Mutex
	id      groups.Identity
	err     error
	lookups atomic.Int64
	block   chan struct{} // when set, Lookup waits on it
}

func (f *fakeDirectory) Lookup(ctx context.Context, dn string) (groups.Identity, error) {
	f.lookups.Add(1)
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.id, f.err
}

func (f *fakeDirectory) set(id groups.Identity, err error) {
	f.mu.Lock()
	f.id, f.err = id, err
	f.mu.Unlock()
}

type accountDisabled struct{}

func (accountDisabled) Error() string       { return "account disabled" }
func (accountDisabled) UserMessage() string { return "Your account is disabled." }

func recheckHandler(t *testing.T, dir *fakeDirectory) (*Handler, *time.Time) {
	t.Helper()
	interval := caddy.Duration(15 * time.Minute)
	h := newTestHandler(t, func(h *Handler) { h.Recheck = &interval })
	h.passwords = []*passwordBackend{{name: "ldap", impl: dir, directory: true, lookups: true, sem: make(chan struct{}, 1)}}
	h.rechecker.backends["ldap"] = byDN{dir}
	now := time.Unix(1_800_000_000, 0)
	h.now = func() time.Time { return now }
	return h, &now
}

func ldapSession(now time.Time, groups ...string) *session {
	n := now.Unix()
	return &session{ID: "alice", Backend: "ldap", DN: "CN=alice,DC=hospital,DC=test", Groups: groups, Issued: n, Seen: n, Checked: n}
}

// request sends a navigation with the cookie and returns what happened.
func (h *Handler) testRequest(t *testing.T, c *http.Cookie) (*httptest.ResponseRecorder, *http.Request) {
	r := httptest.NewRequest("GET", "/qa/", nil)
	r.Header.Set("Accept", "text/html")
	r.AddCookie(c)
	return serve(h, r)
}

func cookieFor(t *testing.T, h *Handler, ss *session) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	if err := h.writeSession(w, httptest.NewRequest("GET", "/", nil), ss); err != nil {
		t.Fatal(err)
	}
	return w.Result().Cookies()[0]
}

func waitLookups(t *testing.T, h *Handler, user string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		h.rechecker.mu.Lock()
		running, done := false, false
		for k := range h.rechecker.running {
			running = running || strings.Split(k, "\x00")[1] == user
		}
		for k := range h.rechecker.results {
			done = done || strings.Split(k, "\x00")[1] == user
		}
		h.rechecker.mu.Unlock()
		if done && !running {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("re-check did not finish")
}

func TestRecheckUpdatesGroups(t *testing.T) {
	dir := &fakeDirectory{}
	h, now := recheckHandler(t, dir)
	c := cookieFor(t, h, ldapSession(*now, "physics", "qa-staff"))

	// Not due yet: no look-up.
	if _, seen := h.testRequest(t, c); seen == nil || dir.lookups.Load() != 0 {
		t.Fatalf("fresh session: passed=%v lookups=%d", seen != nil, dir.lookups.Load())
	}
	// Due: this request passes with the old groups and starts a look-up.
	*now = now.Add(16 * time.Minute)
	dir.set(groups.Identity{ID: "alice", Groups: []groups.Group{{Name: "QA-Staff"}}}, nil)
	_, seen := h.testRequest(t, c)
	if seen == nil || seen.Header.Get("X-Remote-Groups") != "physics,qa-staff" {
		t.Fatalf("due request: %v", seen)
	}
	waitLookups(t, h, "alice")
	// The next request carries the directory's answer and a new cookie.
	*now = now.Add(time.Second)
	w, seen := h.testRequest(t, c)
	if seen == nil || seen.Header.Get("X-Remote-Groups") != "QA-Staff" {
		t.Fatalf("after re-check: groups %q", seen.Header.Get("X-Remote-Groups"))
	}
	if len(w.Result().Cookies()) != 1 {
		t.Fatal("re-checked session was not written back")
	}
	if n := dir.lookups.Load(); n != 1 {
		t.Fatalf("%d look-ups, want 1", n)
	}
}

func TestRecheckEndsDisabledAccount(t *testing.T) {
	dir := &fakeDirectory{}
	h, now := recheckHandler(t, dir)
	c := cookieFor(t, h, ldapSession(*now, "physics"))
	*now = now.Add(16 * time.Minute)
	dir.set(groups.Identity{}, accountDisabled{})
	h.testRequest(t, c)
	waitLookups(t, h, "alice")
	w, seen := h.testRequest(t, c)
	if seen != nil || w.Code != http.StatusFound || !strings.Contains(w.Header().Get("Location"), "reason=ended") {
		t.Fatalf("disabled account: passed=%v %d %q", seen != nil, w.Code, w.Header().Get("Location"))
	}
	if sc := w.Header().Get("Set-Cookie"); !strings.Contains(sc, "Max-Age=0") {
		t.Fatalf("session cookie not cleared: %q", sc)
	}
	// The login page explains it.
	r := httptest.NewRequest("GET", w.Header().Get("Location"), nil)
	lw, _ := serve(h, r)
	if !strings.Contains(lw.Body.String(), "account changed in the directory") {
		t.Fatalf("login page after an ended session:\n%s", lw.Body.String())
	}
	// A fresh sign-in after the answer is not ended by it.
	*now = now.Add(time.Minute)
	c2 := cookieFor(t, h, ldapSession(*now, "physics"))
	if _, seen := h.testRequest(t, c2); seen == nil {
		t.Fatal("a session issued after the re-check was ended by it")
	}
}

func TestRecheckNotQualifiedEnds(t *testing.T) {
	dir := &fakeDirectory{}
	h, now := recheckHandler(t, dir)
	m, err := groups.Rules{Qualify: []string{"QA-Staff"}}.Compile()
	if err != nil {
		t.Fatal(err)
	}
	h.mapper = m
	c := cookieFor(t, h, ldapSession(*now, "physics"))
	*now = now.Add(16 * time.Minute)
	dir.set(groups.Identity{ID: "alice", Groups: []groups.Group{{Name: "Other"}}}, nil)
	h.testRequest(t, c)
	waitLookups(t, h, "alice")
	if _, seen := h.testRequest(t, c); seen != nil {
		t.Fatal("a user no longer in a qualifying group kept the session")
	}
}

func TestRecheckDirectoryDownKeepsSession(t *testing.T) {
	dir := &fakeDirectory{}
	h, now := recheckHandler(t, dir)
	c := cookieFor(t, h, ldapSession(*now, "physics"))
	*now = now.Add(16 * time.Minute)
	dir.set(groups.Identity{}, errors.New("dial tcp 127.0.0.2:636: connection refused"))
	h.testRequest(t, c)
	waitLookups(t, h, "alice")
	for i := 0; i < 5; i++ {
		if _, seen := h.testRequest(t, c); seen == nil || seen.Header.Get("X-Remote-Groups") != "physics" {
			t.Fatal("directory down signed the user out")
		}
	}
	// Not asked again on every request while it is down.
	if n := dir.lookups.Load(); n != 1 {
		t.Fatalf("%d look-ups while the directory is down, want 1 per %s", n, recheckRetry)
	}
	*now = now.Add(recheckRetry + time.Second)
	h.testRequest(t, c)
	waitLookups(t, h, "alice")
	if n := dir.lookups.Load(); n != 2 {
		t.Fatalf("%d look-ups after the retry interval, want 2", n)
	}
}

func TestRecheckOneLookupPerUser(t *testing.T) {
	dir := &fakeDirectory{block: make(chan struct{})}
	h, now := recheckHandler(t, dir)
	c := cookieFor(t, h, ldapSession(*now, "physics"))
	*now = now.Add(16 * time.Minute)
	dir.set(groups.Identity{ID: "alice"}, nil)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, seen := h.testRequest(t, c); seen == nil {
				t.Error("request blocked or refused while a re-check runs")
			}
		}()
	}
	wg.Wait() // every request finished while the look-up is still blocked
	close(dir.block)
	waitLookups(t, h, "alice")
	if n := dir.lookups.Load(); n != 1 {
		t.Fatalf("%d concurrent look-ups for one user, want 1", n)
	}
}

func TestRecheckOffAndLocalUsers(t *testing.T) {
	dir := &fakeDirectory{}
	h, now := recheckHandler(t, dir)
	local := ldapSession(*now, "physics")
	local.Backend, local.DN = "local", ""
	c := cookieFor(t, h, local)
	*now = now.Add(16 * time.Minute)
	h.testRequest(t, c)
	h.rechecker.interval = 0
	c2 := cookieFor(t, h, ldapSession(now.Add(-16*time.Minute), "physics"))
	h.testRequest(t, c2)
	time.Sleep(20 * time.Millisecond)
	if n := dir.lookups.Load(); n != 0 {
		t.Fatalf("%d look-ups for a local user / recheck 0", n)
	}
}

// refreshLooker answers re-checks of refresh-token sessions (AD FS) with
// groups and a rotated token of its own.
type refreshLooker struct{ lookups atomic.Int64 }

func (f *refreshLooker) lookupAccount(_ context.Context, ss *session) (groups.Identity, string, error) {
	f.lookups.Add(1)
	return groups.Identity{ID: ss.ID, Groups: []groups.Group{{Name: "from-" + ss.Refresh}}}, "rotated-" + ss.Refresh, nil
}

// TestRecheckResultsStayWithTheirSession: a re-check answer is applied only
// to sessions it answers for. The same user signed in through LDAP in one
// browser and AD FS in two others must not get the LDAP groups on the AD FS
// sessions, nor one AD FS session's groups and rotated refresh token on
// the other.
func TestRecheckResultsStayWithTheirSession(t *testing.T) {
	dir := &fakeDirectory{}
	h, now := recheckHandler(t, dir)
	sso := &refreshLooker{}
	h.rechecker.backends["adfs"] = sso
	start := *now
	viaLDAP := cookieFor(t, h, ldapSession(start, "physics"))
	adfs := func(issued time.Time, refresh string) *http.Cookie {
		ss := ldapSession(issued, "physics")
		ss.Backend, ss.DN, ss.Refresh, ss.Checked = "adfs", "", refresh, start.Unix()
		return cookieFor(t, h, ss)
	}
	viaADFS1 := adfs(start.Add(-time.Minute), "token-one")
	viaADFS2 := adfs(start.Add(-2*time.Minute), "token-two")
	dir.set(groups.Identity{ID: "alice", Groups: []groups.Group{{Name: "from-ldap"}}}, nil)

	*now = now.Add(16 * time.Minute)
	for _, c := range []*http.Cookie{viaLDAP, viaADFS1, viaADFS2} {
		h.testRequest(t, c) // due: starts each session's look-up
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.rechecker.mu.Lock()
		n, running := len(h.rechecker.results), len(h.rechecker.running)
		h.rechecker.mu.Unlock()
		if n == 3 && running == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d results, %d running; want 3 separate look-ups", n, running)
		}
		time.Sleep(5 * time.Millisecond)
	}
	*now = now.Add(time.Second)
	for c, want := range map[*http.Cookie]string{viaLDAP: "from-ldap", viaADFS1: "from-token-one", viaADFS2: "from-token-two"} {
		w, seen := h.testRequest(t, c)
		if seen == nil || seen.Header.Get("X-Remote-Groups") != want {
			t.Errorf("want groups %q, got request %v", want, seen)
			continue
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(w.Result().Cookies()[0])
		ss, _ := h.currentSession(r)
		if ss == nil {
			t.Fatal("re-checked cookie does not open")
		}
		if strings.TrimPrefix(want, "from-") != "ldap" && ss.Refresh != "rotated-"+strings.TrimPrefix(want, "from-") {
			t.Errorf("%s session got refresh token %q", want, ss.Refresh)
		}
		if want == "from-ldap" && ss.Refresh != "" {
			t.Errorf("LDAP session got a refresh token %q", ss.Refresh)
		}
	}
}

// TestWhoamiFollowsRecheck: /adauth/whoami shows the session as the
// application sees it: the groups a re-check changed, and 401 with the
// cookie cleared once the re-check ended the session.
func TestWhoamiFollowsRecheck(t *testing.T) {
	dir := &fakeDirectory{}
	h, now := recheckHandler(t, dir)
	c := cookieFor(t, h, ldapSession(*now, "physics"))
	whoami := func() (*httptest.ResponseRecorder, map[string]any) {
		r := httptest.NewRequest("GET", "/adauth/whoami", nil)
		r.AddCookie(c)
		w, _ := serve(h, r)
		var body map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		return w, body
	}
	*now = now.Add(16 * time.Minute)
	dir.set(groups.Identity{ID: "alice", Groups: []groups.Group{{Name: "QA-Staff"}}}, nil)
	whoami() // due: starts the look-up
	waitLookups(t, h, "alice")
	*now = now.Add(time.Second)
	w, body := whoami()
	if w.Code != http.StatusOK || fmt.Sprint(body["groups"]) != "[QA-Staff]" {
		t.Fatalf("whoami after a re-check changed the groups: %d %v", w.Code, body)
	}
	if cs := w.Result().Cookies(); len(cs) != 1 || cs[0].MaxAge < 0 {
		t.Fatalf("whoami did not write the re-checked session back: %v", cs)
	}
	c = w.Result().Cookies()[0]

	*now = now.Add(16 * time.Minute)
	dir.set(groups.Identity{}, accountDisabled{})
	whoami()
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.rechecker.mu.Lock()
		res := h.rechecker.results[recheckKey(ldapSession(*now))]
		h.rechecker.mu.Unlock()
		if res.ended {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("re-check did not end the session")
		}
		time.Sleep(5 * time.Millisecond)
	}
	w, body = whoami()
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("whoami of an ended session: %d %v", w.Code, body)
	}
	if cs := w.Result().Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Fatalf("whoami of an ended session did not clear the cookie: %v", cs)
	}
}
