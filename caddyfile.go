package adauth

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-adauth/adauth/groups"
	"github.com/caddy-adauth/adauth/ldapauth"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("adauth", parseCaddyfile)
	httpcaddyfile.RegisterHandlerDirective("adauth_require", parseRequire)
	// Both sit right after basic_auth, so they run before handle, respond,
	// file_server and reverse_proxy: a directive ordered before the gate
	// would serve unauthenticated. Caddy only allows ordering against
	// standard directives, so adauth_require is inserted first and adauth
	// then lands between basic_auth and it.
	httpcaddyfile.RegisterDirectiveOrder("adauth_require", httpcaddyfile.After, "basic_auth")
	httpcaddyfile.RegisterDirectiveOrder("adauth", httpcaddyfile.After, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var a Handler
	err := a.UnmarshalCaddyfile(h.Dispenser)
	return &a, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	adauth {
//		path_prefix      /adauth
//		session_lifetime 10h
//		session_idle     1h
//		session_key      <secret>...
//		recheck          15m
//		public           <path>...
//		basic_auth       [<realm>]
//		identity_header  <name> <value>
//		login_template   <file>
//		throttle         <failures> <window>
//		local            <users.json>
//		ldap   { ... }
//		adfs   { ... }
//		groups { ... }
//	}
func (a *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "path_prefix":
			if err := oneArg(d, &a.PathPrefix); err != nil {
				return err
			}
			if !strings.HasPrefix(a.PathPrefix, "/") {
				return d.Errf("path_prefix must start with /: %q", a.PathPrefix)
			}
		case "session_lifetime":
			if err := durationArg(d, &a.SessionLifetime, false); err != nil {
				return err
			}
		case "session_idle":
			if err := durationArg(d, &a.SessionIdle, false); err != nil {
				return err
			}
		case "session_key":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			a.SessionKeys = append(a.SessionKeys, args...)
		case "recheck":
			var dur caddy.Duration
			if err := durationArg(d, &dur, true); err != nil {
				return err
			}
			a.Recheck = &dur
		case "public":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			for _, p := range args {
				if !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "*") {
					return d.Errf("public path %q must start with / or *", p)
				}
			}
			a.Public = append(a.Public, args...)
		case "basic_auth":
			a.BasicAuth = &BasicAuthConfig{}
			args := d.RemainingArgs()
			switch len(args) {
			case 0:
			case 1:
				if strings.ContainsAny(args[0], "\"\\\r\n") {
					return d.Errf("basic_auth realm must not contain quotes, backslashes or line breaks")
				}
				a.BasicAuth.Realm = args[0]
			default:
				return d.ArgErr()
			}
		case "identity_header":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("identity_header takes a header name and a value, e.g. identity_header X-Remote-User {http.auth.user.id}")
			}
			a.IdentityHeaders = append(a.IdentityHeaders, IdentityHeader{Name: args[0], Value: args[1]})
		case "login_template":
			if err := oneArg(d, &a.LoginTemplate); err != nil {
				return err
			}
		case "throttle":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("throttle takes a number of failures and a window, e.g. throttle 5 15m")
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 || n > 1000 {
				return d.Errf("throttle failures must be a whole number from 1 to 1000, got %q", args[0])
			}
			w, err := caddy.ParseDuration(args[1])
			if err != nil || w <= 0 {
				return d.Errf("throttle window must be a positive duration such as 15m, got %q", args[1])
			}
			a.Throttle = &ThrottleConfig{Failures: n, Window: caddy.Duration(w)}
		case "local":
			var file string
			if err := oneArg(d, &file); err != nil {
				return err
			}
			if a.Local != nil {
				return d.Errf("local is given twice")
			}
			a.Local = &LocalConfig{File: file}
		case "ldap":
			if d.NextArg() {
				return d.ArgErr()
			}
			if a.LDAP != nil {
				return d.Errf("ldap is given twice")
			}
			c, err := parseLDAP(d)
			if err != nil {
				return err
			}
			a.LDAP = c
		case "adfs":
			if d.NextArg() {
				return d.ArgErr()
			}
			if a.ADFS != nil {
				return d.Errf("adfs is given twice")
			}
			c, err := parseADFS(d)
			if err != nil {
				return err
			}
			a.ADFS = c
		case "groups":
			if d.NextArg() {
				return d.ArgErr()
			}
			if a.Groups != nil {
				return d.Errf("groups is given twice")
			}
			rules, err := parseGroups(d)
			if err != nil {
				return err
			}
			a.Groups = rules
		default:
			return d.Errf("unknown adauth subdirective %q", d.Val())
		}
	}
	return nil
}

