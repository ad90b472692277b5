package groups

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// Rules are the group rules of a `groups` block. With Rules, only the rules
// decide a directory user's application groups; without them (a nil
// *Rules), directory groups pass through under their names.
type Rules struct {
	// Maps grant application groups to the members of a directory group.
	// A user gets the application groups of every map whose directory
	// group they are in.
	Maps []Map `json:"maps,omitempty"`

	// Qualify, if not empty, lists the directory groups allowed to sign
	// in: a directory user (LDAP or AD FS) who is in none of them is
	// refused. Each is a group's CN or full DN, as in Map.From. It does
	// not apply to local users.
	Qualify []string `json:"qualify,omitempty"`

	// Default lists application groups every signed-in user gets, local
	// users included.
	Default []string `json:"default,omitempty"`

	// SameName also passes every directory group through as an
	// application group under its own name (its CN, or the AD FS claim
	// value), in addition to what Maps grant.
	SameName bool `json:"same_name,omitempty"`
}

// Map grants application groups to the members of one directory group.
type Map struct {
	// From is the directory group: its CN (for AD FS, the claim value),
	// e.g. `QA-Physicists` or `QA-Radiology, Nuclear`, or its full
	// distinguished name, e.g. `CN=QA-Admins,OU=Groups,DC=hospital,DC=example`,
	// which only LDAP groups can match. Matching is case-insensitive;
	// DNs are compared parsed, so escaping and spacing do not matter.
	From string `json:"from"`

	// To are the application groups the members get.
	To []string `json:"to"`
}

// Compile checks the rules and prepares them for matching. Its errors say
// which rule is wrong and how to fix it.
func (r Rules) Compile() (*Mapper, error) {
	m := &Mapper{
		rules:    true,
		maps:     selector{names: map[string][]int{}},
		qualify:  selector{names: map[string][]int{}},
		sameName: r.SameName,
	}
	for _, mp := range r.Maps {
		what := fmt.Sprintf("map %q", mp.From)
		if len(mp.To) == 0 {
			return nil, fmt.Errorf("%s: no application groups; write e.g. map %q physics", what, mp.From)
		}
		to := newAppSet()
		for _, app := range mp.To {
			if err := checkApp(app); err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			to.add(app)
		}
		if err := m.maps.add(mp.From, len(m.grants)); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		m.grants = append(m.grants, to.list)
	}
	for _, q := range r.Qualify {
		if err := m.qualify.add(q, len(m.qualifyNames)); err != nil {
			return nil, fmt.Errorf("qualify %q: %w", q, err)
		}
		m.qualifyNames = append(m.qualifyNames, q)
	}
	def := newAppSet()
	for _, app := range r.Default {
		if err := checkApp(app); err != nil {
			return nil, fmt.Errorf("default %q: %w", app, err)
		}
		def.add(app)
	}
	m.defaults = def.list
	m.needDN = len(m.maps.dns) > 0 || len(m.qualify.dns) > 0
	return m, nil
}

// errNoName is what an empty group name gets.
var errNoName = errors.New("empty group name")

// checkApp reports why name cannot be an application group. Application
// groups travel comma-joined in the X-Remote-Groups header and the
// {http.auth.user.groups} placeholder, so a comma would split one.
func checkApp(name string) error {
	if err := checkText(name); err != nil {
		return fmt.Errorf("application group %q: %w", name, err)
	}
	if strings.Contains(name, ",") {
		return fmt.Errorf("application group %q contains a comma, which would split it in the comma-separated groups header; choose a name without one", name)
	}
	return nil
}

// validApp reports whether a name from a directory or a users file may be
// passed on as an application group.
func validApp(name string) bool { return checkApp(name) == nil }

// checkText reports why name cannot be a group name at all.
func checkText(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return errNoName
	case !utf8.ValidString(name):
		return errors.New("not valid UTF-8")
	case strings.ContainsFunc(name, unicode.IsControl):
		return errors.New("contains a control character")
	case strings.TrimSpace(name) != name:
		return errors.New("has leading or trailing spaces; remove them")
	}
	return nil
}

// selector finds the rules that name a directory group, by CN or by DN.
type selector struct {
	names map[string][]int // folded CN -> rule indexes
	dns   []dnRule
}

type dnRule struct {
	dn  *ldap.DN
	idx int
}

// add registers a directory group as written in a rule. A name containing
// '=' is a distinguished name and must parse as one; anything else is a CN.
func (s *selector) add(from string, idx int) error {
	if err := checkText(from); err != nil {
		return fmt.Errorf("directory group: %w", err)
	}
	if !strings.Contains(from, "=") {
		k := fold(from)
		s.names[k] = append(s.names[k], idx)
		return nil
	}
	dn, err := ldap.ParseDN(from)
	if err != nil {
		return fmt.Errorf("looks like a distinguished name but does not parse (%v); write a group's CN as a plain name, e.g. \"QA-Radiology, Nuclear\", or its full DN with special characters escaped, e.g. CN=QA-Radiology\\, Nuclear,OU=Groups,DC=hospital,DC=example", err)
	}
	if len(dn.RDNs) < 2 {
		return errors.New("a distinguished name must be the group's full DN (CN=…,OU=…,DC=…); to match by CN alone, write just the name")
	}
	for _, rdn := range dn.RDNs {
		for _, a := range rdn.Attributes {
			if a.Type == "" || a.Value == "" {
				return errors.New("the distinguished name has an empty attribute type or value")
			}
		}
	}
	s.dns = append(s.dns, dnRule{dn: dn, idx: idx})
	return nil
}

// match calls fn with the index of every rule that names g. dn is g.DN
// parsed, or nil.
func (s *selector) match(g Group, dn *ldap.DN, fn func(idx int)) {
	for _, i := range s.names[fold(g.Name)] {
		fn(i)
	}
	if dn == nil {
		return
	}
	for _, r := range s.dns {
		if r.dn.EqualFold(dn) {
			fn(r.idx)
		}
	}
}
