package adauth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-adauth/adauth/groups"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the adauth login gate. Requests from a signed-in user pass on
// with the identity in `{http.auth.user.*}` placeholders and identity headers;
// other requests are sent to the login page (browsers) or answered 401 (API
// clients). The identity headers are always deleted from the incoming request
// first, so no client can forge them.
type Handler struct {
	// Path under which adauth serves its own pages: login, logout, the AD
	// FS callback and whoami. Default: /adauth
	PathPrefix string `json:"path_prefix,omitempty"`

	// Absolute session lifetime, counted from sign-in. Default: 10h
	SessionLifetime caddy.Duration `json:"session_lifetime,omitempty"`

	// Sliding idle timeout: a session unused this long ends. Default: 1h
	SessionIdle caddy.Duration `json:"session_idle,omitempty"`

	// Secrets that seal session cookies (each at least 32 bytes; `caddy
	// adauth key` prints one). The first seals, all open, so a key is
	// rotated by putting the new one first. Without any, a random key is
	// generated once and kept in Caddy's storage, so reloads, restarts and
	// instances sharing the storage accept the same cookies. Accepts
	// `{env.*}` and `{file.*}` placeholders.
	SessionKeys []string `json:"session_keys,omitempty"`

	// How often a signed-in directory user's account is looked up again
	// (disabled, locked, removed from a qualifying group ends the session;
	// changed groups update it). 0 disables the re-check. Default: 15m
	Recheck *caddy.Duration `json:"recheck,omitempty"`

	// Path patterns (as Caddy's path matcher reads them) that need no
	// sign-in. A signed-in user's identity is still passed on there.
	Public []string `json:"public,omitempty"`

	// When set, requests may also authenticate with HTTP Basic credentials,
	// checked against the password backends (local, ldap).
	BasicAuth *BasicAuthConfig `json:"basic_auth,omitempty"`

	// Identity headers set on the request for a signed-in user, in order.
	// Each value may use placeholders. Replaces the default set
	// X-Remote-User, X-Remote-Email, X-Remote-Name, X-Remote-Groups.
	IdentityHeaders []IdentityHeader `json:"identity_headers,omitempty"`

	// Path to an html/template file that replaces the embedded login page.
	LoginTemplate string `json:"login_template,omitempty"`

	// Brute-force throttling of failed sign-ins. Default: 5 failures per
	// user in 15m (and 4 times that per client IP).
	Throttle *ThrottleConfig `json:"throttle,omitempty"`

	// Local accounts from a JSON users file.
	Local *LocalConfig `json:"local,omitempty"`

	// Active Directory (or OpenLDAP) sign-in over LDAP(S).
	LDAP *LDAPConfig `json:"ldap,omitempty"`

	// AD FS (or any OpenID Connect provider, Entra ID included) single
	// sign-on.
	ADFS *ADFSConfig `json:"adfs,omitempty"`

	// Group rules for directory users. Without them, directory groups pass
	// through as application groups under their CN (AD FS: claim values).
	Groups *groups.Rules `json:"groups,omitempty"`

	logger    *zap.Logger
	sealer    *sealer
	policy    sessionPolicy
	public    caddyhttp.MatchPath
	headers   []identityHeader
	strip     []string // header names deleted from every request, canonical
	passwords []*passwordBackend
	sso       *ssoBackend
	rechecker *rechecker
	mapper    *groups.Mapper
	pages     *pages
	endpoints endpoints
	throttle  *throttle
	now       func() time.Time
}

// BasicAuthConfig turns on HTTP Basic authentication for API clients.
type BasicAuthConfig struct {
	// Realm sent in the WWW-Authenticate challenge. Default: adauth
	Realm string `json:"realm,omitempty"`
}

