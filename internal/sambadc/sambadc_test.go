package sambadc

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/caddy-adauth/adauth/internal/serverproc"
)

// bindErr binds on a fresh connection and returns the bind error.
func bindErr(t *testing.T, dc *DC, name, password string) error {
	t.Helper()
	return serverproc.Dial(t, dc.LDAPURL, nil).Bind(name, password)
}

// wantCode asserts a failed bind with result 49 and the AD sub-code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Errorf("bind succeeded, want data %s", code)
		return
	}
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Errorf("bind error %v, want result 49", err)
	}
	if !strings.Contains(err.Error(), "data "+code+",") {
		t.Errorf("bind error %q, want data %s", err, code)
	}
}

func TestBinds(t *testing.T) {
	t0 := time.Now()
	dc := Start(t)
	t.Logf("start: %v; cache %+v", time.Since(t0), CacheTimings())

	for _, u := range Users() {
		t.Run(u.SAM, func(t *testing.T) {
			err := bindErr(t, dc, u.UPN(), u.Password)
			if u.Code == "" {
				if err != nil {
					t.Fatalf("bind %s: %v", u.UPN(), err)
				}
			} else {
				wantCode(t, err, u.Code)
			}
			// A wrong password never reveals the account state.
			wantCode(t, bindErr(t, dc, u.UPN(), u.Password+"x"), "52e")
		})
	}
	t.Run("name forms", func(t *testing.T) {
		for _, name := range []string{Alice.UPN(), Alice.NetBIOS(), Alice.DN, Juergen.NetBIOS(), Juergen.DN, Mallory.DN} {
			pw := Alice.Password
			switch {
			case strings.Contains(name, "rgen"):
				pw = Juergen.Password
			case strings.Contains(name, "mallory"):
				pw = Mallory.Password
			}
			if err := bindErr(t, dc, name, pw); err != nil {
				t.Errorf("bind %q: %v", name, err)
			}
		}
		if err := bindErr(t, dc, "alice", Alice.Password); err == nil {
			t.Error("bare sAMAccountName bound, want failure")
		}
		if err := bindErr(t, dc, AdminDN, AdminPassword); err != nil {
			t.Errorf("admin bind: %v", err)
		}
		if err := bindErr(t, dc, dc.ServiceDN, dc.ServicePassword); err != nil {
			t.Errorf("service bind: %v", err)
		}
		wantCode(t, bindErr(t, dc, "nobody@hospital.test", "x"), "52e")
		wantCode(t, bindErr(t, dc, Mallory.UPN(), `p*)(|(uid=*)`), "52e")
	})
	t.Run("empty password", func(t *testing.T) {
		// go-ldap refuses an empty password for Bind; ask for the
		// unauthenticated bind explicitly to see what Samba says.
		c := serverproc.Dial(t, dc.LDAPURL, nil)
		err := c.UnauthenticatedBind(Alice.UPN())
		t.Logf("unauthenticated bind as alice: %v", err)
		if err == nil {
			if _, err := c.Search(ldap.NewSearchRequest(BaseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
				"(objectClass=*)", nil, nil)); err == nil {
				t.Error("unauthenticated bind could search the domain")
			}
		}
	})
}

func TestLockout(t *testing.T) {
	dc := Start(t)
	for i := 0; i < LockoutThreshold; i++ {
		wantCode(t, bindErr(t, dc, Heidi.UPN(), "wrong"), "52e")
	}
	wantCode(t, bindErr(t, dc, Heidi.UPN(), Heidi.Password), "775")
	// Others are not affected (no domain-wide lockout).
	for i := 0; i < LockoutThreshold+2; i++ {
		wantCode(t, bindErr(t, dc, Carol.UPN(), "wrong"), "52e")
	}
	if err := bindErr(t, dc, Carol.UPN(), Carol.Password); err != nil {
		t.Fatalf("carol after wrong passwords: %v", err)
	}
}

