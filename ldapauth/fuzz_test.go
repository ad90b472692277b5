package ldapauth

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// FuzzUsername: whatever is typed, the filter built from it compiles, holds
// no unescaped metacharacter from the input, and refused input is refused.
func FuzzUsername(f *testing.F) {
	for _, s := range []string{"alice", `HOSPITAL\alice`, "alice@hospital.test", "*", ")(", `\00`, "admin)(|(uid=*",
		"a\x00b", "jürgen", strings.Repeat("x", 300), "\xff", "HOSPITAL\\", "@hospital.test"} {
		f.Add(s)
	}
	b, err := New(Config{URLs: []string{"ldaps://dc1"}, Domain: "HOSPITAL", UPNSuffix: "hospital.test",
		BaseDN: "DC=hospital,DC=test", BindDN: "CN=svc,DC=hospital,DC=test", BindPassword: "x"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, typed string) {
		u, ok := b.parseUsername(typed, "password")
		if !ok {
			return
		}
		if u.name == "" || len(typed) > maxUsernameBytes || !utf8.ValidString(typed) || strings.ContainsAny(u.name, "\x00\\@") {
			t.Fatalf("%q accepted as %q", typed, u.name)
		}
		filter := b.userFilter(u.name)
		if _, err := ldap.CompileFilter(filter); err != nil {
			t.Fatalf("%q: filter %s: %v", typed, filter, err)
		}
		inner := strings.TrimSuffix(strings.TrimPrefix(filter, "(&(objectCategory=person)(objectClass=user)(sAMAccountName="), "))")
		if strings.ContainsAny(inner, "()*\x00") {
			t.Fatalf("%q: unescaped metacharacter in %s", typed, filter)
		}
	})
}
