package ldapauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Flavors of directory. They set the default user filter and attributes
// and how nested groups are resolved.
const (
	FlavorAD       = "ad"
	FlavorOpenLDAP = "openldap"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout = 5 * time.Second
	DefaultPool    = 8
	DefaultCache   = 5 * time.Minute
)

// Limits on what is sent to a directory.
const (
	maxUsernameBytes = 256
	maxPasswordBytes = 1024
	maxGroupDepth    = 8 // OpenLDAP nested-group recursion
	maxCacheEntries  = 10000
)

// Config describes one directory. The zero value of every optional field
// picks the default given in its comment.
type Config struct {
	// URLs of the domain controllers, tried in order: ldaps://host[:636]
	// or ldap://host[:389] (the latter only with StartTLS, or with
	// AllowPlaintext). Exactly one of URLs and SRV is required.
	URLs []string

	// SRV is a DNS domain whose _ldap._tcp SRV records list the domain
	// controllers (sorted by priority, then weight). Each is contacted as
	// ldaps://host:636, or ldap://host:port with StartTLS when StartTLS is
	// set. The records are resolved at the first sign-in and every 5
	// minutes after, never in New.
	SRV string

	// Resolver looks up SRV records. Default: net.DefaultResolver.
	Resolver SRVResolver `json:"-"`

	// StartTLS upgrades ldap:// connections with the StartTLS extended
	// operation before anything else is sent.
	StartTLS bool

	// CAFile is a PEM file with the certificate(s) that sign the DCs'
	// certificates. Default: the system roots.
	CAFile string

	// RootCAs is used instead of CAFile when set (for programs that
	// already hold the pool).
	RootCAs *x509.CertPool `json:"-"`

	// InsecureSkipVerify accepts any DC certificate. For labs only: the
	// password then goes to whoever answers.
	InsecureSkipVerify bool

	// AllowPlaintext permits ldap:// without StartTLS, which sends
	// passwords in clear text. For labs only.
	AllowPlaintext bool

	// Domain is the NetBIOS (NT4) domain name, e.g. HOSPITAL: users may
	// type HOSPITAL\alice, and without BindDN the bind name is
	// HOSPITAL\alice. Another domain prefix is a bad credential.
	Domain string

	// UPNSuffix is the userPrincipalName suffix, e.g. hospital.example:
	// users may type alice@hospital.example, and without BindDN or Domain
	// the bind name is alice@hospital.example.
	UPNSuffix string

	// BaseDN is where users and groups are searched. Required.
	BaseDN string

	// BindDN is the service account that searches for users (and re-checks
	// signed-in users in Lookup). Without it, users bind as themselves.
	BindDN string

	// BindPassword is the service account's password.
	BindPassword string

	// Flavor is FlavorAD (the default) or FlavorOpenLDAP.
	Flavor string

	// UserFilter finds a user's entry; {username} is replaced by the
	// escaped account name (without DOMAIN\ or @suffix). Default for AD:
	// (&(objectCategory=person)(objectClass=user)(sAMAccountName={username}));
	// for OpenLDAP: (&(objectClass=inetOrgPerson)(uid={username})).
	UserFilter string

	// Attributes overrides the attribute names read from the user's entry,
	// by key: username, email, given_name, family_name, name, groups.
	// Defaults for AD: sAMAccountName, mail, givenName, sn, displayName,
	// memberOf; for OpenLDAP: uid, mail, givenName, sn, cn, memberOf.
	Attributes map[string]string

	// NestedGroups resolves groups of groups. Default: on. AD uses
	// LDAP_MATCHING_RULE_IN_CHAIN; OpenLDAP recursive member searches (at
	// most 8 levels deep). Off: the direct groups only.
	NestedGroups *bool

	// Timeout bounds connecting, the TLS handshake and each LDAP operation.
	// Default: 5s.
	Timeout time.Duration

	// Pool is the number of idle connections kept per DC (for each of the
	// service and the user-bind connections). Default: 8.
	Pool int

	// Cache is how long a successful check is remembered by
	// AuthenticateCached (meant for HTTP Basic, which presents the same
	// credentials on every request). 0 turns the cache off. The cache keys
	// on an HMAC of username and password under a per-process random key;
	// no password is stored.
	Cache time.Duration

	// Trace, when set, receives one line per LDAP step (dial, TLS, bind,
	// search) for a debug log. Passwords never appear in it.
	Trace func(format string, args ...any) `json:"-"`
}

// SRVResolver is the part of *net.Resolver that SRV discovery uses.
type SRVResolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (cname string, addrs []*net.SRV, err error)
}

// Attribute keys of Config.Attributes.
const (
	AttrUsername   = "username"
	AttrEmail      = "email"
	AttrGivenName  = "given_name"
	AttrFamilyName = "family_name"
	AttrName       = "name"
	AttrGroups     = "groups"
)

var attrDefaults = map[string]map[string]string{
	FlavorAD: {
		AttrUsername: "sAMAccountName", AttrEmail: "mail", AttrGivenName: "givenName",
		AttrFamilyName: "sn", AttrName: "displayName", AttrGroups: "memberOf",
	},
	FlavorOpenLDAP: {
		AttrUsername: "uid", AttrEmail: "mail", AttrGivenName: "givenName",
		AttrFamilyName: "sn", AttrName: "cn", AttrGroups: "memberOf",
	},
}

