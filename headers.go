package adauth

import (
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// Placeholder names: the ones Caddy's own authentication handler uses, so
// the access log's user_id fills itself.
const (
	phID         = "http.auth.user.id"
	phEmail      = "http.auth.user.email"
	phName       = "http.auth.user.name"
	phGivenName  = "http.auth.user.given_name"
	phFamilyName = "http.auth.user.family_name"
	phGroups     = "http.auth.user.groups"
	phBackend    = "http.auth.user.backend"
)

// defaultHeaders are set when identity_header is not configured. They are
// also always deleted from incoming requests, whatever is configured, so
// switching header names never reopens the old ones to forgery.
var defaultHeaders = []IdentityHeader{
	{Name: "X-Remote-User", Value: "{" + phID + "}"},
	{Name: "X-Remote-Email", Value: "{" + phEmail + "}"},
	{Name: "X-Remote-Name", Value: "{" + phName + "}"},
	{Name: "X-Remote-Groups", Value: "{" + phGroups + "}"},
}

// identityHeader is a compiled IdentityHeader: a value that is exactly one
// identity placeholder is read straight from the session, anything else goes
// through the replacer.
type identityHeader struct {
	name  string // canonical
	field func(*session) string
	value string
}

var sessionFields = map[string]func(*session) string{
	phID:         func(s *session) string { return s.ID },
	phEmail:      func(s *session) string { return s.Email },
	phName:       func(s *session) string { return s.Name },
	phGivenName:  func(s *session) string { return s.GivenName },
	phFamilyName: func(s *session) string { return s.FamilyName },
	phGroups:     func(s *session) string { return s.groupsJoined },
	phBackend:    func(s *session) string { return s.Backend },
}

func compileHeaders(cfg []IdentityHeader) (hs []identityHeader, strip []string, err error) {
	if len(cfg) == 0 {
		cfg = defaultHeaders
	}
	seen := map[string]bool{}
	for _, h := range append(append([]IdentityHeader(nil), cfg...), defaultHeaders...) {
		name := textproto.CanonicalMIMEHeaderKey(h.Name)
		if !seen[name] {
			seen[name] = true
			strip = append(strip, name)
		}
	}
	for _, h := range cfg {
		if h.Name == "" || strings.ContainsAny(h.Name, " \t\r\n:") {
			return nil, nil, fmt.Errorf("identity_header: invalid header name %q", h.Name)
		}
		ih := identityHeader{name: textproto.CanonicalMIMEHeaderKey(h.Name), value: h.Value}
		if strings.HasPrefix(h.Value, "{") && strings.HasSuffix(h.Value, "}") && strings.Count(h.Value, "{") == 1 {
			ih.field = sessionFields[h.Value[1:len(h.Value)-1]]
		}
		hs = append(hs, ih)
	}
	return hs, strip, nil
}

// stripIdentity deletes every header that a downstream application could
// read as an identity header. Go canonicalises the case of header names, but
// many frameworks (Django's META, PHP, CGI) also treat "_" as "-", so
// X_Remote_User would reach them as X-Remote-User: those spellings go too.
func stripIdentity(h http.Header, names []string) {
	for k := range h {
		for _, n := range names {
			if sameHeaderName(k, n) {
				delete(h, k)
				break
			}
		}
	}
}

// sameHeaderName compares case-insensitively with '_' equal to '-'.
func sameHeaderName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// setIdentity publishes the identity as placeholders and request headers.
// One replacer provider answers every {http.auth.user.*} placeholder from
// the session, instead of seven static values boxed on every request.
func (h *Handler) setIdentity(r *http.Request, repl *caddy.Replacer, ss *session) {
	ss.groupsJoined = ss.groupsString()
	repl.Map(ss.placeholder)
	setSessionVar(r, ss)
	vals := make([]string, len(h.headers)) // one backing array for all headers
	for i, ih := range h.headers {
		var v string
		if ih.field != nil {
			v = ih.field(ss)
		} else {
			v = repl.ReplaceAll(ih.value, "")
		}
		if v != "" {
			vals[i] = dropControl(v)
			r.Header[ih.name] = vals[i : i+1 : i+1]
		}
	}
}

// placeholder resolves the {http.auth.user.*} placeholders.
func (ss *session) placeholder(key string) (any, bool) {
	if !strings.HasPrefix(key, "http.auth.user.") {
		return nil, false
	}
	if f := sessionFields[key]; f != nil {
		return f(ss), true
	}
	return nil, false
}

// dropControl drops control characters. A display name with a newline in
// the directory must not split a header or a log line, nor make Go refuse
// the proxied request, whether it goes out as an identity header or through
// a placeholder in the Caddyfile's own header_up.
func dropControl(v string) string {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return strings.Map(func(r rune) rune {
				if r < 0x20 || r == 0x7f {
					return -1
				}
				return r
			}, v)
		}
	}
	return v
}
