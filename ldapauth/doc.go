// Package ldapauth signs people in against Active Directory (or OpenLDAP)
// over LDAPS or StartTLS, the way a careful Windows administrator expects:
//
//   - with a service account (BindDN): search the user's entry with the
//     service account, require exactly one, then bind as that entry's DN
//     on a separate connection to check the password;
//   - without one: bind as DOMAIN\user or user@upn_suffix and read the
//     user's own entry on that connection (as QATrack+ does).
//
// Every value placed in a filter goes through ldap.EscapeFilter. Empty
// passwords are refused before any traffic (a Windows DC treats a name with
// an empty password as a successful unauthenticated bind). AD's bind
// sub-codes (data 525, 52e, 530, 531, 532, 533, 701, 773, 775) and the
// OpenLDAP password-policy control become an *AccountError whose
// UserMessage says what happened and what to do.
//
// Connections are pooled per domain controller (a buffered channel of idle
// connections, no lock held across a network call), so concurrent sign-ins
// run in parallel. DCs are tried in order; one that fails is skipped for a
// back-off that doubles from 30s to 5m, and when every DC is marked down
// the one that failed longest ago is still tried. Health reports what the
// backend has learnt, for a metrics gauge.
//
// New does no network I/O: a down DC never stops the program that embeds
// this package from starting.
//
// Usage:
//
//	b, err := ldapauth.New(ldapauth.Config{
//		URLs:         []string{"ldaps://dc1.hospital.example", "ldaps://dc2.hospital.example"},
//		CAFile:       "/etc/caddy/ad-ca.pem",
//		Domain:       "HOSPITAL",
//		UPNSuffix:    "hospital.example",
//		BaseDN:       "DC=hospital,DC=example",
//		BindDN:       "CN=svc-qa,OU=Service,DC=hospital,DC=example",
//		BindPassword: secret,
//	})
//	defer b.Close()
//	id, ok, err := b.Authenticate(ctx, "HOSPITAL\\alice", password)
//
// The package logs nothing; Config.Trace receives a line per LDAP step
// (never a password) for a debug log.
package ldapauth
