package adauth

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// maxLoginBody bounds a sign-in POST: the form has three short fields.
const maxLoginBody = 16 << 10

// endpoint identifies one of adauth's own pages.
type endpoint int

const (
	epNone endpoint = iota
	epLogin
	epLogout
	epWhoami
	epADFS
	epCallback
	epUnknown // under the prefix but not ours: 404, never passed upstream
)

// endpoints holds the full paths of adauth's pages under path_prefix.
type endpoints struct {
	prefix, login, logout, whoami, adfs, callback string
}

func newEndpoints(prefix string) endpoints {
	return endpoints{
		prefix:   prefix,
		login:    prefix + "/login",
		logout:   prefix + "/logout",
		whoami:   prefix + "/whoami",
		adfs:     prefix + "/adfs",
		callback: prefix + "/callback",
	}
}

// match compares the exact path: adauth's pages have fixed names, and a
// path that only normalises to one (/adauth//login, /x/../adauth/login) is
// served by nobody rather than guessed at.
func (e endpoints) match(p string) endpoint {
	if len(p) < len(e.prefix) || !equalFoldASCII(p[:len(e.prefix)], e.prefix) {
		return epNone
	}
	if len(p) > len(e.prefix) && p[len(e.prefix)] != '/' {
		return epNone // /adauthx is not ours
	}
	switch p {
	case e.login:
		return epLogin
	case e.logout:
		return epLogout
	case e.whoami:
		return epWhoami
	case e.adfs:
		return epADFS
	case e.callback:
		return epCallback
	}
	return epUnknown
}

func equalFoldASCII(a, b string) bool { return len(a) == len(b) && sameHeaderName(a, b) }

func (e endpoints) loginURL(next string) string {
	return e.login + "?next=" + url.QueryEscape(safeNext(next))
}

// crossOrigin refuses state-changing requests from other sites (CSRF on
// login and logout), using the browser's Sec-Fetch-Site and Origin headers.
var crossOrigin = http.NewCrossOriginProtection()

func (h *Handler) serveEndpoint(ep endpoint, w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	switch ep {
	case epLogin:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			h.pages.login(w, r, http.StatusOK, h.loginData(r, r.URL.Query().Get("next"), "", ""))
			return nil
		case http.MethodPost:
			return h.postLogin(w, r)
		}
	case epLogout:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			h.pages.logout(w, r, h.pageData(r))
			return nil
		case http.MethodPost:
			if err := crossOrigin.Check(r); err != nil {
				h.pages.message(w, r, http.StatusForbidden, "Request refused",
					"This sign-out request came from another site and was refused.")
				return nil
			}
			ss, _ := h.currentSession(r)
			h.clearSession(w, r)
			if u, ok := h.ssoLogoutURL(r, ss); ok { // adfs single_logout (adfs.go)
				http.Redirect(w, r, u, http.StatusSeeOther)
				return nil
			}
			http.Redirect(w, r, h.endpoints.login+"?signed_out=1", http.StatusSeeOther)
			return nil
		}
	case epWhoami:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			break
		}
		// The same view of the session as the application gets: a finished
		// re-check is applied here too, so whoami never shows groups the
		// directory has taken away, nor a session it has ended.
		ss, fresh, _ := h.checkedSession(w, r)
		if ss == nil {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "not signed in", "login": h.endpoints.login})
			return nil
		}
		if fresh {
			h.refreshCookie(w, r, ss)
		}
		groups := ss.Groups
		if groups == nil {
			groups = []string{}
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id":          ss.ID,
			"email":       ss.Email,
			"name":        ss.Name,
			"given_name":  ss.GivenName,
			"family_name": ss.FamilyName,
			"groups":      groups,
			"backend":     ss.Backend,
			"expires":     h.policy.expires(ss).UTC().Format(time.RFC3339),
		})
		return nil
	case epADFS, epCallback:
		if h.sso != nil {
			return h.serveSSO(ep, w, r)
		}
		return caddyhttp.Error(http.StatusNotFound, errors.New("adfs is not configured"))
	case epUnknown:
		return caddyhttp.Error(http.StatusNotFound, errors.New("no such adauth page"))
	default:
		return caddyhttp.Error(http.StatusNotFound, errors.New("adauth page not configured"))
	}
	w.Header().Set("Allow", "GET, HEAD, POST")
	return caddyhttp.Error(http.StatusMethodNotAllowed, errors.New("method not allowed"))
}

