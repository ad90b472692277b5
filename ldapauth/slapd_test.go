package ldapauth_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/caddy-adauth/adauth/groups"
	"github.com/caddy-adauth/adauth/internal/slapdtest"
	"github.com/caddy-adauth/adauth/ldapauth"
)

func TestSlapd(t *testing.T) {
	s := slapdtest.Start(t)
	cfg := ldapauth.Config{
		URLs: []string{s.LDAPSURL}, CAFile: s.CAFile, Flavor: ldapauth.FlavorOpenLDAP,
		BaseDN: s.BaseDN, BindDN: s.ServiceDN, BindPassword: s.ServicePassword,
	}
	b := newBackend(t, cfg)
	id := mustAuth(t, b, "ALICE", slapdtest.Alice.Password)
	if id.ID != "alice" || id.Name != "Alice Andersen" || !hasAll(groups.Names(id.Groups), slapdtest.Alice.Groups...) {
		t.Fatalf("alice: %+v %q", id, groups.Names(id.Groups))
	}
	if names := groups.Names(mustAuth(t, b, "bob", slapdtest.Bob.Password).Groups); !hasAll(names, "QA-Therapists", "QA-Therapists-Nested") {
		t.Fatalf("bob: %q", names)
	}
	mustAuth(t, b, "jürgen", slapdtest.Juergen.Password)
	mustAuth(t, b, "mallory", slapdtest.MalloryPassword)

	// Without memberOf (another attribute name): groupOfNames member
	// searches, nested by recursion.
	noMemberOf := cfg
	noMemberOf.Attributes = map[string]string{"groups": "description"}
	nb := newBackend(t, noMemberOf)
	if names := groups.Names(mustAuth(t, nb, "alice", slapdtest.Alice.Password).Groups); !hasAll(names, slapdtest.Alice.Groups...) {
		t.Fatalf("alice via member search: %q", names)
	}
	if names := groups.Names(mustAuth(t, nb, "bob", slapdtest.Bob.Password).Groups); !hasAll(names, "QA-Therapists", "QA-Therapists-Nested") {
		t.Fatalf("bob via member search: %q", names)
	}
	flat := cfg
	flat.NestedGroups = new(false)
	if names := groups.Names(mustAuth(t, newBackend(t, flat), "bob", slapdtest.Bob.Password).Groups); slices.Contains(names, "QA-Therapists") {
		t.Fatalf("bob flat: %q", names)
	}

	for _, c := range []struct {
		u     slapdtest.User
		state ldapauth.AccountState
	}{
		{slapdtest.Dave, ldapauth.StateLockedOut},
		{slapdtest.Erin, ldapauth.StateMustChange},
		{slapdtest.Frank, ldapauth.StatePasswordExpired},
	} {
		_, ok, err := b.Authenticate(t.Context(), c.u.UID, c.u.Password)
		var ae *ldapauth.AccountError
		if ok || !errors.As(err, &ae) || ae.State != c.state {
			t.Errorf("%s: ok=%v err=%v", c.u.UID, ok, err)
		}
	}
	for _, bad := range []struct{ u, p string }{{"alice", "wrong"}, {"nobody", "x"}, {"*", "x"}, {"alice", " "}, {"admin)(|(uid=*", "x"}} {
		if _, ok, err := b.Authenticate(t.Context(), bad.u, bad.p); ok || err != nil {
			t.Errorf("%q: ok=%v err=%v", bad.u, ok, err)
		}
	}
	if id, err := b.Lookup(t.Context(), slapdtest.Carol.DN); err != nil || id.ID != "carol" {
		t.Fatalf("lookup carol: %+v %v", id, err)
	}
	if _, err := b.Lookup(t.Context(), slapdtest.Dave.DN); !errors.Is(err, ldapauth.ErrAccountDisabled) {
		t.Errorf("lookup dave (pwdAccountLockedTime): %v", err)
	}
	if _, err := b.Lookup(t.Context(), "uid=nobody,ou=people,dc=hospital,dc=test"); !errors.Is(err, ldapauth.ErrAccountGone) {
		t.Errorf("lookup gone: %v", err)
	}
	st := cfg
	st.URLs, st.StartTLS = []string{s.URL}, true
	mustAuth(t, newBackend(t, st), "alice", slapdtest.Alice.Password)
}
