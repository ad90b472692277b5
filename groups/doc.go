// Package groups turns the groups a directory reports for a user into the
// application groups a site grants, following the rules of a Caddyfile
// `groups` block: map, qualify, default and same_name.
//
// It is pure: no Caddy, no network, no logging. The backends (localauth,
// ldapauth, adfsauth) report an Identity; the root package applies the
// Rules and seals the application groups in the session.
//
// # Rules
//
// A site's `groups` block becomes a Rules value:
//
//	groups {
//		map     "QA-Physicists" physics          # directory group -> application group(s)
//		map     "QA-Admins"     admin physics
//		qualify "QA-Staff" "QA-Physicists"       # only members may sign in
//		default everyone                         # every signed-in user gets these
//		same_name                                # also pass directory groups through
//	}
//
// Compile checks the rules once, at provisioning, and returns a Mapper:
//
//	m, err := groups.Rules{
//		Maps:    []groups.Map{{From: "QA-Physicists", To: []string{"physics"}}},
//		Default: []string{"everyone"},
//	}.Compile()
//
// Without a `groups` block, PassThrough is the Mapper: directory groups
// become application groups under their names.
//
// # Directory and local users
//
// Mapper.Directory maps the groups of a user signed in through LDAP or AD
// FS. The LDAP backend reports Group{Name: CN, DN: full DN} (CN extracts
// the name from a DN); AD FS reports Group{Name: claim value}. With rules,
// only the rules apply: the user gets the application groups of the maps
// whose directory group they are in, plus the defaults, plus, with
// same_name, their directory groups' names. If qualify names any groups,
// a user in none of them gets a *NotQualifiedError (errors.Is
// ErrNotQualified) whose UserMessage is for the login page.
//
// Mapper.Local gives a local user the groups of the users file plus the
// defaults; maps and qualify apply only to directory users.
//
// The result is always sorted and free of duplicates that differ only in
// case, keeping the rules' spelling.
//
// # Naming directory groups
//
// A rule names a directory group by its CN or by its full distinguished
// name. Both are matched case-insensitively with Unicode case folding, so
// "QA-Physiker-Ärzte" matches "qa-physiker-ärzte".
//
//   - A name without '=' is a CN. It matches Group.Name, so it also
//     matches AD FS claim values. A CN with a comma is written as it
//     reads, without escaping: "QA-Radiology, Nuclear".
//   - A name with '=' is a DN and must be a group's full DN. It matches
//     Group.DN (LDAP only), compared parsed, never as a string:
//     `CN=QA-Radiology\, Nuclear,OU=Groups,DC=hospital,DC=test` matches
//     `cn=QA-Radiology\2C Nuclear,ou=groups,dc=hospital,dc=test`. Use a
//     DN when two groups in different OUs share a CN.
//
// Application groups reach the application comma-joined (X-Remote-Groups,
// {http.auth.user.groups}), so Compile refuses application group names with
// commas, and a directory group whose name has one is never passed through
// under it: map it to a name without one.
package groups
