package adauth

import (
	"net/http"
	"net/textproto"
	"strings"
	"time"
)

// Cookie names. On HTTPS the __Host- prefix makes the browser refuse a
// cookie that is not Secure, has a Domain, or a Path other than /, so a
// sibling subdomain or a plain-HTTP response cannot plant or overwrite it.
const (
	sessionCookieTLS   = "__Host-adauth"
	sessionCookiePlain = "adauth"
	flowCookieTLS      = "__Host-adauth-flow"
	flowCookiePlain    = "adauth-flow"
)

// Purposes bind a sealed value to its cookie: a session cannot be replayed
// as a flow cookie, nor a plain-HTTP cookie under the HTTPS name.
var (
	purposeSessionTLS   = []byte("session:" + sessionCookieTLS)
	purposeSessionPlain = []byte("session:" + sessionCookiePlain)
	purposeFlowTLS      = []byte("flow:" + flowCookieTLS)
	purposeFlowPlain    = []byte("flow:" + flowCookiePlain)
)

func sessionCookie(r *http.Request) (name string, purpose []byte) {
	if r.TLS != nil {
		return sessionCookieTLS, purposeSessionTLS
	}
	return sessionCookiePlain, purposeSessionPlain
}

func flowCookie(r *http.Request) (name string, purpose []byte) {
	if r.TLS != nil {
		return flowCookieTLS, purposeFlowTLS
	}
	return flowCookiePlain, purposeFlowPlain
}

// cookieValue finds a cookie by exact name without parsing every cookie
// into http.Cookie values, which costs an allocation per cookie on every
// request. It returns the first value and how many cookies carry the name:
// a duplicate (planted by a sibling host on plain HTTP) sends the caller to
// the slow path, which tries each.
func cookieValue(h http.Header, name string) (first string, n int) {
	for _, line := range h["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = textproto.TrimString(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			if n == 0 {
				first = strings.Trim(v, `"`)
			}
			n++
		}
	}
	return first, n
}

// setCookie writes a session-style cookie: HttpOnly, SameSite=Lax, Path=/,
// Secure on HTTPS. maxAge < 0 deletes it.
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	}
	if maxAge < 0 {
		c.MaxAge = -1
		c.Value = ""
	} else {
		c.MaxAge = int(maxAge / time.Second)
	}
	w.Header().Add("Set-Cookie", c.String())
}
