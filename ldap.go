package adauth

import (
	"errors"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// LDAPConfig configures Active Directory / OpenLDAP sign-in.
// (Owned by the LDAP work: filled in by ldapauth integration.)
type LDAPConfig struct{}

func (c *LDAPConfig) provision(ctx caddy.Context, repl *caddy.Replacer) (*passwordBackend, error) {
	return nil, errors.New("ldap: not built yet")
}

func parseLDAP(d *caddyfile.Dispenser) (*LDAPConfig, error) {
	return nil, d.Err("ldap: not built yet")
}