var filterDefaults = map[string]string{
	FlavorAD:       "(&(objectCategory=person)(objectClass=user)(sAMAccountName={username}))",
	FlavorOpenLDAP: "(&(objectClass=inetOrgPerson)(uid={username}))",
}

// settings is a validated Config with defaults applied.
type settings struct {
	Config
	attrs   map[string]string
	nested  bool
	tlsBase *tls.Config
}

// ErrConfig is wrapped by every error New returns for a bad Config.
var ErrConfig = errors.New("ldap configuration")

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}

// validate checks c and fills in the defaults. It reads CAFile but does
// no network I/O.
func validate(c Config) (*settings, error) {
	s := &settings{Config: c}
	if s.Flavor == "" {
		s.Flavor = FlavorAD
	}
	s.Flavor = strings.ToLower(s.Flavor)
	if _, ok := attrDefaults[s.Flavor]; !ok {
		return nil, configErr("flavor %q is not ad or openldap", c.Flavor)
	}
	switch {
	case len(s.URLs) == 0 && s.SRV == "":
		return nil, configErr("give the domain controllers as url (ldaps://dc1.example ...) or srv <domain>")
	case len(s.URLs) > 0 && s.SRV != "":
		return nil, configErr("give either url or srv, not both")
	}
	for _, raw := range s.URLs {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, configErr("url %q is not of the form ldaps://host[:port]", raw)
		}
		switch u.Scheme {
		case "ldaps":
			if s.StartTLS {
				return nil, configErr("url %q is ldaps:// and starttls is set: use one or the other (starttls is for ldap:// URLs)", raw)
			}
		case "ldap":
			if !s.StartTLS && !s.AllowPlaintext {
				return nil, configErr("url %q would send passwords in clear text: use ldaps:// or add starttls", raw)
			}
		default:
			return nil, configErr("url %q: scheme must be ldaps:// or ldap://", raw)
		}
	}
	if s.BaseDN == "" {
		return nil, configErr("base_dn is required, e.g. \"DC=hospital,DC=example\"")
	}
	if _, err := ldap.ParseDN(s.BaseDN); err != nil {
		return nil, configErr("base_dn %q is not a DN: %v", s.BaseDN, err)
	}
	if s.BindDN != "" && s.BindPassword == "" {
		return nil, configErr("bind_dn is set but bind_password is empty")
	}
	if s.BindDN == "" && s.BindPassword != "" {
		return nil, configErr("bind_password is set without bind_dn")
	}
	if s.BindDN == "" {
		if s.Flavor == FlavorOpenLDAP {
			return nil, configErr("flavor openldap needs bind_dn: OpenLDAP cannot bind by account name")
		}
		if s.Domain == "" && s.UPNSuffix == "" {
			return nil, configErr("without bind_dn, domain or upn_suffix is required to form the bind name")
		}
	}
	if strings.ContainsAny(s.Domain, `\@/ `) {
		return nil, configErr("domain %q should be the NetBIOS name, e.g. HOSPITAL", s.Domain)
	}
	s.UPNSuffix = strings.TrimPrefix(s.UPNSuffix, "@")
	if s.UserFilter == "" {
		s.UserFilter = filterDefaults[s.Flavor]
	}
	if !strings.Contains(s.UserFilter, "{username}") {
		return nil, configErr("user_filter %q must contain {username}", s.UserFilter)
	}
	if _, err := ldap.CompileFilter(strings.ReplaceAll(s.UserFilter, "{username}", "x")); err != nil {
		return nil, configErr("user_filter %q: %v", s.UserFilter, err)
	}
	s.attrs = map[string]string{}
	for k, v := range attrDefaults[s.Flavor] {
		s.attrs[k] = v
	}
	for k, v := range c.Attributes {
		if _, ok := s.attrs[k]; !ok {
			return nil, configErr("attribute %q is not one of username, email, given_name, family_name, name, groups", k)
		}
		if v == "" || strings.ContainsAny(v, " ()=*,") {
			return nil, configErr("attribute %s: %q is not an attribute name", k, v)
		}
		s.attrs[k] = v
	}
	s.nested = c.NestedGroups == nil || *c.NestedGroups
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.Timeout < 0 {
		return nil, configErr("timeout must be positive")
	}
	if s.Pool == 0 {
		s.Pool = DefaultPool
	}
	if s.Pool < 0 || s.Pool > 1024 {
		return nil, configErr("pool must be between 1 and 1024, got %d", s.Pool)
	}
	if s.Cache < 0 {
		return nil, configErr("cache must not be negative")
	}
	if s.Resolver == nil {
		s.Resolver = net.DefaultResolver
	}

	s.tlsBase = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.InsecureSkipVerify} //nolint:gosec // opt-in, warned about by the caller
	switch {
	case s.RootCAs != nil:
		s.tlsBase.RootCAs = s.RootCAs
	case s.CAFile != "":
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, configErr("ca_file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, configErr("ca_file %s holds no PEM certificate", s.CAFile)
		}
		s.tlsBase.RootCAs = pool
	}
	return s, nil
}