// parseGroups reads a groups { map | qualify | default | same_name } block.
func parseGroups(d *caddyfile.Dispenser) (*groups.Rules, error) {
	r := &groups.Rules{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "map":
			args := d.RemainingArgs()
			if len(args) < 2 {
				return nil, d.Errf("map takes a directory group and one or more application groups, e.g. map \"QA-Physicists\" physics")
			}
			r.Maps = append(r.Maps, groups.Map{From: args[0], To: args[1:]})
		case "qualify":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			r.Qualify = append(r.Qualify, args...)
		case "default":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			r.Default = append(r.Default, args...)
		case "same_name":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			r.SameName = true
		default:
			return nil, d.Errf("unknown groups subdirective %q", d.Val())
		}
	}
	// Rules are checked here too, so `caddy adapt` names the line of a bad
	// group name instead of failing later at Provision.
	if _, err := r.Compile(); err != nil {
		return nil, d.Errf("groups: %v", err)
	}
	return r, nil
}

// parseRequire reads `adauth_require [<matcher>] <group>...`.
func parseRequire(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var rq Require
	h.Next()
	rq.Groups = h.RemainingArgs()
	if len(rq.Groups) == 0 {
		return nil, h.Errf("adauth_require needs at least one application group, e.g. adauth_require /admin/* admin")
	}
	if h.NextBlock(0) {
		return nil, h.Errf("adauth_require takes no block")
	}
	return &rq, nil
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	args := d.RemainingArgs()
	if len(args) != 1 {
		return d.ArgErr()
	}
	*dst = args[0]
	return nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration, zeroOK bool) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s: bad duration %q: %v", name, s, err)
	}
	if dur < 0 || (dur == 0 && !zeroOK) {
		return d.Errf("%s must be a positive duration, got %q", name, s)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)

// parseLDAP reads an ldap { ... } block (see LDAPConfig).
func parseLDAP(d *caddyfile.Dispenser) (*LDAPConfig, error) {
	c := &LDAPConfig{}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] && name != "url" && name != "attribute" {
			return nil, d.Errf("ldap: %s is given twice", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "url":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.Errf("ldap: url needs at least one ldaps://host")
			}
			for _, a := range args {
				u, perr := url.Parse(a)
				if perr != nil || (u.Scheme != "ldaps" && u.Scheme != "ldap") || u.Host == "" {
					return nil, d.Errf("ldap: url %q must be ldaps://host[:port] or ldap://host[:port]", a)
				}
			}
			c.URL = append(c.URL, args...)
		case "srv":
			err = oneArg(d, &c.SRV)
		case "starttls":
			err = noArgs(d)
			c.StartTLS = true
		case "ca_file":
			err = oneArg(d, &c.CAFile)
		case "tls_insecure_skip_verify":
			err = noArgs(d)
			c.TLSInsecureSkipVerify = true
		case "insecure_plaintext":
			err = noArgs(d)
			c.InsecurePlaintext = true
		case "domain":
			err = oneArg(d, &c.Domain)
		case "upn_suffix":
			err = oneArg(d, &c.UPNSuffix)
		case "base_dn":
			err = oneArg(d, &c.BaseDN)
		case "bind_dn":
			err = oneArg(d, &c.BindDN)
		case "bind_password":
			err = oneArg(d, &c.BindPassword)
		case "flavor":
			if err = oneArg(d, &c.Flavor); err == nil {
				c.Flavor = strings.ToLower(c.Flavor)
				if c.Flavor != ldapauth.FlavorAD && c.Flavor != ldapauth.FlavorOpenLDAP {
					return nil, d.Errf("ldap: flavor must be ad or openldap, got %q", c.Flavor)
				}
			}
		case "user_filter":
			if err = oneArg(d, &c.UserFilter); err == nil && !strings.Contains(c.UserFilter, "{username}") {
				return nil, d.Errf("ldap: user_filter must contain {username}, e.g. \"(&(objectClass=user)(sAMAccountName={username}))\"")
			}
		case "attribute":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Errf("ldap: attribute takes a field and an attribute name, e.g. attribute email userPrincipalName")
			}
			switch args[0] {
			case ldapauth.AttrUsername, ldapauth.AttrEmail, ldapauth.AttrGivenName, ldapauth.AttrFamilyName,
				ldapauth.AttrName, ldapauth.AttrGroups:
			default:
				return nil, d.Errf("ldap: attribute field %q is not one of username, email, given_name, family_name, name, groups", args[0])
			}
			if c.Attributes == nil {
				c.Attributes = map[string]string{}
			}
			c.Attributes[args[0]] = args[1]
		case "nested_groups":
			var v string
			if err = oneArg(d, &v); err == nil {
				switch v {
				case "on":
					c.NestedGroups = new(true)
				case "off":
					c.NestedGroups = new(false)
				default:
					return nil, d.Errf("ldap: nested_groups must be on or off, got %q", v)
				}
			}
		case "timeout":
			err = durationArg(d, &c.Timeout, false)
		case "pool":
			var v string
			if err = oneArg(d, &v); err == nil {
				n, perr := strconv.Atoi(v)
				if perr != nil || n < 1 || n > 1024 {
					return nil, d.Errf("ldap: pool must be a whole number from 1 to 1024, got %q", v)
				}
				c.Pool = n
			}
		case "cache":
			var dur caddy.Duration
			if err = durationArg(d, &dur, true); err == nil {
				c.Cache = &dur
			}
		default:
			return nil, d.Errf("unknown ldap subdirective %q", name)
		}
		if err != nil {
			return nil, err
		}
	}
	switch {
	case len(c.URL) == 0 && c.SRV == "":
		return nil, d.Err("ldap: url or srv is required")
	case len(c.URL) > 0 && c.SRV != "":
		return nil, d.Err("ldap: give url or srv, not both")
	case c.BaseDN == "":
		return nil, d.Err("ldap: base_dn is required")
	}
	for _, u := range c.URL {
		if strings.HasPrefix(u, "ldap://") && !c.StartTLS && !c.InsecurePlaintext {
			return nil, d.Errf("ldap: url %s would send passwords in clear text: use ldaps:// or add starttls", u)
		}
	}
	return c, nil
}

