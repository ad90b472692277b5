package groups

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/go-ldap/ldap/v3"
)

// ErrNotCN is matched (errors.Is) by the error CN returns for a DN whose
// first RDN has no CN attribute.
var ErrNotCN = errors.New("first RDN is not a CN")

// CN returns the common name of a group from its distinguished name: the
// value of the CN attribute of the first RDN, never of the others, so
// "CN=QA-Staff,OU=QA,DC=hospital,DC=example" gives "QA-Staff". The DN is
// parsed (RFC 4514): escaped commas ("\," or "\2C") and hex escapes
// ("\C3\A4" for "ä") are decoded, and the attribute type is matched
// case-insensitively, so OpenLDAP's "cn=" works as well as AD's "CN=".
//
// CN returns an error for a DN that does not parse, an empty DN, an empty
// CN, and (matching ErrNotCN) a DN whose first RDN has no CN attribute,
// e.g. "OU=QA,DC=hospital,DC=example": such an entry is not a group by
// AD's or OpenLDAP's schema, and a caller should skip it rather than guess
// a name.
func CN(dn string) (string, error) {
	d, err := ldap.ParseDN(dn)
	if err != nil {
		return "", fmt.Errorf("group DN %q: %w", dn, err)
	}
	if len(d.RDNs) == 0 {
		return "", errors.New("empty group DN")
	}
	for _, a := range d.RDNs[0].Attributes {
		if strings.EqualFold(a.Type, "cn") {
			if a.Value == "" {
				return "", fmt.Errorf("group DN %q: empty CN", dn)
			}
			return a.Value, nil
		}
	}
	return "", fmt.Errorf("group DN %q: %w", dn, ErrNotCN)
}

// fold returns a key such that fold(a) == fold(b) exactly when
// strings.EqualFold(a, b): each rune is replaced by the smallest rune of
// its Unicode case-folding orbit ("Ä", "ä"; "K", "k" and the Kelvin sign).
func fold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

func foldRune(r rune) rune {
	lo := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		lo = min(lo, f)
	}
	return lo
}
