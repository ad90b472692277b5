package ldapauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// fakeDir is a tiny in-memory AD for unit tests: enough of bind and
// search to drive the backend, recording everything that reaches it.
type fakeDir struct {
	svcDN, svcPW string
	domain, upn  string
	users        []*fakeUser
	groups       map[string][]string // user DN -> group DNs (nested resolved)

	bindDelay  time.Duration
	bindResult func(name string) error // overrides, when set and non-nil
	referrals  bool                    // add referrals to every search

	mu       sync.Mutex
	binds    []string
	filters  []string
	dials    map[string]int
	dialErr  map[string]error // by DC URL
	hang     map[string]bool  // dial succeeds, every operation blocks until Close
	closedCn atomic.Int64
	open     atomic.Int64
}

type fakeUser struct {
	dn, sam, pw string
	code        string // AD sub-code reported on a right password ("533", ...)
	attrs       map[string][]string
}

func newFakeDir() *fakeDir {
	f := &fakeDir{
		svcDN: "CN=svc-qa,OU=Service,DC=hospital,DC=test", svcPW: "svc-secret",
		domain: "HOSPITAL", upn: "hospital.test",
		groups:  map[string][]string{},
		dials:   map[string]int{},
		dialErr: map[string]error{},
		hang:    map[string]bool{},
	}
	f.add("alice", "Alice-Pass1", "")
	f.groups[f.users[0].dn] = []string{"CN=QA-Physicists,OU=Groups,DC=hospital,DC=test", `CN=QA-Radiology\, Nuclear,OU=Groups,DC=hospital,DC=test`}
	for sam, code := range map[string]string{"dave": "533", "erin": "773", "frank": "532", "grace": "701",
		"heidi": "775", "hours": "530", "wks": "531"} {
		f.add(sam, "Right-Pass1", code)
	}
	return f
}

func (f *fakeDir) add(sam, pw, code string) *fakeUser {
	u := &fakeUser{dn: "CN=" + sam + ",OU=Staff,DC=hospital,DC=test", sam: sam, pw: pw, code: code,
		attrs: map[string][]string{"sAMAccountName": {sam}, "mail": {sam + "@hospital.test"}, "givenName": {sam}, "sn": {"Test"}}}
	f.users = append(f.users, u)
	return u
}

func (f *fakeDir) config() Config {
	return Config{
		URLs:   []string{"ldaps://dc1.hospital.test", "ldaps://dc2.hospital.test"},
		Domain: f.domain, UPNSuffix: f.upn, BaseDN: "DC=hospital,DC=test",
		BindDN: f.svcDN, BindPassword: f.svcPW,
	}
}

func (f *fakeDir) backend(t testing.TB, mutate func(*Config)) *Backend {
	t.Helper()
	cfg := f.config()
	if mutate != nil {
		mutate(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.dial = f.dial
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func (f *fakeDir) dial(ctx context.Context, d *dc) (Conn, error) {
	f.mu.Lock()
	f.dials[d.url]++
	err := f.dialErr[d.url]
	hang := f.hang[d.url]
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	f.open.Add(1)
	return &fakeConn{f: f, url: d.url, hang: hang, done: make(chan struct{})}, nil
}

func (f *fakeDir) dialCount(url string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dials[url]
}

func (f *fakeDir) bindNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.binds...)
}

func (f *fakeDir) searchFilters() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.filters...)
}

type fakeConn struct {
	f      *fakeDir
	url    string
	hang   bool
	once   sync.Once
	done   chan struct{}
	bound  string
	closed atomic.Bool
}

func invalidCreds(code string) error {
	return &ldap.Error{ResultCode: ldap.LDAPResultInvalidCredentials,
		Err: fmt.Errorf("80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data %s, v4563", code)}
}

func (c *fakeConn) wait() error {
	if c.closed.Load() {
		return ldap.NewError(ldap.ErrorNetwork, errors.New("ldap: connection closed"))
	}
	if c.hang {
		<-c.done
		return ldap.NewError(ldap.ErrorNetwork, errors.New("ldap: connection closed"))
	}
	return nil
}

