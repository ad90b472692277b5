package slapdtest

import (
	"crypto/tls"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/caddy-adauth/adauth/internal/serverproc"
)

// ppBind binds with the password-policy request control and returns the
// error and the ppolicy response control, if any.
func ppBind(t *testing.T, c *ldap.Conn, dn, password string) (*ldap.ControlBeheraPasswordPolicy, error) {
	t.Helper()
	res, err := c.SimpleBind(&ldap.SimpleBindRequest{Username: dn, Password: password,
		Controls: []ldap.Control{ldap.NewControlBeheraPasswordPolicy()}})
	var pp *ldap.ControlBeheraPasswordPolicy
	if res != nil {
		if ctl := ldap.FindControl(res.Controls, ldap.ControlTypeBeheraPasswordPolicy); ctl != nil {
			pp = ctl.(*ldap.ControlBeheraPasswordPolicy)
		}
	}
	return pp, err
}

func TestBinds(t *testing.T) {
	s := Start(t)
	for _, u := range Users() {
		t.Run(u.UID, func(t *testing.T) {
			c := serverproc.Dial(t, s.URL, nil)
			pp, err := ppBind(t, c, u.DN, u.Password)
			switch u.State {
			case StateOK:
				if err != nil {
					t.Fatalf("bind: %v", err)
				}
				if es := serverproc.Search(t, c, BaseDN, "(uid="+ldap.EscapeFilter(u.UID)+")", "cn"); len(es) != 1 {
					t.Errorf("self search: %d entries", len(es))
				}
			case StateLocked:
				if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
					t.Fatalf("bind: %v, want 49", err)
				}
				if pp == nil || pp.Error != 1 { // accountLocked
					t.Errorf("ppolicy control %+v, want accountLocked", pp)
				}
			case StateExpired:
				if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
					t.Fatalf("bind: %v, want 49", err)
				}
				if pp == nil || pp.Error != 0 { // passwordExpired
					t.Errorf("ppolicy control %+v, want passwordExpired", pp)
				}
			case StateMustChange:
				if err != nil {
					t.Fatalf("bind: %v (a must-change bind succeeds on OpenLDAP)", err)
				}
				if pp == nil || pp.Error != 2 { // changeAfterReset
					t.Errorf("ppolicy control %+v, want changeAfterReset", pp)
				}
				_, err := c.Search(ldap.NewSearchRequest(BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 10, false,
					"(uid=erin)", nil, nil))
				if !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
					t.Errorf("search after a must-change bind: %v, want 50", err)
				}
			}
			// A wrong password is a plain 49.
			if err := serverproc.Dial(t, s.URL, nil).Bind(u.DN, u.Password+"x"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
				t.Errorf("wrong password: %v, want 49", err)
			}
		})
	}
	t.Run("unknown user", func(t *testing.T) {
		err := serverproc.Dial(t, s.URL, nil).Bind("uid=nobody,"+PeopleOU, "x")
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Errorf("%v, want 49", err)
		}
	})
	t.Run("empty password", func(t *testing.T) {
		err := serverproc.Dial(t, s.URL, nil).UnauthenticatedBind(Alice.DN)
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform) {
			t.Errorf("unauthenticated bind: %v, want 53", err)
		}
	})
	t.Run("metacharacters", func(t *testing.T) {
		if err := serverproc.Dial(t, s.URL, nil).Bind(Mallory.DN, `p*)(|(uid=*)`); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Errorf("prefix of mallory's password: %v", err)
		}
		c := s.Conn(t, s.ServiceDN, s.ServicePassword)
		if es := serverproc.Search(t, c, BaseDN, "(uid="+ldap.EscapeFilter("*)(uid=alice")+")", "cn"); len(es) != 0 {
			t.Errorf("escaped injection matched %d", len(es))
		}
	})
	t.Run("password hashed", func(t *testing.T) {
		c := s.Conn(t, AdminDN, AdminPassword)
		es := serverproc.Search(t, c, PeopleOU, "(uid=alice)", "userPassword")
		if v := es[0].GetAttributeValue("userPassword"); !strings.HasPrefix(v, "{") {
			t.Errorf("userPassword stored as %q, want a hash", v)
		}
	})
}

func TestLockout(t *testing.T) {
	s := Start(t)
	for i := 0; i < LockoutThreshold; i++ {
		if err := serverproc.Dial(t, s.URL, nil).Bind(Heidi.DN, "wrong"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Fatalf("wrong password %d: %v", i, err)
		}
	}
	pp, err := ppBind(t, serverproc.Dial(t, s.URL, nil), Heidi.DN, Heidi.Password)
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) || pp == nil || pp.Error != 1 {
		t.Fatalf("heidi after %d failures: %v, control %+v; want 49 accountLocked", LockoutThreshold, err, pp)
	}
	// Nobody else has a lockout policy.
	for i := 0; i < LockoutThreshold+2; i++ {
		_ = serverproc.Dial(t, s.URL, nil).Bind(Carol.DN, "wrong")
	}
	if err := serverproc.Dial(t, s.URL, nil).Bind(Carol.DN, Carol.Password); err != nil {
		t.Fatalf("carol: %v", err)
	}
}

