package groups

// Identity is who a backend says has signed in. Backends fill it; the root
// package maps DirectoryGroups to application groups and seals the result in
// the session.
type Identity struct {
	// ID is the canonical username: the directory's own name for the
	// account (AD sAMAccountName, AD FS winaccountname without its DOMAIN\
	// prefix, the local file's username), lower-cased.
	ID         string
	Email      string
	Name       string // display name
	GivenName  string
	FamilyName string

	// Groups are the groups the backend found: directory groups for LDAP
	// and AD FS, the file's groups for local users.
	Groups []Group

	// DN is the account's distinguished name when the backend knows it
	// (LDAP); the re-check of a signed-in user looks it up again.
	DN string
}

// Group is one group as a backend reports it.
type Group struct {
	// Name is the group's CN (LDAP), the claim value (AD FS) or the name
	// in the users file (local).
	Name string
	// DN is the group's full distinguished name, when known (LDAP only).
	DN string
}

// Names returns the groups' names in order.
func Names(gs []Group) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.Name
	}
	return out
}