func noArgs(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// parseADFS reads an adfs { ... } block.
func parseADFS(d *caddyfile.Dispenser) (*ADFSConfig, error) {
	c := &ADFSConfig{}
	str := func(dst *string) error {
		if *dst != "" {
			return d.Errf("%s is given twice", d.Val())
		}
		return oneArg(d, dst)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch name := d.Val(); name {
		case "server":
			err = str(&c.Server)
			host := strings.TrimSuffix(strings.TrimPrefix(c.Server, "https://"), "/")
			if err == nil && (host == "" || strings.ContainsAny(host, "/?#@ ")) {
				err = d.Errf("server takes the AD FS host name, e.g. adfs.hospital.example, got %q", c.Server)
			}
		case "issuer":
			err = str(&c.Issuer)
			if err == nil && !strings.HasPrefix(c.Issuer, "https://") && !strings.HasPrefix(c.Issuer, "http://127.") && !strings.HasPrefix(c.Issuer, "http://localhost") {
				err = d.Errf("issuer must be an https URL, got %q", c.Issuer)
			}
		case "client_id":
			err = str(&c.ClientID)
		case "client_secret":
			err = str(&c.ClientSecret)
		case "relying_party_id":
			err = str(&c.RelyingPartyID)
		case "audience":
			err = str(&c.Audience)
		case "ca_file":
			err = str(&c.CAFile)
		case "groups_claim":
			err = str(&c.GroupsClaim)
		case "button":
			err = str(&c.Button)
		case "username_claim":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.Errf("username_claim takes one or more claim names, e.g. username_claim winaccountname upn")
			}
			c.UsernameClaim = append(c.UsernameClaim, args...)
		case "scopes":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			c.Scopes = append(c.Scopes, args...)
		case "claim":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Errf("claim takes an identity field and a claim name, e.g. claim email mail")
			}
			switch args[0] {
			case "email", "name", "given_name", "family_name":
			default:
				return nil, d.Errf("claim: unknown identity field %q (email, name, given_name, family_name)", args[0])
			}
			if c.Claims == nil {
				c.Claims = map[string]string{}
			}
			c.Claims[args[0]] = args[1]
		case "leeway":
			err = durationArg(d, &c.Leeway, false)
			if err == nil && time.Duration(c.Leeway) > time.Hour {
				err = d.Errf("leeway %s is more than an hour: fix the clocks instead", time.Duration(c.Leeway))
			}
		case "auto_redirect", "single_logout":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			if name == "auto_redirect" {
				c.AutoRedirect = true
			} else {
				c.SingleLogout = true
			}
		default:
			return nil, d.Errf("unknown adfs subdirective %q", name)
		}
		if err != nil {
			return nil, err
		}
	}
	switch {
	case c.Server == "" && c.Issuer == "":
		return nil, d.Errf("adfs needs server (AD FS host) or issuer (OpenID Connect URL)")
	case c.Server != "" && c.Issuer != "":
		return nil, d.Errf("adfs takes server or issuer, not both")
	case c.ClientID == "":
		return nil, d.Errf("adfs needs client_id")
	}
	return c, nil
}
