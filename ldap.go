package adauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-adauth/adauth/groups"
	"github.com/caddy-adauth/adauth/ldapauth"
)

// LDAPConfig configures Active Directory (or OpenLDAP) sign-in over LDAPS
// or StartTLS. With bind_dn, a service account finds the user's entry and
// the password is checked by a bind as that entry; without it, users bind
// as DOMAIN\name (or name@upn_suffix) and their own entry is read.
type LDAPConfig struct {
	// Domain controllers, tried in order (failover with health memory):
	// ldaps://host[:port], or ldap://host[:port] with starttls. Either url
	// or srv is required.
	URL []string `json:"url,omitempty"`

	// DNS domain whose _ldap._tcp SRV records list the domain controllers,
	// instead of url. Each DC is contacted with LDAPS on port 636 (or on
	// the SRV port with StartTLS when starttls is set).
	SRV string `json:"srv,omitempty"`

	// Upgrade ldap:// connections with StartTLS before anything is sent.
	StartTLS bool `json:"starttls,omitempty"`

	// PEM file with the CA certificate(s) that sign the DCs' certificates.
	// Default: the system's roots.
	CAFile string `json:"ca_file,omitempty"`

	// Accept any certificate from the DCs. For labs only: passwords then go
	// to whoever answers. A warning is logged at every start.
	TLSInsecureSkipVerify bool `json:"tls_insecure_skip_verify,omitempty"`

	// Allow ldap:// without StartTLS, which sends passwords in clear text.
	// For labs only; a warning is logged at every start.
	InsecurePlaintext bool `json:"insecure_plaintext,omitempty"`

	// NetBIOS (NT4) domain name, e.g. HOSPITAL: "HOSPITAL\alice" is
	// accepted, and without bind_dn it forms the bind name.
	Domain string `json:"domain,omitempty"`

	// userPrincipalName suffix, e.g. hospital.example:
	// "alice@hospital.example" is accepted.
	UPNSuffix string `json:"upn_suffix,omitempty"`

	// Base DN under which users and groups are searched, e.g.
	// "DC=hospital,DC=example". Required.
	BaseDN string `json:"base_dn,omitempty"`

	// Service account that searches for users and re-checks signed-in
	// users (recheck needs it). Optional.
	BindDN string `json:"bind_dn,omitempty"`

	// Password of bind_dn. Accepts {env.*} and {file.*} placeholders; it
	// never appears in logs or errors.
	BindPassword string `json:"bind_password,omitempty"`

	// Directory flavor: ad (default) or openldap. Sets the default user
	// filter, attribute names and how nested groups are resolved.
	Flavor string `json:"flavor,omitempty"`

	// LDAP filter that finds a user; {username} is replaced by the escaped
	// account name. Default for ad:
	// (&(objectCategory=person)(objectClass=user)(sAMAccountName={username}));
	// for openldap: (&(objectClass=inetOrgPerson)(uid={username})).
	UserFilter string `json:"user_filter,omitempty"`

	// Attribute names read from the user's entry, by identity field:
	// username, email, given_name, family_name, name, groups. Defaults for
	// ad: sAMAccountName, mail, givenName, sn, displayName, memberOf; for
	// openldap: uid, mail, givenName, sn, cn, memberOf.
	Attributes map[string]string `json:"attributes,omitempty"`

	// Resolve groups of groups. Default: true (ad uses
	// LDAP_MATCHING_RULE_IN_CHAIN, openldap recursive searches).
	NestedGroups *bool `json:"nested_groups,omitempty"`

	// Timeout for connecting, the TLS handshake and each LDAP operation.
	// Default: 5s
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Idle connections kept per domain controller. Default: 8
	Pool int `json:"pool,omitempty"`

	// How long a successful HTTP Basic check is remembered (so API clients
	// do not cost a bind per request). 0 turns it off. Default: 5m
	Cache *caddy.Duration `json:"cache,omitempty"`
}

// ldapPool keeps LDAP backends (their connection pools and DC health
// memory) across config reloads, keyed by the configuration.
var ldapPool = caddy.NewUsagePool()

// ldapChecker adapts an *ldapauth.Backend to the root package.
type ldapChecker struct {
	b   *ldapauth.Backend
	key string // in ldapPool
}

func (c *ldapChecker) Authenticate(ctx context.Context, username, password string) (groups.Identity, bool, error) {
	if isBasicAuth(ctx) {
		return c.b.AuthenticateCached(ctx, username, password)
	}
	return c.b.Authenticate(ctx, username, password)
}

func (c *ldapChecker) Lookup(ctx context.Context, dn string) (groups.Identity, error) {
	return c.b.Lookup(ctx, dn)
}

// Close releases this handler's use of the backend; the last user closes
// its connections.
func (c *ldapChecker) Close() error {
	_, err := ldapPool.Delete(c.key)
	return err
}

// DirectoryHealth reports each DC as up or down, for the
// adauth_directory_up gauge (Handler.watchDirectory).
func (c *ldapChecker) DirectoryHealth() map[string]bool {
	out := map[string]bool{}
	for _, s := range c.b.Health() {
		out[s.URL] = s.Up
	}
	return out
}