// IdentityHeader is one request header set for a signed-in user.
type IdentityHeader struct {
	// Header name, e.g. X-Remote-User.
	Name string `json:"name"`
	// Value, usually a placeholder such as {http.auth.user.id}.
	Value string `json:"value"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.adauth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Defaults, exported through the docs of the fields above.
const (
	defaultPathPrefix = "/adauth"
	defaultLifetime   = 10 * time.Hour
	defaultIdle       = time.Hour
	defaultRecheck    = 15 * time.Minute
)

// Provision sets defaults, opens the backends and loads the session key. It
// contacts no directory: a down DC or AD FS must never stop Caddy starting.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.now = time.Now
	if err := registerMetrics(ctx); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	repl := caddy.NewReplacer()

	if h.PathPrefix == "" {
		h.PathPrefix = defaultPathPrefix
	}
	h.PathPrefix = strings.TrimSuffix(h.PathPrefix, "/")
	h.endpoints = newEndpoints(h.PathPrefix)
	if h.SessionLifetime == 0 {
		h.SessionLifetime = caddy.Duration(defaultLifetime)
	}
	if h.SessionIdle == 0 {
		h.SessionIdle = caddy.Duration(defaultIdle)
	}
	h.policy = sessionPolicy{lifetime: time.Duration(h.SessionLifetime), idle: time.Duration(h.SessionIdle)}

	keys := make([]string, 0, len(h.SessionKeys))
	for _, k := range h.SessionKeys {
		v, err := repl.ReplaceOrErr(k, true, true)
		if err != nil {
			return fmt.Errorf("session_key: %w", err)
		}
		keys = append(keys, v)
	}
	if len(keys) == 0 {
		k, err := storedKey(ctx, ctx.Storage())
		if err != nil {
			return fmt.Errorf("session key from storage: %w", err)
		}
		keys = append(keys, k)
	}
	var err error
	if h.sealer, err = newSealer(keys); err != nil {
		return err
	}

	h.public = caddyhttp.MatchPath(append([]string(nil), h.Public...))
	if err := h.public.Provision(ctx); err != nil {
		return err
	}

	if h.headers, h.strip, err = compileHeaders(h.IdentityHeaders); err != nil {
		return err
	}

	if h.Groups != nil {
		if h.mapper, err = h.Groups.Compile(); err != nil {
			return fmt.Errorf("groups: %w", err)
		}
	} else {
		h.mapper = groups.PassThrough()
	}

	if h.Throttle == nil {
		h.Throttle = &ThrottleConfig{}
	}
	if h.Throttle.Failures == 0 {
		h.Throttle.Failures = defaultThrottleFailures
	}
	if h.Throttle.Window == 0 {
		h.Throttle.Window = caddy.Duration(defaultThrottleWindow)
	}
	t, _, err := throttlePool.LoadOrNew(h.Throttle.key(), func() (caddy.Destructor, error) {
		return newThrottle(h.Throttle.Failures, time.Duration(h.Throttle.Window)), nil
	})
	if err != nil {
		return err
	}
	h.throttle = t.(*throttle)

	if h.pages, err = loadPages(h.LoginTemplate); err != nil {
		return err
	}

	if h.Local != nil {
		b, err := h.Local.provision(ctx, repl)
		if err != nil {
			return fmt.Errorf("local: %w", err)
		}
		h.passwords = append(h.passwords, b)
	}
	if h.LDAP != nil {
		b, err := h.LDAP.provision(ctx, repl)
		if err != nil {
			return fmt.Errorf("ldap: %w", err)
		}
		h.passwords = append(h.passwords, b)
	}
	if h.ADFS != nil {
		if h.sso, err = h.ADFS.provision(ctx, repl, h.endpoints); err != nil {
			return fmt.Errorf("adfs: %w", err)
		}
	}

	if h.Recheck == nil {
		d := caddy.Duration(defaultRecheck)
		h.Recheck = &d
	}
	h.rechecker = newRechecker(time.Duration(*h.Recheck))
	for _, b := range h.passwords {
		if l, ok := b.impl.(dnLooker); ok && b.directory && b.lookups {
			h.rechecker.backends[b.name] = byDN{l}
		}
	}
	if h.sso != nil {
		h.rechecker.backends["adfs"] = h.sso
	}
	return nil
}

// Validate checks the configuration after Provision.
func (h *Handler) Validate() error {
	if len(h.passwords) == 0 && h.sso == nil {
		return errors.New("adauth needs at least one backend: local, ldap or adfs")
	}
	if !strings.HasPrefix(h.PathPrefix, "/") || strings.ContainsAny(h.PathPrefix, "*{}?#") {
		return fmt.Errorf("path_prefix %q must be a plain path starting with /", h.PathPrefix)
	}
	if h.SessionIdle > h.SessionLifetime {
		return fmt.Errorf("session_idle (%s) is longer than session_lifetime (%s)",
			time.Duration(h.SessionIdle), time.Duration(h.SessionLifetime))
	}
	if h.SessionIdle < caddy.Duration(time.Minute) {
		return fmt.Errorf("session_idle (%s) must be at least 1m", time.Duration(h.SessionIdle))
	}
	return nil
}

// Cleanup releases the backends.
func (h *Handler) Cleanup() error {
	h.unwatchDirectory()
	if h.throttle != nil {
		_, _ = throttlePool.Delete(h.Throttle.key())
	}
	for _, b := range h.passwords {
		if c, ok := b.impl.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
	return nil
}

// ServeHTTP is the gate. The order matters: identity headers are deleted
// before anything else, so no path through this handler (public, error,
// endpoint) can pass a client's forged identity on.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	stripIdentity(r.Header, h.strip)
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		return caddyhttp.Error(http.StatusInternalServerError, errors.New("adauth: request has no replacer"))
	}

	if ambiguousPath(r.URL.Path) {
		// Answered here rather than as an error: a handle_errors route
		// must not get the chance to pass the request on unguarded.
		h.pages.message(w, r, http.StatusBadRequest, "Bad request",
			"The address contains characters that are not allowed (control characters, backslashes, or a path segment ending in a dot or a space).")
		return nil
	}

	if ep := h.endpoints.match(r.URL.Path); ep != epNone {
		return h.serveEndpoint(ep, w, r)
	}

	ss, fresh, ended := h.checkedSession(w, r)
	if ended {
		if h.public.Match(r) {
			return next.ServeHTTP(w, r)
		}
		h.challengeEnded(w, r)
		return nil
	}
	if ss == nil && h.BasicAuth != nil {
		if _, _, ok := r.BasicAuth(); ok {
			var handled bool
			ss, handled = h.basicAuth(w, r)
			if handled {
				return nil
			}
		}
	}
	if ss != nil {
		h.setIdentity(r, repl, ss)
		if fresh {
			h.refreshCookie(w, r, ss)
		}
		return next.ServeHTTP(w, r)
	}
	if h.public.Match(r) {
		return next.ServeHTTP(w, r)
	}
	h.challenge(w, r)
	return nil
}

// checkedSession opens the session cookie and applies the directory
// re-check: a finished answer is applied (fresh then asks for the cookie to
// be rewritten), a due one is started in the background. ended reports a
// session the re-check ended; its cookie has been cleared.
func (h *Handler) checkedSession(w http.ResponseWriter, r *http.Request) (ss *session, fresh, ended bool) {
	ss, fresh = h.currentSession(r)
	if ss == nil || !h.rechecker.due(ss, h.now().Unix()) {
		return ss, fresh, false
	}
	checked, rewrite, ended, msg := h.recheck(ss, h.now().Unix())
	if ended {
		h.logger.Info("session ended by the directory re-check", zap.String("user", ss.ID), zap.String("reason", msg))
		h.clearSession(w, r)
		return nil, false, true
	}
	return checked, fresh || rewrite, false
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
