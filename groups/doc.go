// Package groups turns the groups a directory reports for a user into the
// application groups a site grants, following the rules of a Caddyfile
// `groups` block: map, qualify, default and same_name.
//
// It is pure: no Caddy, no network. The backends (localauth, ldapauth,
// adfsauth) report an Identity; the root package applies the Rules.
package groups