func TestTLS(t *testing.T) {
	s := Start(t)
	bad := &tls.Config{RootCAs: s.PKI.Other().CAPool, ServerName: s.Host}
	c := serverproc.Dial(t, s.LDAPSURL, s.TLSConfig())
	if err := c.Bind(Alice.DN, Alice.Password); err != nil {
		t.Fatalf("LDAPS bind: %v", err)
	}
	if c := serverproc.Dial(t, s.LDAPSURL, &tls.Config{RootCAs: s.PKI.CAPool, ServerName: "localhost"}); c.Bind(Alice.DN, Alice.Password) != nil {
		t.Fatal("LDAPS by name localhost")
	}
	if _, err := ldap.DialURL(s.LDAPSURL, ldap.DialWithTLSConfig(bad)); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("LDAPS with the other CA: %v, want unknown authority", err)
	}
	c2 := serverproc.Dial(t, s.URL, nil)
	if err := c2.StartTLS(s.TLSConfig()); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	if err := c2.Bind(Alice.DN, Alice.Password); err != nil {
		t.Fatalf("bind after StartTLS: %v", err)
	}
	if err := serverproc.Dial(t, s.URL, nil).StartTLS(bad); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("StartTLS with the other CA: %v, want unknown authority", err)
	}
}

func TestDirectory(t *testing.T) {
	s := Start(t)
	c := s.Conn(t, s.ServiceDN, s.ServicePassword)

	t.Run("attributes and memberOf", func(t *testing.T) {
		for _, u := range Users() {
			es := serverproc.Search(t, c, BaseDN, "(&(objectClass=inetOrgPerson)(uid="+ldap.EscapeFilter(u.UID)+"))", "memberOf", "mail", "givenName", "sn", "cn")
			if len(es) != 1 {
				t.Fatalf("%s: %d entries", u.UID, len(es))
			}
			e := es[0]
			if !serverproc.SameDN(e.DN, u.DN) {
				t.Errorf("%s: DN %s", u.UID, e.DN)
			}
			for attr, want := range map[string]string{"mail": u.Mail, "givenName": u.GivenName, "sn": u.Surname, "cn": u.CN} {
				if got := e.GetAttributeValue(attr); got != want {
					t.Errorf("%s: %s = %q, want %q", u.UID, attr, got, want)
				}
			}
			got := serverproc.CNs(t, e.GetAttributeValues("memberOf"))
			want := slices.Sorted(slices.Values(u.Groups))
			if !slices.Equal(got, want) && len(got)+len(want) > 0 {
				t.Errorf("%s: memberOf %q, want %q", u.UID, got, want)
			}
		}
		es := serverproc.Search(t, c, BaseDN, "(uid=alice)", "memberOf")
		t.Logf("alice memberOf as returned: %q", es[0].GetAttributeValues("memberOf"))
		if !slices.ContainsFunc(es[0].GetAttributeValues("memberOf"), func(v string) bool { return serverproc.SameDN(v, GroupRadiology) }) {
			t.Error("alice not in the escaped-comma group")
		}
	})
	t.Run("nested", func(t *testing.T) {
		// The AD matching rule matches nothing here.
		if es := serverproc.Search(t, c, BaseDN, "(member:1.2.840.113556.1.4.1941:="+ldap.EscapeFilter(Bob.DN)+")", "cn"); len(es) != 0 {
			t.Errorf("1941 rule matched %d entries", len(es))
		}
		// Recursive (member=DN) searches find the outer group.
		seen := map[string]bool{}
		queue := []string{Bob.DN}
		var cns []string
		for len(queue) > 0 {
			dn := queue[0]
			queue = queue[1:]
			for _, e := range serverproc.Search(t, c, GroupsOU, "(&(objectClass=groupOfNames)(member="+ldap.EscapeFilter(dn)+"))", "cn") {
				if !seen[strings.ToLower(e.DN)] {
					seen[strings.ToLower(e.DN)] = true
					cns = append(cns, e.GetAttributeValue("cn"))
					queue = append(queue, e.DN)
				}
			}
		}
		slices.Sort(cns)
		if want := []string{"QA-Therapists", "QA-Therapists-Nested"}; !slices.Equal(cns, want) {
			t.Errorf("bob's groups %q, want %q", cns, want)
		}
	})
	t.Run("escaped comma group", func(t *testing.T) {
		res, err := c.Search(ldap.NewSearchRequest(GroupRadiology, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 10, false,
			"(objectClass=groupOfNames)", []string{"cn", "member"}, nil))
		if err != nil {
			t.Fatal(err)
		}
		e := res.Entries[0]
		t.Logf("DN as returned: %s", e.DN)
		if e.GetAttributeValue("cn") != "QA-Radiology, Nuclear" {
			t.Errorf("cn %q", e.GetAttributeValue("cn"))
		}
		if m := e.GetAttributeValues("member"); len(m) != 1 || !serverproc.SameDN(m[0], Alice.DN) {
			t.Errorf("member %q", m)
		}
	})
	t.Run("non-ascii", func(t *testing.T) {
		es := serverproc.Search(t, c, BaseDN, "(uid=jürgen)", "givenName")
		if len(es) != 1 || es[0].GetAttributeValue("givenName") != "Jürgen" {
			t.Fatalf("jürgen: %v", es)
		}
		if err := serverproc.Dial(t, s.URL, nil).Bind(Juergen.DN, Juergen.Password); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("anonymous", func(t *testing.T) {
		a := serverproc.Dial(t, s.URL, nil)
		res, err := a.Search(ldap.NewSearchRequest(BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 10, false,
			"(uid=alice)", []string{"cn"}, nil))
		if err == nil && len(res.Entries) > 0 {
			t.Error("anonymous search found alice")
		}
		t.Logf("anonymous search: %v", err)
	})
}

func TestStopRestart(t *testing.T) {
	s := Start(t)
	s.Stop()
	s.Stop()
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), time.Second); err == nil {
		c.Close()
		t.Fatal("stopped slapd accepts connections")
	}
	s.Restart(t)
	if err := serverproc.Dial(t, s.URL, nil).Bind(Alice.DN, Alice.Password); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}
