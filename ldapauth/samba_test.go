package ldapauth_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/caddy-adauth/adauth/groups"
	"github.com/caddy-adauth/adauth/internal/sambadc"
	"github.com/caddy-adauth/adauth/internal/serverproc"
	"github.com/caddy-adauth/adauth/ldapauth"
)

func sambaConfig(dc *sambadc.DC) ldapauth.Config {
	return ldapauth.Config{
		URLs: []string{dc.LDAPSURL}, CAFile: dc.CAFile,
		Domain: dc.Domain, UPNSuffix: dc.UPNSuffix, BaseDN: dc.BaseDN,
		BindDN: dc.ServiceDN, BindPassword: dc.ServicePassword,
		Timeout: 5 * time.Second,
	}
}

func newBackend(t testing.TB, cfg ldapauth.Config) *ldapauth.Backend {
	t.Helper()
	b, err := ldapauth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func mustAuth(t *testing.T, b *ldapauth.Backend, user, password string) groups.Identity {
	t.Helper()
	id, ok, err := b.Authenticate(t.Context(), user, password)
	if err != nil || !ok {
		t.Fatalf("%q: ok=%v err=%v", user, ok, err)
	}
	return id
}

func hasAll(have []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func TestSamba(t *testing.T) {
	dc := sambadc.Start(t)
	svc := newBackend(t, sambaConfig(dc))
	direct := newBackend(t, func() ldapauth.Config {
		c := sambaConfig(dc)
		c.BindDN, c.BindPassword = "", ""
		return c
	}())

	t.Run("username forms", func(t *testing.T) {
		for name, b := range map[string]*ldapauth.Backend{"service": svc, "direct": direct} {
			for _, typed := range []string{"alice", "ALICE", `HOSPITAL\alice`, `hospital\ALICE`, "alice@hospital.test", "Alice@Hospital.Test"} {
				id := mustAuth(t, b, typed, sambadc.Alice.Password)
				names := groups.Names(id.Groups)
				if id.ID != "alice" || id.Email != "alice@hospital.test" || id.GivenName != "Alice" || id.FamilyName != "Andersen" ||
					!hasAll(names, "QA-Physicists", "QA-Staff", "QA-Radiology, Nuclear") {
					t.Fatalf("%s %q: %+v groups %q", name, typed, id, names)
				}
				if !strings.EqualFold(id.DN, sambadc.Alice.DN) {
					t.Fatalf("DN %q", id.DN)
				}
			}
		}
	})

	t.Run("bad credentials", func(t *testing.T) {
		for name, b := range map[string]*ldapauth.Backend{"service": svc, "direct": direct} {
			for _, c := range []struct{ u, p string }{
				{"alice", "wrong"}, {"nobody", "x"}, {`OTHER\alice`, sambadc.Alice.Password},
				{"alice@other.test", sambadc.Alice.Password}, {"alice", ""}, {"alice", "   "},
				{"*", sambadc.Alice.Password}, {"admin)(|(uid=*", "x"}, {"a*", sambadc.Alice.Password},
				{"alice)(sAMAccountName=*", sambadc.Alice.Password}, {"*)(objectClass=*", "x"},
			} {
				_, ok, err := b.Authenticate(t.Context(), c.u, c.p)
				if ok || err != nil {
					t.Errorf("%s %q/%q: ok=%v err=%v", name, c.u, c.p, ok, err)
				}
			}
		}
	})

	t.Run("account states", func(t *testing.T) {
		for _, u := range []sambadc.User{sambadc.Dave, sambadc.Erin, sambadc.Frank, sambadc.Grace} {
			for name, b := range map[string]*ldapauth.Backend{"service": svc, "direct": direct} {
				_, ok, err := b.Authenticate(t.Context(), u.SAM, u.Password)
				var ae *ldapauth.AccountError
				if ok || !errors.As(err, &ae) || ae.Code != u.Code || ae.UserMessage() == "" {
					t.Errorf("%s %s: ok=%v err=%v, want code %s", name, u.SAM, ok, err, u.Code)
					continue
				}
				t.Logf("%s (%s): %s", u.SAM, ae.Code, ae.UserMessage())
				// A wrong password reveals nothing.
				if _, ok, err := b.Authenticate(t.Context(), u.SAM, "Wrong.Pass"); ok || err != nil {
					t.Errorf("%s %s wrong password: ok=%v err=%v", name, u.SAM, ok, err)
				}
			}
		}
	})

	t.Run("nested and special groups", func(t *testing.T) {
		id := mustAuth(t, svc, "bob", sambadc.Bob.Password)
		if names := groups.Names(id.Groups); !hasAll(names, "QA-Therapists", "QA-Therapists-Nested") {
			t.Fatalf("bob nested: %q", names)
		}
		flat := newBackend(t, func() ldapauth.Config { c := sambaConfig(dc); c.NestedGroups = new(false); return c }())
		id = mustAuth(t, flat, "bob", sambadc.Bob.Password)
		if names := groups.Names(id.Groups); slices.Contains(names, "QA-Therapists") || !slices.Contains(names, "QA-Therapists-Nested") {
			t.Fatalf("bob flat: %q", names)
		}
		id = mustAuth(t, svc, "alice", sambadc.Alice.Password)
		for _, g := range id.Groups {
			if g.Name == "QA-Radiology, Nuclear" {
				want, _ := ldap.ParseDN(sambadc.GroupRadiology)
				got, err := ldap.ParseDN(g.DN)
				if err != nil || !got.EqualFold(want) {
					t.Fatalf("radiology DN %q", g.DN)
				}
			}
		}
		id = mustAuth(t, svc, "jürgen", sambadc.Juergen.Password)
		if id.ID != "jürgen" || id.GivenName != "Jürgen" || id.FamilyName != "Müller" {
			t.Fatalf("jürgen: %+v", id)
		}
		mustAuth(t, svc, "JÜRGEN", sambadc.Juergen.Password)
		for _, b := range []*ldapauth.Backend{svc, direct} {
			if id := mustAuth(t, b, "mallory", sambadc.MalloryPassword); id.ID != "mallory" {
				t.Fatalf("mallory: %+v", id)
			}
		}
		if id := mustAuth(t, svc, "oscar", sambadc.Oscar.Password); len(id.Groups) != 0 {
			t.Fatalf("oscar: %+v", id.Groups)
		}
	})

	t.Run("starttls", func(t *testing.T) {
		c := sambaConfig(dc)
		c.URLs, c.StartTLS = []string{dc.LDAPURL}, true
		mustAuth(t, newBackend(t, c), "alice", sambadc.Alice.Password)
	})

	t.Run("wrong CA", func(t *testing.T) {
		for _, starttls := range []bool{false, true} {
			c := sambaConfig(dc)
			c.CAFile = dc.PKI.Other().CAFile
			if starttls {
				c.URLs, c.StartTLS = []string{dc.LDAPURL}, true
			}
			_, ok, err := newBackend(t, c).Authenticate(t.Context(), "alice", sambadc.Alice.Password)
			if ok || !errors.Is(err, ldapauth.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("starttls=%v: ok=%v err=%v", starttls, ok, err)
			}
			t.Logf("starttls=%v: %v", starttls, err)
		}
	})

	t.Run("dead first DC", func(t *testing.T) {
		c := sambaConfig(dc)
		c.URLs = []string{"ldaps://127.0.0.1:1", dc.LDAPSURL}
		b := newBackend(t, c)
		start := time.Now()
		mustAuth(t, b, "alice", sambadc.Alice.Password)
		t.Logf("refused first DC, second used: %v", time.Since(start))
		if h := b.Health(); h[0].Up || !h[1].Up {
			t.Fatalf("%+v", h)
		}
		start = time.Now()
		mustAuth(t, b, "alice", sambadc.Alice.Password)
		t.Logf("next sign-in skips the down DC: %v", time.Since(start))
	})

	t.Run("silent DC times out", func(t *testing.T) {
		silent := serverproc.SilentListener(t)
		for _, scheme := range []string{"ldaps", "ldap"} {
			c := sambaConfig(dc)
			c.Timeout = 700 * time.Millisecond
			c.URLs = []string{scheme + "://" + silent, dc.LDAPSURL}
			if scheme == "ldap" {
				c.URLs, c.StartTLS = []string{"ldap://" + silent, dc.LDAPURL}, true
			}
			b := newBackend(t, c)
			start := time.Now()
			mustAuth(t, b, "alice", sambadc.Alice.Password)
			took := time.Since(start)
			t.Logf("%s: silent first DC, second used after %v (timeout %v)", scheme, took, c.Timeout)
			if took > c.Timeout+2*time.Second {
				t.Fatalf("took %v", took)
			}
			c.URLs = c.URLs[:1]
			b = newBackend(t, c)
			start = time.Now()
			_, ok, err := b.Authenticate(t.Context(), "alice", sambadc.Alice.Password)
			if ok || !errors.Is(err, ldapauth.ErrUnavailable) || time.Since(start) > c.Timeout+time.Second {
				t.Fatalf("only a silent DC: ok=%v err=%v after %v", ok, err, time.Since(start))
			}
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		var dials atomic.Int64
		b := newBackend(t, func() ldapauth.Config {
			c := sambaConfig(dc)
			c.Pool = 32
			c.Trace = func(format string, _ ...any) {
				if strings.HasPrefix(format, "ldap: connected") {
					dials.Add(1)
				}
			}
			return c
		}())
		mustAuth(t, b, "alice", sambadc.Alice.Password) // warm
		start := time.Now()
		for range 5 {
			mustAuth(t, b, "alice", sambadc.Alice.Password)
		}
		one := time.Since(start) / 5
		const n = 32
		burst := func() time.Duration {
			var wg sync.WaitGroup
			var failed sync.Map
			start := time.Now()
			for i := range n {
				wg.Go(func() {
					if _, ok, err := b.Authenticate(context.Background(), "alice", sambadc.Alice.Password); !ok || err != nil {
						failed.Store(i, err)
					}
				})
			}
			wg.Wait()
			failed.Range(func(k, v any) bool { t.Errorf("sign-in %v: %v", k, v); return true })
			return time.Since(start)
		}
		// A cold burst opens new LDAPS connections (each a TLS handshake and
		// a service bind, which the one-process Samba serialises); since some
		// return to the pool before others are needed, it takes a few bursts
		// until the pool holds what 32 at once need. Then a burst dials none.
		dials.Store(0)
		cold := burst()
		coldDials := dials.Load()
		var warm time.Duration
		for range 5 {
			dials.Store(0)
			if warm = burst(); dials.Load() == 0 {
				break
			}
		}
		if dials.Load() != 0 {
			t.Fatalf("the pool never held enough connections for %d at once: %d dials in the last burst", n, dials.Load())
		}
		t.Logf("one sign-in (pooled) %v; %d concurrent: cold pool %v (%d dials), warm pool %v wall (serial would be ~%v)",
			one, n, cold, coldDials, warm, n*one)
		bare := bareConcurrent(t, dc, n)
		t.Logf("the same %d sign-ins with bare go-ldap on %d pre-opened connection pairs: %v wall", n, n, bare)
		// Samba runs as one process (-M single) and answers one request at
		// a time, so the DC, not the client, bounds the wall time here; the
		// client-side parallelism is shown against slapd and the fake.
		if warm > 3*n*one {
			t.Errorf("32 concurrent sign-ins on a warm pool took %v: queued far beyond the DC's own pace", warm)
		}
	})

	t.Run("lookup", func(t *testing.T) {
		id, err := svc.Lookup(t.Context(), sambadc.Carol.DN)
		if err != nil || id.ID != "carol" || !slices.Contains(groups.Names(id.Groups), "QA-Admins") {
			t.Fatalf("%+v %v", id, err)
		}
		for _, u := range []sambadc.User{sambadc.Dave, sambadc.Grace} {
			if _, err := svc.Lookup(t.Context(), u.DN); !errors.Is(err, ldapauth.ErrAccountDisabled) {
				t.Errorf("%s: %v", u.SAM, err)
			}
		}
		if _, err := svc.Lookup(t.Context(), "CN=nobody,OU=Staff,DC=hospital,DC=test"); !errors.Is(err, ldapauth.ErrAccountGone) {
			t.Errorf("gone: %v", err)
		}
		dc.SambaTool(t, "user", "disable", "carol")
		if _, err := svc.Lookup(t.Context(), sambadc.Carol.DN); !errors.Is(err, ldapauth.ErrAccountDisabled) {
			t.Errorf("carol disabled: %v", err)
		}
		if _, err := direct.Lookup(t.Context(), sambadc.Carol.DN); !errors.Is(err, ldapauth.ErrNoServiceAccount) {
			t.Errorf("direct: %v", err)
		}
	})

	t.Run("lockout", func(t *testing.T) {
		for range sambadc.LockoutThreshold {
			if _, ok, err := svc.Authenticate(t.Context(), "heidi", "Wrong.Pass"); ok || err != nil {
				t.Fatal(ok, err)
			}
		}
		_, _, err := svc.Authenticate(t.Context(), "heidi", sambadc.Heidi.Password)
		var ae *ldapauth.AccountError
		if !errors.As(err, &ae) || ae.Code != "775" || !errors.Is(err, ldapauth.ErrAccountDisabled) {
			t.Fatalf("heidi: %v", err)
		}
		if _, err := svc.Lookup(t.Context(), sambadc.Heidi.DN); !errors.Is(err, ldapauth.ErrAccountDisabled) {
			t.Errorf("heidi lookup: %v", err)
		}
	})
}

func TestSambaTwoDCs(t *testing.T) {
	dcs := sambadc.StartN(t, 2)
	c := sambaConfig(dcs[0])
	c.URLs = []string{dcs[0].LDAPSURL, dcs[1].LDAPSURL}
	b := newBackend(t, c)
	mustAuth(t, b, "alice", sambadc.Alice.Password)
	dcs[0].Stop()
	start := time.Now()
	mustAuth(t, b, "alice", sambadc.Alice.Password)
	t.Logf("first DC stopped: second used after %v", time.Since(start))
	if h := b.Health(); h[0].Up || !h[1].Up {
		t.Fatalf("%+v", h)
	}
	dcs[1].Stop()
	_, ok, err := b.Authenticate(t.Context(), "alice", sambadc.Alice.Password)
	if ok || !errors.Is(err, ldapauth.ErrUnavailable) {
		t.Fatalf("all down: ok=%v err=%v", ok, err)
	}
	if _, err := b.Lookup(t.Context(), sambadc.Alice.DN); !errors.Is(err, ldapauth.ErrUnavailable) {
		t.Fatalf("lookup all down: %v", err)
	}
	dcs[0].Restart(t)
	// dc1 failed longest ago: it is still tried although marked down.
	mustAuth(t, b, "alice", sambadc.Alice.Password)
}

func BenchmarkLoginSamba(b *testing.B) {
	dc := sambadc.Start(b)
	be := newBackend(b, sambaConfig(dc))
	ctx := context.Background()
	for b.Loop() {
		if _, ok, err := be.Authenticate(ctx, "alice", sambadc.Alice.Password); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkBareGoLDAP is the floor: one connection, service bind, search,
// user bind, nested group search, as a hand-written go-ldap program would.
func BenchmarkBareGoLDAP(b *testing.B) {
	dc := sambadc.Start(b)
	c, err := ldap.DialURL(dc.LDAPSURL, ldap.DialWithTLSConfig(dc.TLSConfig()))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(dc.ServiceDN, dc.ServicePassword); err != nil {
		b.Fatal(err)
	}
	user, err := ldap.DialURL(dc.LDAPSURL, ldap.DialWithTLSConfig(dc.TLSConfig()))
	if err != nil {
		b.Fatal(err)
	}
	defer user.Close()
	for b.Loop() {
		res, err := c.Search(ldap.NewSearchRequest(dc.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 5, false,
			"(&(objectCategory=person)(objectClass=user)(sAMAccountName=alice))",
			[]string{"sAMAccountName", "mail", "givenName", "sn", "displayName", "memberOf"}, nil))
		if err != nil || len(res.Entries) != 1 {
			b.Fatal(err)
		}
		if err := user.Bind(res.Entries[0].DN, sambadc.Alice.Password); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Search(ldap.NewSearchRequest(dc.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 5, false,
			"(&(objectClass=group)(member:1.2.840.113556.1.4.1941:="+ldap.EscapeFilter(res.Entries[0].DN)+"))",
			[]string{"cn"}, nil)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCachedBasicSamba(b *testing.B) {
	dc := sambadc.Start(b)
	c := sambaConfig(dc)
	c.Cache = time.Minute
	be := newBackend(b, c)
	ctx := context.Background()
	for b.Loop() {
		if _, ok, err := be.AuthenticateCached(ctx, "alice", sambadc.Alice.Password); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// bareConcurrent runs n sign-ins (search, bind, group search) at once with
// plain go-ldap on pre-opened connections: the DC's own pace under load.
func bareConcurrent(t *testing.T, dc *sambadc.DC, n int) time.Duration {
	type pair struct{ svc, user *ldap.Conn }
	pairs := make([]pair, n)
	for i := range pairs {
		for _, c := range []**ldap.Conn{&pairs[i].svc, &pairs[i].user} {
			conn, err := ldap.DialURL(dc.LDAPSURL, ldap.DialWithTLSConfig(dc.TLSConfig()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			*c = conn
		}
		if err := pairs[i].svc.Bind(dc.ServiceDN, dc.ServicePassword); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	start := time.Now()
	for _, p := range pairs {
		wg.Go(func() {
			res, err := p.svc.Search(ldap.NewSearchRequest(dc.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 5, false,
				"(&(objectCategory=person)(objectClass=user)(sAMAccountName=alice))", []string{"sAMAccountName", "memberOf"}, nil))
			if err != nil || len(res.Entries) != 1 {
				t.Error(err)
				return
			}
			if err := p.user.Bind(res.Entries[0].DN, sambadc.Alice.Password); err != nil {
				t.Error(err)
				return
			}
			if _, err := p.svc.Search(ldap.NewSearchRequest(dc.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 5, false,
				"(&(objectClass=group)(member:1.2.840.113556.1.4.1941:="+ldap.EscapeFilter(res.Entries[0].DN)+"))", []string{"cn"}, nil)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}
