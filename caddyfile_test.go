package adauth

import (
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// FuzzUnmarshalCaddyfile feeds the adauth block parser arbitrary tokens:
// it may refuse them, never panic, and what it accepts must be a config
// its own Validate-free invariants hold for.
func FuzzUnmarshalCaddyfile(f *testing.F) {
	for _, seed := range []string{
		"adauth {\n local /etc/caddy/users.json\n}",
		"adauth {\n path_prefix /auth\n session_lifetime 8h\n session_idle 30m\n public /static/* /api/*\n basic_auth QA\n throttle 5 15m\n local u.json\n}",
		"adauth {\n identity_header X-User {http.auth.user.id}\n session_key a b\n recheck 0\n}",
		"adauth {\n groups {\n map \"QA-Physicists\" physics\n qualify QA-Staff\n default everyone\n same_name\n }\n}",
		"adauth {\n ldap {\n url ldaps://dc1.hospital.test\n base_dn \"DC=hospital,DC=test\"\n }\n}",
		"adauth {\n adfs {\n server adfs.hospital.test\n client_id qa\n }\n}",
		"adauth {\n throttle x y\n}",
		"adauth {\n unknown\n}",
		"adauth {\n groups {\n map\n }\n}",
		"adauth {\n local <<EOF\n users.json\n}", // unclosed heredoc: a lexer error
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		// Not NewTestDispenser: it calls log.Fatalf on a lexer error (an
		// unclosed heredoc, say), which kills the fuzzing process. Caddy
		// itself reports such a file as an error before adauth sees it.
		tokens, err := caddyfile.Tokenize([]byte(input), "Caddyfile")
		if err != nil {
			return
		}
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			return
		}
		if h.PathPrefix != "" && h.PathPrefix[0] != '/' {
			t.Fatalf("accepted path_prefix %q", h.PathPrefix)
		}
		if h.Throttle != nil && (h.Throttle.Failures < 1 || h.Throttle.Window <= 0) {
			t.Fatalf("accepted throttle %+v", h.Throttle)
		}
		if h.SessionIdle < 0 || h.SessionLifetime < 0 {
			t.Fatalf("accepted negative durations %v %v", h.SessionIdle, h.SessionLifetime)
		}
	})
}
