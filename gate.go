package adauth

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// sessionVar is the request variable through which adauth_require reads the
// signed-in user's groups (a pointer: no copy, no parsing of the placeholder).
const sessionVar = "adauth.session"

func setSessionVar(r *http.Request, ss *session) { caddyhttp.SetVar(r.Context(), sessionVar, ss) }

func sessionFromRequest(r *http.Request) *session {
	ss, _ := caddyhttp.GetVar(r.Context(), sessionVar).(*session)
	return ss
}

// refreshInterval is how often a sliding session's cookie is re-issued.
// Writing it on every request would cost a seal and a header per response.
const refreshInterval = time.Minute

// currentSession opens the session cookie. It does no I/O and takes no
// lock: this runs on every request. fresh reports that the cookie should be
// re-issued to slide the idle timeout.
func (h *Handler) currentSession(r *http.Request) (ss *session, fresh bool) {
	name, purpose := sessionCookie(r)
	v, n := cookieValue(r.Header, name)
	if n == 0 {
		return nil, false
	}
	now := h.now()
	if n == 1 {
		ss = h.openSession(v, purpose, now)
	} else {
		for _, c := range r.CookiesNamed(name) {
			if ss = h.openSession(c.Value, purpose, now); ss != nil {
				break
			}
		}
	}
	if ss == nil {
		return nil, false
	}
	return ss, now.Unix()-ss.Seen >= int64(refreshInterval/time.Second)
}

func (h *Handler) openSession(v string, purpose []byte, now time.Time) *session {
	p, err := h.sealer.open(v, purpose)
	if err != nil {
		return nil
	}
	ss := new(session)
	if ss.unmarshal(p) != nil || !h.policy.valid(ss, now) {
		return nil
	}
	return ss
}

// writeSession seals ss into the session cookie. It fails when the session
// would not fit in a cookie (a user in hundreds of mapped groups): a cookie
// the browser silently drops would loop the user through the login page.
func (h *Handler) writeSession(w http.ResponseWriter, r *http.Request, ss *session) error {
	name, purpose := sessionCookie(r)
	v := h.sealer.seal(ss.marshal(), purpose)
	if len(name)+len(v)+64 > maxCookieBytes {
		return errCookieTooLarge
	}
	setCookie(w, r, name, v, time.Duration(h.SessionLifetime))
	return nil
}

// refreshCookie slides the idle timeout.
func (h *Handler) refreshCookie(w http.ResponseWriter, r *http.Request, ss *session) {
	c := *ss
	c.Seen = h.now().Unix()
	_ = h.writeSession(w, r, &c) // it fitted when it was first written
}

func (h *Handler) clearSession(w http.ResponseWriter, r *http.Request) {
	name, _ := sessionCookie(r)
	setCookie(w, r, name, "", -1)
}

// challenge answers a request that needs a sign-in: browsers navigating to
// a page go to the login page; API clients get a 401 they can act on.
func (h *Handler) challenge(w http.ResponseWriter, r *http.Request) {
	if isNavigation(r) {
		if h.sso != nil && h.sso.autoRedirect { // adfs auto_redirect (adfs.go)
			http.Redirect(w, r, h.ssoStartURL(r.URL.RequestURI()), http.StatusFound)
			return
		}
		http.Redirect(w, r, h.endpoints.loginURL(r.URL.RequestURI()), http.StatusFound)
		return
	}
	if h.BasicAuth != nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+h.realm()+`", charset="UTF-8"`)
	}
	writeJSON(w, http.StatusUnauthorized, map[string]string{
		"error": "not signed in",
		"login": h.endpoints.login,
	})
}

// challengeEnded answers the first request after the re-check ended a
// session: the login page says why, instead of a silent sign-out.
func (h *Handler) challengeEnded(w http.ResponseWriter, r *http.Request) {
	if isNavigation(r) {
		http.Redirect(w, r, h.endpoints.loginURL(r.URL.RequestURI())+"&reason=ended", http.StatusFound)
		return
	}
	writeJSON(w, http.StatusUnauthorized, map[string]string{
		"error": "session ended: the account changed in the directory",
		"login": h.endpoints.login,
	})
}

// ambiguousPath reports a request path that some applications read
// differently from Caddy's path matcher, which `public` and
// `adauth_require` use: control characters and NUL (C-based servers stop
// there), backslashes (IIS and Windows read them as "/"), and segments that
// end in a dot or a space ("/admin./x" is "/admin/x" to Windows). No real
// page needs them, so adauth refuses them instead of guessing what the
// application will make of them.
func ambiguousPath(p string) bool {
	seg := 0 // start of the current segment
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c < 0x20 || c == 0x7f || c == '\\':
			return true
		case c == '/':
			seg = i + 1
		case (c == '.' || c == ' ') && (i+1 == len(p) || p[i+1] == '/'):
			// "." and ".." segments are fine: Caddy's matcher cleans them
			// the way every application does.
			if s := p[seg : i+1]; s != "." && s != ".." {
				return true
			}
		}
	}
	return false
}

// isNavigation tells a browser loading a page from an API call: a GET or
// HEAD that accepts HTML.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, a := range r.Header.Values("Accept") {
		if strings.Contains(a, "text/html") {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// safeNext returns next when it is a path on this site, else "/". Only one
// leading slash is allowed: browsers read "//host" and "/\host" as another
// host, and strip tabs and newlines before they do, so control characters
// and backslashes are refused outright.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || len(next) > 2048 {
		return "/"
	}
	if len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return "/"
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}
