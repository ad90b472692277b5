package adauth

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-adauth/adauth/groups"
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
