package groups

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

func TestCN(t *testing.T) {
	tests := []struct {
		dn, want string
		notCN    bool // errors.Is(err, ErrNotCN)
		err      bool
	}{
		{dn: "CN=QA-Staff,OU=Groups,DC=hospital,DC=test", want: "QA-Staff"},
		{dn: "cn=qa-staff,ou=groups,dc=hospital,dc=test", want: "qa-staff"},
		{dn: "Cn = QA-Staff , OU=Groups", want: "QA-Staff"},
		{dn: `CN=QA-Radiology\, Nuclear,OU=Groups,DC=hospital,DC=test`, want: "QA-Radiology, Nuclear"},
		{dn: `CN=QA-Radiology\2C Nuclear,OU=Groups,DC=hospital,DC=test`, want: "QA-Radiology, Nuclear"},
		{dn: `CN=QA-Physiker-\C3\84rzte,OU=Groups`, want: "QA-Physiker-Ärzte"},
		{dn: "CN=QA-Physiker-Ärzte,OU=Groups", want: "QA-Physiker-Ärzte"},
		{dn: `CN=\#1 \+ \"QA\" \<x\>\;\\,OU=Groups`, want: `#1 + "QA" <x>;\`},
		{dn: `CN=a=b,OU=Groups`, want: "a=b"},
		{dn: `CN=\ padded\ ,OU=Groups`, want: " padded "},
		{dn: "CN=QA-Staff", want: "QA-Staff"},
		{dn: "CN=QA-Staff+uid=qa,OU=Groups", want: "QA-Staff"}, // multi-valued RDN
		{dn: "uid=qa+cn=QA-Staff,OU=Groups", want: "QA-Staff"},
		{dn: "OU=Groups,CN=QA-Staff,DC=test", notCN: true}, // never a later RDN's CN
		{dn: "uid=alice,ou=people,dc=test", notCN: true},
		{dn: "", err: true},
		{dn: "   ", err: true},
		{dn: "QA-Staff", err: true},
		{dn: "CN=,OU=Groups", err: true},
		{dn: `CN=QA\zz,OU=Groups`, err: true},
		{dn: `CN=QA-Staff\`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.dn, func(t *testing.T) {
			got, err := CN(tt.dn)
			switch {
			case tt.notCN:
				if !errors.Is(err, ErrNotCN) {
					t.Fatalf("CN = %q, %v; want ErrNotCN", got, err)
				}
			case tt.err:
				if err == nil {
					t.Fatalf("CN = %q, want an error", got)
				}
			case err != nil:
				t.Fatal(err)
			case got != tt.want:
				t.Fatalf("CN = %q, want %q", got, tt.want)
			}
			if err != nil && got != "" {
				t.Fatalf("CN returned %q with an error", got)
			}
		})
	}
}

// escapeValue escapes an attribute value as RFC 4514 section 2.4 says, and
// hex-escapes every byte outside printable ASCII, so any byte string (valid
// UTF-8 or not) survives.
func escapeValue(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case (i == 0 && (c == ' ' || c == '#')) || (i == len(v)-1 && c == ' '):
			b.WriteByte('\\')
			b.WriteByte(c)
		case strings.IndexByte(`"+,;<>\=`, c) >= 0:
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			b.WriteByte('\\')
			b.WriteString(hex.EncodeToString([]byte{c}))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func FuzzCN(f *testing.F) {
	for _, s := range []string{
		"QA-Staff",
		"QA-Radiology, Nuclear",
		"QA-Physiker-Ärzte",
		` leading and trailing `,
		`#hash`,
		`a\b`,
		`"+,;<>=`,
		"\x00\x01\xff",
		"CN=QA-Staff,OU=Groups",
		`CN=QA\2C x,OU=g`,
		`cn=a+uid=b,dc=x`,
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		// Arbitrary input as a DN: never panics, never a value with an error.
		if got, err := CN(v); err != nil && got != "" {
			t.Fatalf("CN(%q) = %q with %v", v, got, err)
		}
		if v == "" {
			return
		}
		for _, escaped := range []string{escapeValue(v), ldapEscape(v)} {
			if escaped == "" {
				continue
			}
			dn := "CN=" + escaped + ",OU=Groups,DC=hospital,DC=test"
			got, err := CN(dn)
			if err != nil {
				t.Fatalf("CN(%q): %v", dn, err)
			}
			if got != v {
				t.Fatalf("CN(%q) = %q, want %q", dn, got, v)
			}
			// The same group named by the rules' DN matching.
			parsed, err := ldap.ParseDN(dn)
			if err != nil {
				t.Fatal(err)
			}
			if other, err := ldap.ParseDN("cn=" + escapeValue(v) + ",ou=groups,dc=hospital,dc=test"); err != nil || !parsed.EqualFold(other) {
				t.Fatalf("%q and its re-escaped form are not EqualFold (%v)", dn, err)
			}
		}
	})
}

// ldapEscape is go-ldap's EscapeDN where its output is a faithful
// escaping (valid UTF-8; EscapeDN leaves other bytes raw), else "".
func ldapEscape(v string) string {
	if !utf8.ValidString(v) {
		return ""
	}
	return ldap.EscapeDN(v)
}