func TestTLS(t *testing.T) {
	dc := Start(t)
	good := dc.TLSConfig()
	bad := &tls.Config{RootCAs: dc.PKI.Other().CAPool, ServerName: dc.IP}
	byName := &tls.Config{RootCAs: dc.PKI.CAPool, ServerName: "dc1.hospital.test"}

	t.Run("ldaps", func(t *testing.T) {
		for _, tc := range []*tls.Config{good, byName} {
			c := serverproc.Dial(t, dc.LDAPSURL, tc)
			if err := c.Bind(Alice.UPN(), Alice.Password); err != nil {
				t.Fatalf("bind over LDAPS: %v", err)
			}
		}
		_, err := ldap.DialURL(dc.LDAPSURL, ldap.DialWithTLSConfig(bad))
		if err == nil {
			t.Fatal("LDAPS with the other CA connected")
		}
		if !strings.Contains(err.Error(), "unknown authority") {
			t.Errorf("LDAPS with the other CA: %v, want unknown authority", err)
		}
	})
	t.Run("starttls", func(t *testing.T) {
		c := serverproc.Dial(t, dc.LDAPURL, nil)
		if err := c.StartTLS(good); err != nil {
			t.Fatalf("StartTLS: %v", err)
		}
		if err := c.Bind(Alice.UPN(), Alice.Password); err != nil {
			t.Fatalf("bind after StartTLS: %v", err)
		}
		c2 := serverproc.Dial(t, dc.LDAPURL, nil)
		if err := c2.StartTLS(bad); err == nil {
			t.Fatal("StartTLS with the other CA succeeded")
		} else if !strings.Contains(err.Error(), "unknown authority") {
			t.Errorf("StartTLS with the other CA: %v, want unknown authority", err)
		}
	})
	t.Run("plain simple bind allowed", func(t *testing.T) {
		// ldap server require strong auth = no: simple binds over plain LDAP work.
		if err := bindErr(t, dc, Alice.UPN(), Alice.Password); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDirectory(t *testing.T) {
	dc := Start(t)
	c := serverproc.Dial(t, dc.LDAPURL, nil)
	if err := c.Bind(dc.ServiceDN, dc.ServicePassword); err != nil {
		t.Fatal(err)
	}

	t.Run("alice", func(t *testing.T) {
		es := serverproc.Search(t, c, BaseDN, "(&(objectClass=user)(sAMAccountName=alice))", "memberOf", "mail", "givenName", "sn", "userPrincipalName", "distinguishedName")
		if len(es) != 1 {
			t.Fatalf("%d entries", len(es))
		}
		e := es[0]
		if !serverproc.SameDN(e.DN, Alice.DN) {
			t.Errorf("DN %s, want %s", e.DN, Alice.DN)
		}
		for attr, want := range map[string]string{"mail": "alice@hospital.test", "givenName": "Alice", "sn": "Andersen", "userPrincipalName": "alice@hospital.test"} {
			if got := e.GetAttributeValue(attr); got != want {
				t.Errorf("%s = %q, want %q", attr, got, want)
			}
		}
		got := serverproc.CNs(t, e.GetAttributeValues("memberOf"))
		want := slices.Sorted(slices.Values(Alice.Groups))
		if !slices.Equal(got, want) {
			t.Errorf("memberOf CNs %q, want %q", got, want)
		}
		if !slices.ContainsFunc(e.GetAttributeValues("memberOf"), func(s string) bool { return serverproc.SameDN(s, GroupRadiology) }) {
			t.Errorf("memberOf %q lacks %s", e.GetAttributeValues("memberOf"), GroupRadiology)
		}
	})
	t.Run("every user's direct groups", func(t *testing.T) {
		for _, u := range Users() {
			es := serverproc.Search(t, c, BaseDN, "(sAMAccountName="+ldap.EscapeFilter(u.SAM)+")", "memberOf", "givenName")
			if len(es) != 1 {
				t.Errorf("%s: %d entries", u.SAM, len(es))
				continue
			}
			got := serverproc.CNs(t, es[0].GetAttributeValues("memberOf"))
			want := slices.Sorted(slices.Values(u.Groups))
			if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("%s memberOf %q, want %q", u.SAM, got, want)
			}
			if g := es[0].GetAttributeValue("givenName"); g != u.GivenName {
				t.Errorf("%s givenName %q, want %q", u.SAM, g, u.GivenName)
			}
		}
	})
	t.Run("nested", func(t *testing.T) {
		es := serverproc.Search(t, c, BaseDN, "(&(objectClass=group)(member:1.2.840.113556.1.4.1941:="+ldap.EscapeFilter(Bob.DN)+"))", "cn")
		var cns []string
		for _, e := range es {
			cns = append(cns, e.GetAttributeValue("cn"))
		}
		slices.Sort(cns)
		if want := []string{"QA-Therapists", "QA-Therapists-Nested"}; !slices.Equal(cns, want) {
			t.Errorf("nested groups of bob %q, want %q", cns, want)
		}
		es = serverproc.Search(t, c, BaseDN, "(sAMAccountName=bob)", "memberOf")
		if got := serverproc.CNs(t, es[0].GetAttributeValues("memberOf")); !slices.Equal(got, []string{"QA-Therapists-Nested"}) {
			t.Errorf("bob memberOf %q", got)
		}
	})
	t.Run("escaped comma group", func(t *testing.T) {
		res, err := c.Search(ldap.NewSearchRequest(GroupRadiology, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 10, false,
			"(objectClass=group)", []string{"cn", "sAMAccountName", "member"}, nil))
		if err != nil {
			t.Fatal(err)
		}
		e := res.Entries[0]
		if e.GetAttributeValue("cn") != "QA-Radiology, Nuclear" || e.GetAttributeValue("sAMAccountName") != "QA-Radiology-Nuclear" {
			t.Errorf("cn %q sAMAccountName %q", e.GetAttributeValue("cn"), e.GetAttributeValue("sAMAccountName"))
		}
		if m := e.GetAttributeValues("member"); len(m) != 1 || !serverproc.SameDN(m[0], Alice.DN) {
			t.Errorf("member %q", m)
		}
		es := serverproc.Search(t, c, BaseDN, "(cn="+ldap.EscapeFilter("QA-Radiology, Nuclear")+")", "cn")
		if len(es) != 1 {
			t.Errorf("by cn: %d entries", len(es))
		}
	})
	t.Run("non-ascii", func(t *testing.T) {
		es := serverproc.Search(t, c, BaseDN, "(sAMAccountName=jürgen)", "givenName", "sn", "memberOf")
		if len(es) != 1 || es[0].GetAttributeValue("givenName") != "Jürgen" || es[0].GetAttributeValue("sn") != "Müller" {
			t.Fatalf("jürgen: %v", es)
		}
		if !serverproc.SameDN(es[0].DN, Juergen.DN) {
			t.Errorf("DN %s", es[0].DN)
		}
	})
	t.Run("metacharacters in filter", func(t *testing.T) {
		// An injected filter value must match nothing once escaped.
		if es := serverproc.Search(t, c, BaseDN, "(sAMAccountName="+ldap.EscapeFilter("*)(sAMAccountName=alice")+")", "cn"); len(es) != 0 {
			t.Errorf("escaped injection matched %d", len(es))
		}
	})
	t.Run("anonymous", func(t *testing.T) {
		a := serverproc.Dial(t, dc.LDAPURL, nil)
		_, err := a.Search(ldap.NewSearchRequest(BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 10, false,
			"(sAMAccountName=alice)", []string{"cn"}, nil))
		if err == nil {
			t.Error("anonymous search allowed")
		} else {
			t.Logf("anonymous search: %v", err)
		}
	})
	t.Run("password policies", func(t *testing.T) {
		// Only administrators may read the Password Settings Container.
		if es := serverproc.Search(t, c, "CN=Password Settings Container,CN=System,"+BaseDN, "(objectClass=msDS-PasswordSettings)", "cn"); len(es) != 0 {
			t.Errorf("service account sees %d PSOs", len(es))
		}
		ac := dc.Conn(t, AdminDN, AdminPassword)
		es := serverproc.Search(t, ac, "CN=Password Settings Container,CN=System,"+BaseDN, "(objectClass=msDS-PasswordSettings)", "cn", "msDS-PSOAppliesTo")
		if len(es) != 2 {
			t.Errorf("%d PSOs, want 2", len(es))
		}
	})
}

func TestSambaToolMidTest(t *testing.T) {
	dc := Start(t)
	t0 := time.Now()
	dc.SambaTool(t, "user", "disable", Alice.SAM)
	wantCode(t, bindErr(t, dc, Alice.UPN(), Alice.Password), "533")
	dc.SambaTool(t, "user", "enable", Alice.SAM)
	if err := bindErr(t, dc, Alice.UPN(), Alice.Password); err != nil {
		t.Fatalf("after enable: %v", err)
	}
	dc.SambaTool(t, "group", "removemembers", "QA-Staff", Alice.SAM)
	c := serverproc.Dial(t, dc.LDAPURL, nil)
	if err := c.Bind(dc.ServiceDN, dc.ServicePassword); err != nil {
		t.Fatal(err)
	}
	es := serverproc.Search(t, c, BaseDN, "(sAMAccountName=alice)", "memberOf")
	if got := serverproc.CNs(t, es[0].GetAttributeValues("memberOf")); slices.Contains(got, "QA-Staff") {
		t.Errorf("memberOf after removemembers: %q", got)
	}
	dc.SambaTool(t, "user", "setpassword", Alice.SAM, "--newpassword=New.Alice.1")
	wantCode(t, bindErr(t, dc, Alice.UPN(), Alice.Password), "52e")
	if err := bindErr(t, dc, Alice.UPN(), "New.Alice.1"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	t.Logf("4 samba-tool changes took %v", time.Since(t0))
}

func TestStartN(t *testing.T) {
	t0 := time.Now()
	dcs := StartN(t, 2)
	t.Logf("StartN(2): %v", time.Since(t0))
	if dcs[0].IP == dcs[1].IP {
		t.Fatalf("both DCs on %s", dcs[0].IP)
	}
	for _, dc := range dcs {
		if dc.CAFile != dcs[0].CAFile {
			t.Error("DCs have different CAs")
		}
		c := serverproc.Dial(t, dc.LDAPSURL, &tls.Config{RootCAs: dc.PKI.CAPool})
		if err := c.Bind(Alice.UPN(), Alice.Password); err != nil {
			t.Fatalf("%s: %v", dc.IP, err)
		}
	}
	// Independent copies: a change on one is not on the other.
	dcs[0].SambaTool(t, "user", "disable", Bob.SAM)
	wantCode(t, bindErr(t, dcs[0], Bob.UPN(), Bob.Password), "533")
	if err := bindErr(t, dcs[1], Bob.UPN(), Bob.Password); err != nil {
		t.Fatalf("bob on the second DC: %v", err)
	}

	// A dead DC refuses connections; Restart revives it.
	dcs[0].Stop()
	dcs[0].Stop()
	if dcs[0].Running() {
		t.Fatal("running after Stop")
	}
	if c, err := net.DialTimeout("tcp", dcs[0].IP+":389", time.Second); err == nil {
		c.Close()
		t.Fatal("stopped DC still accepts connections")
	}
	if err := bindErr(t, dcs[1], Alice.UPN(), Alice.Password); err != nil {
		t.Fatalf("second DC after the first stopped: %v", err)
	}
	t0 = time.Now()
	dcs[0].Restart(t)
	t.Logf("restart: %v", time.Since(t0))
	wantCode(t, bindErr(t, dcs[0], Bob.UPN(), Bob.Password), "533") // state kept
}

func TestIPLocks(t *testing.T) {
	ip, f, err := lockIP()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dc := Start(t)
	if dc.IP == ip {
		t.Fatalf("DC took locked address %s", ip)
	}
	t.Logf("held %s, DC got %s", ip, dc.IP)
}

func TestTokenGroups(t *testing.T) {
	dc := Start(t)
	c := dc.Conn(t, dc.ServiceDN, dc.ServicePassword)
	res, err := c.Search(ldap.NewSearchRequest(Bob.DN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 10, false,
		"(objectClass=*)", []string{"tokenGroups"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	tg := res.Entries[0].GetRawAttributeValues("tokenGroups")
	g, err := c.Search(ldap.NewSearchRequest(GroupTherapists, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 10, false,
		"(objectClass=group)", []string{"objectSid"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	sid := g.Entries[0].GetRawAttributeValue("objectSid")
	if !slices.ContainsFunc(tg, func(v []byte) bool { return string(v) == string(sid) }) {
		t.Errorf("bob's tokenGroups (%d SIDs) lack QA-Therapists", len(tg))
	}
}

func TestParallelStarts(t *testing.T) {
	var mu sync.Mutex
	live := map[string]bool{}
	for i := 0; i < 3; i++ {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			dc := Start(t)
			mu.Lock()
			if live[dc.IP] {
				t.Errorf("two live DCs on %s", dc.IP)
			}
			live[dc.IP] = true
			mu.Unlock()
			t.Cleanup(func() { mu.Lock(); delete(live, dc.IP); mu.Unlock() })
			if err := bindErr(t, dc, Carol.UPN(), Carol.Password); err != nil {
				t.Fatal(err)
			}
		})
	}
}
