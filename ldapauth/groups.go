package ldapauth

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/caddy-adauth/adauth/groups"
)

// ruleInChain is LDAP_MATCHING_RULE_IN_CHAIN: AD resolves nested groups.
const ruleInChain = "1.2.840.113556.1.4.1941"

// groupsOf returns the user's groups, each with its CN and full DN.
func (b *Backend) groupsOf(ctx context.Context, c Conn, entry *ldap.Entry) ([]groups.Group, error) {
	var set groupSet
	switch {
	case b.s.Flavor == FlavorAD && b.s.nested:
		filter := "(&(objectClass=group)(member:" + ruleInChain + ":=" + ldap.EscapeFilter(entry.DN) + "))"
		dns, err := b.searchGroups(ctx, c, filter)
		if err != nil {
			return nil, err
		}
		set.addAll(dns)
	case b.s.Flavor == FlavorAD:
		set.addAll(entry.GetEqualFoldAttributeValues(b.s.attrs[AttrGroups]))
	default: // OpenLDAP
		direct := entry.GetEqualFoldAttributeValues(b.s.attrs[AttrGroups])
		if len(direct) == 0 {
			var err error
			if direct, err = b.searchGroups(ctx, c, memberFilter(entry.DN)); err != nil {
				return nil, err
			}
		}
		set.addAll(direct)
		if b.s.nested {
			// Groups of groups, breadth first, with a depth limit and a
			// cycle guard (set remembers every DN seen).
			level := set.groups
			for depth := 1; depth < maxGroupDepth && len(level) > 0; depth++ {
				var next []groups.Group
				for _, g := range level {
					dns, err := b.searchGroups(ctx, c, memberFilter(g.DN))
					if err != nil {
						return nil, err
					}
					next = append(next, set.addAll(dns)...)
				}
				level = next
			}
		}
	}
	return set.groups, nil
}

func memberFilter(dn string) string {
	return "(&(|(objectClass=groupOfNames)(objectClass=group))(member=" + ldap.EscapeFilter(dn) + "))"
}

// searchGroups returns the DNs of the groups filter finds under BaseDN.
func (b *Backend) searchGroups(ctx context.Context, c Conn, filter string) ([]string, error) {
	req := ldap.NewSearchRequest(b.s.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0,
		int(b.s.Timeout/time.Second), false, filter, []string{"cn"}, nil)
	b.trace("ldap: group search filter=%s", filter)
	res, err := call(ctx, c, func() (*ldap.SearchResult, error) { return c.Search(req) })
	if err != nil {
		return nil, fmt.Errorf("group search: %w", err)
	}
	var out []string
	for _, e := range entriesOf(res) {
		out = append(out, e.DN)
	}
	return out, nil
}

// groupSet collects groups, deduplicated by parsed DN (never by string:
// directories spell DNs differently, \2C or \, for a comma, upper or lower
// case).
type groupSet struct {
	groups []groups.Group
	seen   map[string]bool
}

// addAll adds the DNs not yet seen and returns the new groups. A DN that
// does not parse or has no CN in its first RDN is skipped.
func (s *groupSet) addAll(dns []string) []groups.Group {
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	var added []groups.Group
	for _, dn := range dns {
		key, ok := dnKey(dn)
		if !ok || s.seen[key] {
			continue
		}
		name, err := groups.CN(dn)
		if err != nil {
			continue
		}
		s.seen[key] = true
		g := groups.Group{Name: name, DN: dn}
		s.groups = append(s.groups, g)
		added = append(added, g)
	}
	return added
}

// dnKey is a canonical form of a parsed DN: equal keys exactly when the
// DNs are equal ignoring case (ldap.DN.EqualFold), since values are decoded
// and folded and multi-valued RDNs are sorted.
func dnKey(dn string) (string, bool) {
	d, err := ldap.ParseDN(dn)
	if err != nil || len(d.RDNs) == 0 {
		return "", false
	}
	var sb strings.Builder
	for i, r := range d.RDNs {
		if i > 0 {
			sb.WriteByte(0)
		}
		parts := make([]string, 0, len(r.Attributes))
		for _, a := range r.Attributes {
			parts = append(parts, strings.ToLower(a.Type)+"\x01"+strings.ToLower(a.Value))
		}
		slices.Sort(parts)
		sb.WriteString(strings.Join(parts, "\x02"))
	}
	return sb.String(), true
}
