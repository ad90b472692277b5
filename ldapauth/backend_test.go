package ldapauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/caddy-adauth/adauth/groups"
)

func TestAcceptedUsernameForms(t *testing.T) {
	f := newFakeDir()
	for _, mode := range []string{"service", "direct"} {
		b := f.backend(t, func(c *Config) {
			if mode == "direct" {
				c.BindDN, c.BindPassword = "", ""
			}
		})
		for _, typed := range []string{"alice", "ALICE", `HOSPITAL\alice`, `hospital\Alice`, "alice@hospital.test", "Alice@HOSPITAL.TEST", " alice "} {
			id, ok, err := b.Authenticate(t.Context(), typed, "Alice-Pass1")
			if err != nil || !ok {
				t.Fatalf("%s %q: ok=%v err=%v", mode, typed, ok, err)
			}
			if id.ID != "alice" || id.DN != f.users[0].dn || id.Email != "alice@hospital.test" {
				t.Fatalf("%s %q: identity %+v", mode, typed, id)
			}
			names := groups.Names(id.Groups)
			if !slices.Equal(names, []string{"QA-Physicists", "QA-Radiology, Nuclear"}) {
				t.Fatalf("%s %q: groups %q", mode, typed, names)
			}
		}
	}
	// Without a service account the bind name is DOMAIN\name, whatever
	// form was typed.
	for _, n := range f.bindNames() {
		if strings.EqualFold(n, "alice@hospital.test") || n == "alice" {
			t.Fatalf("direct bind used the typed form %q", n)
		}
	}
}

