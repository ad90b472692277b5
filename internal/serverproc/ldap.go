package serverproc

import (
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// RootDSE reads attrs of the root DSE at url (tc is used for ldaps:// and may
// be nil), with short timeouts: it is called in a loop while a server starts.
func RootDSE(url string, tc *tls.Config, attrs ...string) (*ldap.Entry, error) {
	opts := []ldap.DialOpt{ldap.DialWithDialer(&net.Dialer{Timeout: time.Second})}
	if tc != nil {
		opts = append(opts, ldap.DialWithTLSConfig(tc))
	}
	c, err := ldap.DialURL(url, opts...)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetTimeout(2 * time.Second)
	res, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 2, false,
		"(objectClass=*)", attrs, nil))
	if err != nil {
		return nil, err
	}
	if len(res.Entries) != 1 {
		return nil, errors.New("unexpected rootDSE")
	}
	return res.Entries[0], nil
}

// Dial connects to url (tc is used for ldaps:// and may be nil), failing t
// when it cannot; the connection is closed at the test's end. Requests time
// out after 10 s so that a hung server fails the test instead of stalling it.
func Dial(t testing.TB, url string, tc *tls.Config) *ldap.Conn {
	t.Helper()
	opts := []ldap.DialOpt{ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second})}
	if tc != nil {
		opts = append(opts, ldap.DialWithTLSConfig(tc))
	}
	c, err := ldap.DialURL(url, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.SetTimeout(10 * time.Second)
	t.Cleanup(func() { c.Close() })
	return c
}

// Bind is Dial followed by a simple bind as dn/password, failing t on error.
func Bind(t testing.TB, url string, tc *tls.Config, dn, password string) *ldap.Conn {
	t.Helper()
	c := Dial(t, url, tc)
	if err := c.Bind(dn, password); err != nil {
		t.Fatalf("bind %s at %s: %v", dn, url, err)
	}
	return c
}

// Search is a subtree search under base (at most 10 entries), failing t on
// error. Referrals are not followed.
func Search(t testing.TB, c *ldap.Conn, base, filter string, attrs ...string) []*ldap.Entry {
	t.Helper()
	res, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 10, false,
		filter, attrs, nil))
	if err != nil {
		t.Fatalf("search %s: %v", filter, err)
	}
	return res.Entries
}

// CNs returns the sorted values of the first RDN of each DN (the groups'
// names in a memberOf list), failing t on a malformed DN.
func CNs(t testing.TB, dns []string) []string {
	t.Helper()
	var cns []string
	for _, s := range dns {
		d, err := ldap.ParseDN(s)
		if err != nil {
			t.Fatalf("parse %q: %v", s, err)
		}
		cns = append(cns, d.RDNs[0].Attributes[0].Value)
	}
	slices.Sort(cns)
	return cns
}

// SameDN reports whether a and b name the same entry: servers spell DNs
// differently (case, cn=a\, b against cn=a\2C b).
func SameDN(a, b string) bool {
	da, err1 := ldap.ParseDN(a)
	db, err2 := ldap.ParseDN(b)
	return err1 == nil && err2 == nil && da.EqualFold(db)
}