func (c *fakeConn) SimpleBind(r *ldap.SimpleBindRequest) (*ldap.SimpleBindResult, error) {
	c.f.mu.Lock()
	c.f.binds = append(c.f.binds, r.Username)
	c.f.mu.Unlock()
	if err := c.wait(); err != nil {
		return nil, err
	}
	if r.Password == "" && !r.AllowEmptyPassword {
		return nil, ldap.NewError(ldap.ErrorEmptyPassword, errors.New("empty password"))
	}
	if c.f.bindDelay > 0 {
		select {
		case <-time.After(c.f.bindDelay):
		case <-c.done:
			return nil, ldap.NewError(ldap.ErrorNetwork, errors.New("ldap: connection closed"))
		}
	}
	if c.f.bindResult != nil {
		if err := c.f.bindResult(r.Username); err != nil {
			return &ldap.SimpleBindResult{}, err
		}
	}
	if r.Username == c.f.svcDN {
		if r.Password != c.f.svcPW {
			return &ldap.SimpleBindResult{}, invalidCreds("52e")
		}
		c.bound = r.Username
		return &ldap.SimpleBindResult{}, nil
	}
	for _, u := range c.f.users {
		if strings.EqualFold(r.Username, u.dn) || strings.EqualFold(r.Username, c.f.domain+`\`+u.sam) ||
			strings.EqualFold(r.Username, u.sam+"@"+c.f.upn) {
			if r.Password != u.pw {
				return &ldap.SimpleBindResult{}, invalidCreds("52e")
			}
			if u.code != "" {
				return &ldap.SimpleBindResult{}, invalidCreds(u.code)
			}
			c.bound = u.dn
			return &ldap.SimpleBindResult{}, nil
		}
	}
	return &ldap.SimpleBindResult{}, invalidCreds("52e")
}

func (c *fakeConn) Search(r *ldap.SearchRequest) (*ldap.SearchResult, error) {
	c.f.mu.Lock()
	c.f.filters = append(c.f.filters, r.Filter)
	c.f.mu.Unlock()
	if err := c.wait(); err != nil {
		return nil, err
	}
	if c.bound == "" {
		return nil, &ldap.Error{ResultCode: ldap.LDAPResultOperationsError, Err: errors.New("000004DC: LdapErr: DSID-0C0909A2, comment: In order to perform this operation a successful bind must be completed")}
	}
	res := &ldap.SearchResult{}
	if c.f.referrals {
		res.Referrals = []string{"ldap://hospital.test/CN=Configuration,DC=hospital,DC=test"}
	}
	entry := func(u *fakeUser) *ldap.Entry { return ldap.NewEntry(u.dn, u.attrs) }
	switch {
	case r.Scope == ldap.ScopeBaseObject:
		for _, u := range c.f.users {
			if strings.EqualFold(u.dn, r.BaseDN) {
				res.Entries = append(res.Entries, entry(u))
				return res, nil
			}
		}
		return nil, &ldap.Error{ResultCode: ldap.LDAPResultNoSuchObject, Err: errors.New("no such object")}
	case strings.Contains(r.Filter, "member:"+ruleInChain+":="):
		for _, u := range c.f.users {
			if strings.Contains(r.Filter, ":="+ldap.EscapeFilter(u.dn)+")") {
				for _, g := range c.f.groups[u.dn] {
					res.Entries = append(res.Entries, ldap.NewEntry(g, nil))
				}
			}
		}
	default:
		for _, u := range c.f.users {
			if strings.Contains(strings.ToLower(r.Filter), "(samaccountname="+ldap.EscapeFilter(u.sam)+")") {
				res.Entries = append(res.Entries, entry(u))
			}
		}
	}
	return res, nil
}

func (c *fakeConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.f.open.Add(-1)
		c.f.closedCn.Add(1)
		c.once.Do(func() { close(c.done) })
	}
	return nil
}