// postLogin handles the sign-in form.
func (h *Handler) postLogin(w http.ResponseWriter, r *http.Request) error {
	if err := crossOrigin.Check(r); err != nil {
		h.pages.login(w, r, http.StatusForbidden, h.loginData(r, "/", "", "This sign-in came from another site and was refused. Open the sign-in page directly and try again."))
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.pages.login(w, r, http.StatusRequestEntityTooLarge, h.loginData(r, "/", "", "The sign-in form was too large."))
			return nil
		}
		h.pages.login(w, r, http.StatusBadRequest, h.loginData(r, "/", "", "The sign-in form could not be read."))
		return nil
	}
	username := r.PostForm.Get("username")
	password := r.PostForm.Get("password")
	next := safeNext(r.PostForm.Get("next"))
	clientIP := clientIP(r)

	res := h.signIn(r.Context(), username, password, clientIP)
	h.logSignIn(r, "form", username, clientIP, res)

	switch res.outcome {
	case outcomeOK:
		if err := h.writeSession(w, r, res.session); err != nil {
			h.pages.login(w, r, http.StatusForbidden, h.loginData(r, next, username,
				"Your account is in too many groups to fit in a session. Ask IT to map fewer directory groups for this service."))
			return nil
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
	case outcomeRefused:
		h.pages.login(w, r, http.StatusForbidden, h.loginData(r, next, username, res.message))
	case outcomeThrottled:
		w.Header().Set("Retry-After", retryAfter(res.wait))
		h.pages.login(w, r, http.StatusTooManyRequests, h.loginData(r, next, username,
			"Too many failed sign-ins. Please wait "+humanWait(res.wait)+" and try again. If you have forgotten your password, call IT."))
	case outcomeUnavailable:
		h.pages.login(w, r, http.StatusServiceUnavailable, h.loginData(r, next, username,
			"The directory could not be reached, so your password could not be checked. Please try again in a minute; if it keeps happening, call IT."))
	default:
		h.pages.login(w, r, http.StatusUnauthorized, h.loginData(r, next, username, "Incorrect username or password."))
	}
	return nil
}

// basicAuth checks HTTP Basic credentials. handled reports that a response
// (401) was written.
func (h *Handler) basicAuth(w http.ResponseWriter, r *http.Request) (ss *session, handled bool) {
	username, password, _ := r.BasicAuth()
	ip := clientIP(r)
	// Marked as Basic: API clients send the password with every request,
	// so the ldap backend may answer from its credential cache (cache).
	res := h.signIn(withBasicAuth(r.Context()), username, password, ip)
	if res.outcome != outcomeOK {
		h.logSignIn(r, "basic", username, ip, res)
		w.Header().Set("WWW-Authenticate", `Basic realm="`+h.realm()+`", charset="UTF-8"`)
		status, msg := http.StatusUnauthorized, "invalid credentials"
		switch res.outcome {
		case outcomeThrottled:
			w.Header().Set("Retry-After", retryAfter(res.wait))
			status, msg = http.StatusTooManyRequests, "too many failed sign-ins"
		case outcomeUnavailable:
			status, msg = http.StatusServiceUnavailable, "directory unreachable"
		case outcomeRefused:
			status, msg = http.StatusForbidden, res.message
		}
		writeJSON(w, status, map[string]string{"error": msg})
		return nil, true
	}
	return res.session, false
}

func (h *Handler) realm() string {
	if h.BasicAuth == nil || h.BasicAuth.Realm == "" {
		return "adauth"
	}
	return h.BasicAuth.Realm
}

// logSignIn writes the one line per sign-in attempt. The username is what
// was typed (bounded); the password never appears.
func (h *Handler) logSignIn(r *http.Request, via, username, ip string, res signInResult) {
	if len(username) > maxUsernameBytes {
		username = username[:maxUsernameBytes]
	}
	fields := []zap.Field{
		zap.String("user", username),
		zap.String("client_ip", ip),
		zap.String("via", via),
		zap.String("backend", res.backend),
		zap.String("outcome", res.outcome.String()),
	}
	if res.reason != "" {
		fields = append(fields, zap.String("reason", res.reason))
	}
	if res.session != nil {
		fields = append(fields, zap.String("id", res.session.ID), zap.Strings("groups", res.session.Groups))
	}
	h.observeSignIn(res.backend, res.outcome)
	if res.outcome == outcomeOK {
		h.logger.Info("sign-in", fields...)
	} else {
		h.logger.Warn("sign-in", fields...)
	}
}

// clientIP is the client address as Caddy determined it, which honours the
// server's trusted_proxies and ignores X-Forwarded-For from anyone else.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	return r.RemoteAddr
}

// humanWait rounds a wait up to whole minutes for people to read.
func humanWait(d time.Duration) string {
	m := int((d + time.Minute - 1) / time.Minute)
	if m <= 1 {
		return "a minute"
	}
	return strconv.Itoa(m) + " minutes"
}

func retryAfter(d time.Duration) string {
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
}