func TestBadCredentialsAndUnknownUserLookAlike(t *testing.T) {
	f := newFakeDir()
	b := f.backend(t, nil)
	for _, c := range []struct{ u, p string }{
		{"alice", "wrong"}, {"nobody", "Alice-Pass1"}, {`OTHER\alice`, "Alice-Pass1"}, {"alice@other.test", "Alice-Pass1"},
		{`\alice`, "Alice-Pass1"}, {`HOSPITAL\`, "Alice-Pass1"}, {`HOSPITAL\a\b`, "x"},
	} {
		id, ok, err := b.Authenticate(t.Context(), c.u, c.p)
		if ok || err != nil || id.ID != "" {
			t.Errorf("%q/%q: ok=%v err=%v id=%+v; want bad credentials", c.u, c.p, ok, err, id)
		}
	}
}

func TestRefusedBeforeAnyTraffic(t *testing.T) {
	cases := []struct{ name, u, p string }{
		{"empty password", "alice", ""},
		{"space password", "alice", " "},
		{"whitespace password", "alice", "\t \r\n"},
		{"empty user", "", "x"},
		{"NUL in user", "ali\x00ce", "Alice-Pass1"},
		{"control char", "alice\x01", "Alice-Pass1"},
		{"newline", "alice\nbob", "Alice-Pass1"},
		{"DEL", "alice\x7f", "Alice-Pass1"},
		{"C1 control", "ali\u0085ce", "Alice-Pass1"},
		{"oversize", strings.Repeat("a", 257), "Alice-Pass1"},
		{"invalid UTF-8", "al\xffice", "Alice-Pass1"},
		{"NUL in password", "alice", "Alice\x00Pass1"},
		{"oversize password", "alice", strings.Repeat("p", 1025)},
		{"other domain", `EVIL\alice`, "Alice-Pass1"},
	}
	for _, mode := range []string{"service", "direct"} {
		f := newFakeDir()
		b := f.backend(t, func(c *Config) {
			if mode == "direct" {
				c.BindDN, c.BindPassword = "", ""
			}
			c.Cache = time.Minute
		})
		for _, c := range cases {
			for _, fn := range []func(context.Context, string, string) (groups.Identity, bool, error){b.Authenticate, b.AuthenticateCached} {
				_, ok, err := fn(t.Context(), c.u, c.p)
				if ok || err != nil {
					t.Errorf("%s %s: ok=%v err=%v", mode, c.name, ok, err)
				}
			}
		}
		if n := len(f.bindNames()); n != 0 {
			t.Errorf("%s: %d binds attempted for refused input: %q", mode, n, f.bindNames())
		}
		if f.dialCount("ldaps://dc1.hospital.test")+f.dialCount("ldaps://dc2.hospital.test") != 0 {
			t.Errorf("%s: refused input dialled a DC", mode)
		}
	}
}

func TestFilterValuesEscaped(t *testing.T) {
	f := newFakeDir()
	b := f.backend(t, nil)
	want := map[string]string{
		"*":                `(sAMAccountName=\2a)`,
		")(":               `(sAMAccountName=\29\28)`,
		"admin)(|(uid=*":   `(sAMAccountName=admin\29\28|\28uid=\2a)`,
		"alice*)(cn=*))(|": `(sAMAccountName=alice\2a\29\28cn=\2a\29\29\28|)`,
	}
	for typed, frag := range want {
		if _, ok, err := b.Authenticate(t.Context(), typed, "Alice-Pass1"); ok || err != nil {
			t.Fatalf("%q: ok=%v err=%v", typed, ok, err)
		}
		got := f.searchFilters()
		last := got[len(got)-1]
		if !strings.Contains(last, frag) {
			t.Fatalf("%q: filter %s does not contain %s", typed, last, frag)
		}
		if _, err := ldap.CompileFilter(last); err != nil {
			t.Fatalf("%q: filter %s does not compile: %v", typed, last, err)
		}
	}
	// A backslash cannot be typed in a name (it separates the domain), and
	// NUL is refused, but the filter builder escapes both anyway.
	if got := b.userFilter(`\00`); !strings.Contains(got, `(sAMAccountName=\5c00)`) {
		t.Fatalf(`\00 -> %s`, got)
	}
	if got := b.userFilter("a\x00b"); !strings.Contains(got, `(sAMAccountName=a\00b)`) {
		t.Fatalf("NUL -> %s", got)
	}
	// The group search escapes the user's DN, which may hold filter
	// metacharacters.
	u := f.add("st*r", "Star-Pass1", "")
	u.dn = `CN=st*r (x)\, y,OU=Staff,DC=hospital,DC=test`
	if _, ok, err := b.Authenticate(t.Context(), "st*r", "Star-Pass1"); !ok || err != nil {
		t.Fatalf("st*r: ok=%v err=%v", ok, err)
	}
	fs := f.searchFilters()
	if last := fs[len(fs)-1]; !strings.Contains(last, `:=CN=st\2ar \28x\29\5c, y,OU=Staff`) {
		t.Fatalf("group filter not escaped: %s", last)
	}
}

func TestReferralsIgnored(t *testing.T) {
	f := newFakeDir()
	f.referrals = true
	b := f.backend(t, nil)
	if _, ok, err := b.Authenticate(t.Context(), "alice", "Alice-Pass1"); !ok || err != nil {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	if _, ok, err := b.Authenticate(t.Context(), "nobody", "x"); ok || err != nil {
		t.Fatalf("a referral-only result must be 'no such user': ok=%v err=%v", ok, err)
	}
}

func TestAccountStates(t *testing.T) {
	f := newFakeDir()
	b := f.backend(t, nil)
	cases := map[string]struct {
		state AccountState
		is    error
		words string
	}{
		"dave":  {StateDisabled, ErrAccountDisabled, "disabled"},
		"erin":  {StateMustChange, nil, "hospital PC"},
		"frank": {StatePasswordExpired, nil, "expired"},
		"grace": {StateAccountExpired, ErrAccountDisabled, "account has expired"},
		"heidi": {StateLockedOut, ErrAccountDisabled, "locked"},
		"hours": {StateLogonHours, nil, "time of day"},
		"wks":   {StateWorkstation, nil, "computer"},
	}
	for user, c := range cases {
		_, ok, err := b.Authenticate(t.Context(), user, "Right-Pass1")
		var ae *AccountError
		if ok || !errors.As(err, &ae) {
			t.Fatalf("%s: ok=%v err=%v; want an AccountError", user, ok, err)
		}
		if ae.State != c.state || !strings.Contains(ae.UserMessage(), c.words) {
			t.Errorf("%s: state %v message %q", user, ae.State, ae.UserMessage())
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: not errors.Is %v", user, c.is)
		}
		if errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: an account state is not 'unavailable'", user)
		}
		// The wrong password reveals nothing.
		if _, ok, err := b.Authenticate(t.Context(), user, "Wrong-Pass1"); ok || err != nil {
			t.Errorf("%s with a wrong password: ok=%v err=%v", user, ok, err)
		}
	}
	for _, code := range []string{"525", "52e", "52E"} {
		if err := classifyBind(invalidCreds(code), nil, "x"); !errors.Is(err, errBadCredentials) {
			t.Errorf("%s: %v", code, err)
		}
	}
}

func TestPasswordPolicyControl(t *testing.T) {
	for errCode, want := range map[int8]AccountState{0: StatePasswordExpired, 1: StateLockedOut, 2: StateMustChange} {
		pp := ldap.NewControlBeheraPasswordPolicy()
		pp.Error = errCode
		res := &ldap.SimpleBindResult{Controls: []ldap.Control{pp}}
		var bindErr error
		if errCode != 2 {
			bindErr = &ldap.Error{ResultCode: ldap.LDAPResultInvalidCredentials, Err: errors.New("")}
		}
		var ae *AccountError
		if err := classifyBind(bindErr, res, "uid=x"); !errors.As(err, &ae) || ae.State != want {
			t.Errorf("ppolicy %d: %v", errCode, err)
		}
	}
	if err := classifyBind(&ldap.Error{ResultCode: ldap.LDAPResultInvalidCredentials, Err: errors.New("")}, &ldap.SimpleBindResult{}, "uid=x"); !errors.Is(err, errBadCredentials) {
		t.Errorf("plain 49: %v", err)
	}
	if err := classifyBind(&ldap.Error{ResultCode: ldap.LDAPResultUnwillingToPerform, Err: errors.New("unauthenticated bind (DN with no password) disallowed")}, nil, "uid=x"); !errors.Is(err, errBadCredentials) {
		t.Errorf("53: %v", err)
	}
}

func TestStrongerAuthRequired(t *testing.T) {
	f := newFakeDir()
	f.bindResult = func(string) error {
		return &ldap.Error{ResultCode: ldap.LDAPResultStrongAuthRequired, Err: errors.New("00002028: LdapErr: DSID-0C090259, comment: The server requires binds to turn on integrity checking if SSL\\TLS are not already active on the connection")}
	}
	for _, mode := range []string{"service", "direct"} {
		b := f.backend(t, func(c *Config) {
			if mode == "direct" {
				c.BindDN, c.BindPassword = "", ""
			}
		})
		_, ok, err := b.Authenticate(t.Context(), "alice", "Alice-Pass1")
		if ok || !errors.Is(err, ErrStrongerAuth) || !strings.Contains(err.Error(), "use ldaps:// or starttls") {
			t.Fatalf("%s: ok=%v err=%v", mode, ok, err)
		}
		if errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s: result 8 is a configuration problem, not a down DC", mode)
		}
	}
}

func TestServiceAccountRefused(t *testing.T) {
	f := newFakeDir()
	b := f.backend(t, func(c *Config) { c.BindPassword = "wrong" })
	_, ok, err := b.Authenticate(t.Context(), "alice", "Alice-Pass1")
	if ok || err == nil || !strings.Contains(err.Error(), "check bind_dn and bind_password") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestFailoverAndBackoff(t *testing.T) {
	f := newFakeDir()
	const dc1, dc2 = "ldaps://dc1.hospital.test", "ldaps://dc2.hospital.test"
	b := f.backend(t, nil)
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	b.now = clk.now
	f.dialErr[dc1] = &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}

	login := func() {
		t.Helper()
		if _, ok, err := b.Authenticate(t.Context(), "alice", "Alice-Pass1"); !ok || err != nil {
			t.Fatalf("ok=%v err=%v", ok, err)
		}
	}
	login()
	if f.dialCount(dc1) != 1 || f.dialCount(dc2) == 0 {
		t.Fatalf("dials dc1=%d dc2=%d", f.dialCount(dc1), f.dialCount(dc2))
	}
	h := b.Health()
	if h[0].Up || !strings.Contains(h[0].LastError, "connection refused") || !h[1].Up {
		t.Fatalf("health %+v", h)
	}
	// Within the back-off dc1 is not tried.
	clk.add(29 * time.Second)
	login()
	if f.dialCount(dc1) != 1 {
		t.Fatalf("dc1 dialled during its back-off: %d", f.dialCount(dc1))
	}
	// After 30s it is tried again, fails, and waits 60s.
	clk.add(2 * time.Second)
	login()
	if f.dialCount(dc1) != 2 {
		t.Fatalf("dc1 not retried after the back-off: %d", f.dialCount(dc1))
	}
	clk.add(59 * time.Second)
	login()
	if f.dialCount(dc1) != 2 {
		t.Fatal("back-off did not double")
	}
	// dc1 recovers: after its back-off it is used first again.
	delete(f.dialErr, dc1)
	clk.add(2 * time.Second)
	login()
	if f.dialCount(dc1) < 3 || !b.Health()[0].Up || b.Health()[0].LastError != "" {
		t.Fatalf("dc1 not back: dials=%d health=%+v", f.dialCount(dc1), b.Health())
	}
	// The back-off is capped at 5 minutes.
	d := b.static[1]
	for range 10 {
		d.markDown(errors.New("x"), clk.now())
		clk.add(d.backoff)
	}
	if d.backoff != backoffMax {
		t.Fatalf("backoff %v", d.backoff)
	}
}

func TestAllDown(t *testing.T) {
	f := newFakeDir()
	const dc1, dc2 = "ldaps://dc1.hospital.test", "ldaps://dc2.hospital.test"
	b := f.backend(t, nil)
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	b.now = clk.now
	f.dialErr[dc1] = errors.New("dc1 down")
	f.dialErr[dc2] = errors.New("dc2 down")
	_, ok, err := b.Authenticate(t.Context(), "alice", "Alice-Pass1")
	if ok || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "dc1 down") || !strings.Contains(err.Error(), "dc2 down") {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	// Both are marked down; the one that failed longest ago (dc1) is still
	// tried, and only it.
	clk.add(time.Second)
	delete(f.dialErr, dc1)
	if _, ok, err := b.Authenticate(t.Context(), "alice", "Alice-Pass1"); !ok || err != nil {
		t.Fatalf("all marked down: the least recently failed DC was not tried: ok=%v err=%v", ok, err)
	}
	if f.dialCount(dc2) != 1 {
		t.Fatalf("dc2 dialled %d times", f.dialCount(dc2))
	}
}

func TestPoolReusesConnections(t *testing.T) {
	f := newFakeDir()
	b := f.backend(t, nil)
	for range 20 {
		if _, ok, err := b.Authenticate(t.Context(), "alice", "Alice-Pass1"); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	// One service connection and one bind connection.
	if n := f.dialCount("ldaps://dc1.hospital.test"); n != 2 {
		t.Fatalf("%d dials for 20 sequential sign-ins", n)
	}
	// The service connection never stays bound as a user: every bind on it
	// is the service account's, and the user binds happened elsewhere.
	svcBinds := 0
	for _, n := range f.bindNames() {
		if n == f.svcDN {
			svcBinds++
		}
	}
	if svcBinds != 1 {
		t.Fatalf("service account bound %d times", svcBinds)
	}
	// A pooled connection that died is replaced transparently.
	d := b.static[0]
	c := d.get(d.svc, b.now())
	if c == nil {
		t.Fatal("no pooled service connection")
	}
	_ = c.Close() // the DC dropped it while idle
	d.put(d.svc, c, b.now())
	dials := f.dialCount("ldaps://dc1.hospital.test")
	if _, ok, err := b.Authenticate(t.Context(), "alice", "Alice-Pass1"); !ok || err != nil {
		t.Fatalf("stale pooled connection: ok=%v err=%v", ok, err)
	}
	if !b.Health()[0].Up || f.dialCount("ldaps://dc1.hospital.test") != dials+1 {
		t.Fatal("a stale pooled connection marked the DC down, or was not replaced")
	}
	_ = b.Close()
	if n := f.open.Load(); n != 0 {
		t.Fatalf("%d connections open after Close", n)
	}
}

func TestConcurrentSignInsRunInParallel(t *testing.T) {
	f := newFakeDir()
	f.bindDelay = 100 * time.Millisecond
	b := f.backend(t, func(c *Config) { c.Pool = 32 })
	const n = 32
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			if _, ok, err := b.Authenticate(t.Context(), "alice", "Alice-Pass1"); !ok || err != nil {
				errs <- errors.Join(err, errors.New("not ok"))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("%d concurrent sign-ins with a 100 ms bind: %v (serial would be >= %v)", n, took, n*f.bindDelay*2)
	// Each sign-in binds twice at most (service + user); serial would take
	// at least 3.2 s.
	if took > 800*time.Millisecond {
		t.Fatalf("took %v: sign-ins are queued", took)
	}
}

func TestHungDCHonoursContext(t *testing.T) {
	f := newFakeDir()
	f.hang["ldaps://dc1.hospital.test"] = true
	b := f.backend(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, ok, err := b.Authenticate(ctx, "alice", "Alice-Pass1")
	if ok || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("took %v", took)
	}
}

func TestLookup(t *testing.T) {
	f := newFakeDir()
	b := f.backend(t, nil)
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	b.now = clk.now
	alice := f.users[0]
	id, err := b.Lookup(t.Context(), alice.dn)
	if err != nil || id.ID != "alice" || len(id.Groups) != 2 {
		t.Fatalf("%+v %v", id, err)
	}
	toFT := func(t time.Time) string {
		return strconvItoa(t.UnixNano()/100 + 116444736000000000)
	}
	cases := []struct {
		attr, val string
		is        error
		state     AccountState
	}{
		{"userAccountControl", "514", ErrAccountDisabled, StateDisabled},
		{"msDS-User-Account-Control-Computed", "16", ErrAccountDisabled, StateLockedOut},
		{"lockoutTime", "133000000000000000", ErrAccountDisabled, StateLockedOut},
		{"accountExpires", toFT(clk.now().Add(-time.Hour)), ErrAccountDisabled, StateAccountExpired},
		{"pwdAccountLockedTime", "20240101000000Z", ErrAccountDisabled, StateLockedOut},
	}
	for _, c := range cases {
		alice.attrs[c.attr] = []string{c.val}
		_, err := b.Lookup(t.Context(), alice.dn)
		var ae *AccountError
		if !errors.Is(err, c.is) || !errors.As(err, &ae) || ae.State != c.state || ae.UserMessage() == "" {
			t.Errorf("%s=%s: %v", c.attr, c.val, err)
		}
		delete(alice.attrs, c.attr)
	}
	for _, ok := range []struct{ attr, val string }{
		{"userAccountControl", "512"}, {"accountExpires", "0"}, {"accountExpires", "9223372036854775807"},
		{"accountExpires", toFT(clk.now().Add(time.Hour))}, {"lockoutTime", "0"},
	} {
		alice.attrs[ok.attr] = []string{ok.val}
		if _, err := b.Lookup(t.Context(), alice.dn); err != nil {
			t.Errorf("%s=%s: %v", ok.attr, ok.val, err)
		}
		delete(alice.attrs, ok.attr)
	}
	if _, err := b.Lookup(t.Context(), "CN=gone,OU=Staff,DC=hospital,DC=test"); !errors.Is(err, ErrAccountGone) {
		t.Fatalf("gone: %v", err)
	}
	f.dialErr["ldaps://dc1.hospital.test"] = errors.New("down")
	f.dialErr["ldaps://dc2.hospital.test"] = errors.New("down")
	for _, d := range b.static {
		d.drain()
	}
	if _, err := b.Lookup(t.Context(), alice.dn); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrAccountGone) {
		t.Fatalf("down: %v", err)
	}
	direct := f.backend(t, func(c *Config) { c.BindDN, c.BindPassword = "", "" })
	if _, err := direct.Lookup(t.Context(), alice.dn); !errors.Is(err, ErrNoServiceAccount) {
		t.Fatalf("no service account: %v", err)
	}
}

func strconvItoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestCredentialCache(t *testing.T) {
	f := newFakeDir()
	f.bindDelay = 50 * time.Millisecond
	b := f.backend(t, func(c *Config) { c.Cache = time.Minute })
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	b.now = clk.now
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, ok, err := b.AuthenticateCached(t.Context(), "alice", "Alice-Pass1"); !ok || err != nil {
				t.Error(ok, err)
			}
		})
	}
	wg.Wait()
	userBinds := func() int {
		n := 0
		for _, x := range f.bindNames() {
			if x == f.users[0].dn {
				n++
			}
		}
		return n
	}
	if n := userBinds(); n != 1 {
		t.Fatalf("16 concurrent identical checks made %d binds", n)
	}
	if _, ok, _ := b.AuthenticateCached(t.Context(), "alice", "Alice-Pass1"); !ok || userBinds() != 1 {
		t.Fatal("cache miss")
	}
	// A wrong password is never answered from the cache, nor cached.
	for range 2 {
		if _, ok, _ := b.AuthenticateCached(t.Context(), "alice", "wrong"); ok {
			t.Fatal("wrong password accepted")
		}
	}
	if n := userBinds(); n != 3 {
		t.Fatalf("binds %d", n)
	}
	clk.add(61 * time.Second)
	if _, ok, _ := b.AuthenticateCached(t.Context(), "alice", "Alice-Pass1"); !ok || userBinds() != 4 {
		t.Fatal("expired entry used")
	}
	// Authenticate never uses the cache.
	if _, ok, _ := b.Authenticate(t.Context(), "alice", "Alice-Pass1"); !ok || userBinds() != 5 {
		t.Fatal("Authenticate used the cache")
	}
	// The key is not the password.
	k := b.cache.keyOf("alice", "Alice-Pass1")
	if strings.Contains(string(k[:]), "Alice-Pass1") {
		t.Fatal("password in key")
	}
}

func TestCacheBounded(t *testing.T) {
	c, err := newCredCache(time.Minute, 100)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	for i := range 1000 {
		c.put(c.keyOf(strconvItoa(int64(i)), "p"), groups.Identity{ID: "x"}, now)
	}
	if c.len() > 100 || len(c.queue) > 200 {
		t.Fatalf("cache grew to %d (%d queued)", c.len(), len(c.queue))
	}
	if _, ok := c.get(c.keyOf("999", "p"), now); !ok {
		t.Fatal("newest evicted")
	}
	if _, ok := c.get(c.keyOf("0", "p"), now); ok {
		t.Fatal("oldest kept")
	}
}

type fakeResolver struct {
	srv []*net.SRV
	err error
	n   int
}

func (r *fakeResolver) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	r.n++
	if service != "ldap" || proto != "tcp" || name != "hospital.test" {
		return "", nil, errors.New("unexpected query " + service + proto + name)
	}
	return "", r.srv, r.err
}

func TestSRV(t *testing.T) {
	f := newFakeDir()
	res := &fakeResolver{srv: []*net.SRV{
		{Target: "dc3.hospital.test.", Port: 389, Priority: 10, Weight: 100},
		{Target: "dc2.hospital.test.", Port: 389, Priority: 0, Weight: 10},
		{Target: "dc1.hospital.test.", Port: 389, Priority: 0, Weight: 50},
	}}
	b := f.backend(t, func(c *Config) { c.URLs = nil; c.SRV = "hospital.test"; c.Resolver = res })
	if res.n != 0 {
		t.Fatal("New resolved SRV")
	}
	list, err := b.dcs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, d := range list {
		urls = append(urls, d.url)
	}
	if want := []string{"ldaps://dc1.hospital.test:636", "ldaps://dc2.hospital.test:636", "ldaps://dc3.hospital.test:636"}; !slices.Equal(urls, want) {
		t.Fatalf("%q", urls)
	}
	if list[0].tlsConf.ServerName != "dc1.hospital.test" {
		t.Fatal(list[0].tlsConf.ServerName)
	}
	f.dialErr["ldaps://dc1.hospital.test:636"] = errors.New("down")
	if _, ok, err := b.Authenticate(t.Context(), "alice", "Alice-Pass1"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if f.dialCount("ldaps://dc2.hospital.test:636") == 0 {
		t.Fatal("dc2 not used")
	}
	// A failed re-resolution keeps the last answer.
	b.srvAt = time.Time{}
	res.err = errors.New("no DNS")
	if l, err := b.dcs(t.Context()); err != nil || len(l) != 3 {
		t.Fatal(l, err)
	}
	st := f.backend(t, func(c *Config) {
		c.URLs = nil
		c.SRV = "hospital.test"
		c.StartTLS = true
		c.Resolver = &fakeResolver{srv: res.srv}
	})
	l, _ := st.dcs(t.Context())
	if l[0].url != "ldap://dc1.hospital.test:389" || !l[0].startTLS {
		t.Fatal(l[0].url)
	}
	none := f.backend(t, func(c *Config) {
		c.URLs = nil
		c.SRV = "hospital.test"
		c.Resolver = &fakeResolver{err: errors.New("NXDOMAIN")}
	})
	if _, _, err := none.Authenticate(t.Context(), "alice", "Alice-Pass1"); !errors.Is(err, ErrUnavailable) {
		t.Fatal(err)
	}
}

func TestConfigValidation(t *testing.T) {
	base := newFakeDir().config()
	bad := map[string]func(*Config){
		"plaintext":          func(c *Config) { c.URLs = []string{"ldap://dc1"} },
		"no url":             func(c *Config) { c.URLs = nil },
		"url and srv":        func(c *Config) { c.SRV = "x" },
		"bad scheme":         func(c *Config) { c.URLs = []string{"http://dc1"} },
		"ldaps + starttls":   func(c *Config) { c.StartTLS = true },
		"no base":            func(c *Config) { c.BaseDN = "" },
		"bad base":           func(c *Config) { c.BaseDN = "not a dn" },
		"bind_dn no pw":      func(c *Config) { c.BindPassword = "" },
		"flavor":             func(c *Config) { c.Flavor = "novell" },
		"filter no user":     func(c *Config) { c.UserFilter = "(uid=x)" },
		"filter bad":         func(c *Config) { c.UserFilter = "(uid={username}" },
		"attr key":           func(c *Config) { c.Attributes = map[string]string{"phone": "tel"} },
		"ca file":            func(c *Config) { c.CAFile = "/nonexistent.pem" },
		"openldap no bind":   func(c *Config) { c.Flavor = "openldap"; c.BindDN, c.BindPassword = "", "" },
		"direct no name":     func(c *Config) { c.BindDN, c.BindPassword = "", ""; c.Domain, c.UPNSuffix = "", "" },
		"negative pool":      func(c *Config) { c.Pool = -1 },
		"domain with slash":  func(c *Config) { c.Domain = `HOSPITAL\x` },
		"url with path":      func(c *Config) { c.URLs = []string{"ldaps://dc1/DC=x"} },
		"negative timeout":   func(c *Config) { c.Timeout = -1 },
		"password no bindDN": func(c *Config) { c.BindDN = "" },
	}
	for name, mut := range bad {
		c := base
		mut(&c)
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err := New(func() Config { c := base; c.URLs = []string{"ldap://dc1"}; return c }())
	if err == nil || !strings.Contains(err.Error(), "use ldaps:// or add starttls") {
		t.Fatalf("plaintext advice: %v", err)
	}
	good := map[string]func(*Config){
		"defaults":       func(*Config) {},
		"starttls":       func(c *Config) { c.URLs = []string{"ldap://dc1:389"}; c.StartTLS = true },
		"plaintext lab":  func(c *Config) { c.URLs = []string{"ldap://dc1"}; c.AllowPlaintext = true },
		"srv":            func(c *Config) { c.URLs = nil; c.SRV = "hospital.test" },
		"openldap":       func(c *Config) { c.Flavor = "OpenLDAP" },
		"attrs":          func(c *Config) { c.Attributes = map[string]string{"username": "userPrincipalName"} },
		"direct domain":  func(c *Config) { c.BindDN, c.BindPassword = "", ""; c.UPNSuffix = "" },
		"trailing slash": func(c *Config) { c.URLs = []string{"ldaps://dc1:636/"} },
	}
	for name, mut := range good {
		c := base
		mut(&c)
		b, err := New(c)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		_ = b.Close()
	}
}

func TestDNKeyAndCN(t *testing.T) {
	var s groupSet
	added := s.addAll([]string{
		`CN=QA-Radiology\, Nuclear,OU=Groups,DC=hospital,DC=test`,
		`cn=qa-radiology\2c nuclear,ou=groups,dc=hospital,dc=test`, // same group, another spelling
		`CN=QA-Staff,OU=CN=Fake,DC=hospital,DC=test`,
		`OU=NotAGroup,DC=hospital,DC=test`,
		`garbage`,
	})
	names := groups.Names(added)
	if !slices.Equal(names, []string{"QA-Radiology, Nuclear", "QA-Staff"}) {
		t.Fatalf("%q", names)
	}
}

func TestTraceHasNoSecrets(t *testing.T) {
	f := newFakeDir()
	var mu sync.Mutex
	var lines []string
	b := f.backend(t, func(c *Config) {
		c.Trace = func(format string, args ...any) {
			mu.Lock()
			lines = append(lines, fmt.Sprintf(format, args...))
			mu.Unlock()
		}
	})
	_, _, _ = b.Authenticate(t.Context(), "alice", "Alice-Pass1")
	_, _, _ = b.Authenticate(t.Context(), "alice", "Wrong-Pass1")
	_, _, _ = b.Authenticate(t.Context(), "dave", "Right-Pass1")
	all := strings.Join(lines, "\n")
	if len(lines) < 5 {
		t.Fatalf("trace too short:\n%s", all)
	}
	for _, secret := range []string{"Alice-Pass1", "Wrong-Pass1", "Right-Pass1", f.svcPW} {
		if strings.Contains(all, secret) {
			t.Fatalf("trace contains %q:\n%s", secret, all)
		}
	}
}

// TestRefusalLatency: the time an unknown name is made to wait is the
// median of the DC's recent password refusals (the seed until there is
// one), never more than the limit, and cut short by the request's end.
func TestRefusalLatency(t *testing.T) {
	var l latency
	if l.estimate() != 0 {
		t.Fatal("an empty estimate waits")
	}
	l.seed(4 * time.Millisecond)
	if got := l.estimate(); got != 4*time.Millisecond {
		t.Fatalf("seeded estimate %v", got)
	}
	for _, ms := range []int{3, 100, 3, 2, 3} { // one slow outlier
		l.observe(time.Duration(ms) * time.Millisecond)
	}
	if got := l.estimate(); got != 3*time.Millisecond {
		t.Fatalf("median of refusals: %v, want 3ms", got)
	}
	for range 2 * latencySamples { // the window slides
		l.observe(8 * time.Millisecond)
	}
	if got := l.estimate(); got != 8*time.Millisecond {
		t.Fatalf("after the window slid: %v, want 8ms", got)
	}
	start := time.Now()
	l.wait(t.Context(), time.Second)
	if d := time.Since(start); d < 8*time.Millisecond || d > 100*time.Millisecond {
		t.Fatalf("waited %v for an 8ms estimate", d)
	}
	start = time.Now()
	l.wait(t.Context(), 2*time.Millisecond)
	if d := time.Since(start); d < 2*time.Millisecond || d > 50*time.Millisecond {
		t.Fatalf("waited %v with a 2ms limit", d)
	}
	l.seed(0)
	for range latencySamples {
		l.observe(10 * time.Second)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	start = time.Now()
	l.wait(ctx, time.Minute)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a cancelled request waited %v", d)
	}
}