// ldapBackend is what the usage pool holds.
type ldapBackend struct{ *ldapauth.Backend }

func (b ldapBackend) Destruct() error { return b.Close() }

type basicAuthKey struct{}

// withBasicAuth marks ctx as an HTTP Basic check, which the LDAP backend may
// answer from its credential cache (cache). Form sign-ins are never cached.
func withBasicAuth(ctx context.Context) context.Context {
	return context.WithValue(ctx, basicAuthKey{}, true)
}

func isBasicAuth(ctx context.Context) bool {
	v, _ := ctx.Value(basicAuthKey{}).(bool)
	return v
}

// backendConfig resolves placeholders (bind_password with {env.*} and
// {file.*}; the error names the placeholder, never the value) and returns
// the ldapauth configuration.
func (c *LDAPConfig) backendConfig(repl *caddy.Replacer) (ldapauth.Config, error) {
	password := ""
	if c.BindPassword != "" {
		var err error
		if password, err = repl.ReplaceOrErr(c.BindPassword, true, true); err != nil {
			return ldapauth.Config{}, fmt.Errorf("bind_password: %w", err)
		}
		if password == "" {
			return ldapauth.Config{}, fmt.Errorf("bind_password %q is empty once its placeholders are replaced", c.BindPassword)
		}
	}
	known := func(s string) string { return repl.ReplaceKnown(s, "") }
	cfg := ldapauth.Config{
		SRV:                known(c.SRV),
		StartTLS:           c.StartTLS,
		CAFile:             known(c.CAFile),
		InsecureSkipVerify: c.TLSInsecureSkipVerify,
		AllowPlaintext:     c.InsecurePlaintext,
		Domain:             known(c.Domain),
		UPNSuffix:          known(c.UPNSuffix),
		BaseDN:             known(c.BaseDN),
		BindDN:             known(c.BindDN),
		BindPassword:       password,
		Flavor:             c.Flavor,
		UserFilter:         c.UserFilter,
		Attributes:         c.Attributes,
		NestedGroups:       c.NestedGroups,
		Timeout:            time.Duration(c.Timeout),
		Pool:               c.Pool,
		Cache:              ldapauth.DefaultCache,
	}
	for _, u := range c.URL {
		cfg.URLs = append(cfg.URLs, known(u))
	}
	if c.Cache != nil {
		cfg.Cache = time.Duration(*c.Cache)
	}
	return cfg, nil
}

func (c *LDAPConfig) provision(ctx caddy.Context, repl *caddy.Replacer) (*passwordBackend, error) {
	return c.newBackend(ctx.Logger().Named("ldap"), repl)
}

func (c *LDAPConfig) newBackend(logger *zap.Logger, repl *caddy.Replacer) (*passwordBackend, error) {
	cfg, err := c.backendConfig(repl)
	if err != nil {
		return nil, err
	}

	// The pool key covers every setting, the password by hash only, so a
	// reload with an unchanged ldap block keeps the connections and DC
	// health memory, and any change makes a new backend.
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	key := "ldap:" + hex.EncodeToString(sum[:])
	cfg.Trace = func(format string, args ...any) {
		if ce := logger.Check(zapcore.DebugLevel, "ldap trace"); ce != nil {
			ce.Write(zap.String("step", fmt.Sprintf(format, args...)))
		}
	}
	v, _, err := ldapPool.LoadOrNew(key, func() (caddy.Destructor, error) {
		b, err := ldapauth.New(cfg)
		if err != nil {
			return nil, err
		}
		return ldapBackend{b}, nil
	})
	if err != nil {
		return nil, err
	}
	b := v.(ldapBackend).Backend

	if c.TLSInsecureSkipVerify {
		logger.Warn("tls_insecure_skip_verify is on: the domain controllers' certificates are not checked, so passwords go to whoever answers; use ca_file instead")
	}
	if c.InsecurePlaintext {
		logger.Warn("insecure_plaintext is on: passwords cross the network in clear text; use ldaps:// or starttls")
	}
	if c.BindDN == "" {
		logger.Info("no bind_dn: users bind as themselves, and signed-in users are not re-checked against the directory")
	}
	pool := c.Pool
	if pool <= 0 {
		pool = ldapauth.DefaultPool
	}
	return &passwordBackend{
		name:      "ldap",
		impl:      &ldapChecker{b: b, key: key},
		directory: true,
		lookups:   b.HasServiceAccount(),
		// Every DC's pool can be busy at once; beyond that, sign-ins wait
		// here for a pooled connection instead of opening ever more. Waiting
		// is the quicker of the two: with 32 allowed in flight, 32 sign-ins
		// at once against Samba took 1.26 s (24 new TLS connections, which
		// the DC sets up one by one) against 0.26 s queued on the pool.
		sem: make(chan struct{}, pool*max(1, b.Servers())),
	}, nil
}

// Interface guards
var (
	_ passwordChecker  = (*ldapChecker)(nil)
	_ dnLooker         = (*ldapChecker)(nil) // re-checked by DN (recheck.go byDN)
	_ caddy.Destructor = ldapBackend{}
)
