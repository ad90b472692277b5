package groups

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Mapper turns a user's groups into application groups. Make one with
// Rules.Compile or PassThrough; it is safe for concurrent use. A nil
// *Mapper behaves like PassThrough.
type Mapper struct {
	rules bool // false: pass directory groups through

	maps   selector
	grants [][]string // per map: its application groups, deduplicated

	qualify      selector
	qualifyNames []string // as written, for the error

	defaults []string // deduplicated
	sameName bool
	needDN   bool // some rule names a DN: parse Group.DN
}

var passThrough = &Mapper{}

// PassThrough returns the Mapper for a site without a `groups` block:
// every directory group becomes an application group under its Name, and
// local users keep their file groups.
func PassThrough() *Mapper { return passThrough }

// ErrNotQualified is matched (errors.Is) by the error Directory returns for
// a user who is in none of the qualify groups.
var ErrNotQualified = errors.New("not in a qualifying group")

// NotQualifiedError is the error Directory returns for a user who is in
// none of the qualify groups. Its UserMessage is for the login page; its
// Error, for the log, names the qualifying groups.
type NotQualifiedError struct {
	// Qualify are the qualifying groups as the rules name them.
	Qualify []string
}

func (e *NotQualifiedError) Error() string {
	return fmt.Sprintf("%v (qualify: %s)", ErrNotQualified, strings.Join(e.Qualify, ", "))
}

// Is makes errors.Is(err, ErrNotQualified) true.
func (e *NotQualifiedError) Is(target error) bool { return target == ErrNotQualified }

// UserMessage is what the user reads on the login page.
func (e *NotQualifiedError) UserMessage() string {
	return "Your account is not in a group that is allowed to use this service. " +
		"Ask IT to add your account to one of this service's groups."
}

// Directory returns the application groups of a user signed in through a
// directory (LDAP, AD FS), sorted and without case-insensitive duplicates.
//
// Without rules, every group passes through under its Name. With rules,
// only they apply: if Qualify is set and the user is in none of its
// groups, Directory returns a *NotQualifiedError; otherwise the user gets
// the application groups of every matching map, the defaults and, with
// SameName, each directory group's Name. Of names that differ only in
// case, the first wins: maps in rule order, then defaults, then the
// directory's names. A directory group whose Name
// cannot be an application group (empty, a comma, a control character) is
// never passed through by name; map it instead. An unparseable Group.DN
// simply matches no DN rule.
func (m *Mapper) Directory(dir []Group) ([]string, error) {
	if m == nil {
		m = passThrough
	}
	out := newAppSet()
	if !m.rules {
		for _, g := range dir {
			if validApp(g.Name) {
				out.add(g.Name)
			}
		}
		return out.sorted(), nil
	}
	var dns []*ldap.DN
	if m.needDN {
		dns = make([]*ldap.DN, len(dir))
		for i, g := range dir {
			if g.DN == "" {
				continue
			}
			if dn, err := ldap.ParseDN(g.DN); err == nil && len(dn.RDNs) > 0 {
				dns[i] = dn
			}
		}
	}
	dnOf := func(i int) *ldap.DN {
		if dns == nil {
			return nil
		}
		return dns[i]
	}
	if len(m.qualifyNames) > 0 {
		ok := false
		for i, g := range dir {
			m.qualify.match(g, dnOf(i), func(int) { ok = true })
			if ok {
				break
			}
		}
		if !ok {
			return nil, &NotQualifiedError{Qualify: slices.Clone(m.qualifyNames)}
		}
	}
	// Rules first, in their order, so that of names differing only in case
	// the first rule's spelling wins, whatever order the directory uses.
	matched := make([]bool, len(m.grants))
	for i, g := range dir {
		m.maps.match(g, dnOf(i), func(idx int) { matched[idx] = true })
	}
	for idx, ok := range matched {
		if ok {
			for _, app := range m.grants[idx] {
				out.add(app)
			}
		}
	}
	for _, app := range m.defaults {
		out.add(app)
	}
	if m.sameName {
		for _, g := range dir {
			if validApp(g.Name) {
				out.add(g.Name)
			}
		}
	}
	return out.sorted(), nil
}

// Local returns the application groups of a local user: the groups of the
// users file, plus the defaults, sorted and without case-insensitive
// duplicates. Qualify and maps do not apply to local users. A file group
// that cannot be an application group (empty, a comma, a control
// character) is left out.
func (m *Mapper) Local(fileGroups []string) []string {
	if m == nil {
		m = passThrough
	}
	out := newAppSet()
	for _, app := range m.defaults {
		out.add(app)
	}
	for _, g := range fileGroups {
		if validApp(g) {
			out.add(g)
		}
	}
	return out.sorted()
}

// appSet collects application groups, keeping the first spelling of names
// that differ only in case.
type appSet struct {
	seen map[string]struct{}
	list []string
}

func newAppSet() appSet { return appSet{seen: map[string]struct{}{}} }

func (s *appSet) add(name string) {
	k := fold(name)
	if _, dup := s.seen[k]; dup {
		return
	}
	s.seen[k] = struct{}{}
	s.list = append(s.list, name)
}

// sorted returns the names in byte order; never nil, so a user without
// groups encodes as [] in JSON.
func (s *appSet) sorted() []string {
	if s.list == nil {
		return []string{}
	}
	slices.Sort(s.list)
	return s.list
}
