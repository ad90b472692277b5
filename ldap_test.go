package adauth

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func parseLDAPBlock(t *testing.T, body string) (*LDAPConfig, error) {
	t.Helper()
	d := caddyfile.NewTestDispenser("ldap {\n" + body + "\n}")
	d.Next()
	return parseLDAP(d)
}

func TestParseLDAP(t *testing.T) {
	c, err := parseLDAPBlock(t, `
		url ldaps://dc1.example ldaps://dc2.example
		url ldaps://dc3.example
		domain HOSPITAL
		base_dn "DC=hospital,DC=example"
		flavor AD
		nested_groups off
		attribute email userPrincipalName
		attribute name cn
		timeout 2s
		pool 3
		cache 0`)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.URL) != 3 || c.Flavor != "ad" || c.NestedGroups == nil || *c.NestedGroups || c.Attributes["email"] != "userPrincipalName" ||
		time.Duration(c.Timeout) != 2*time.Second || c.Pool != 3 || c.Cache == nil || *c.Cache != 0 {
		t.Fatalf("%+v", c)
	}
	bad := map[string]string{
		"url ldaps://dc1\n base_dn x\n bogus 1":                      `unknown ldap subdirective "bogus", at Testfile:4`,
		"url ldaps://dc1\n base_dn":                                  "wrong argument count",
		"url ldaps://dc1\n base_dn x\n timeout 0s":                   "timeout must be a positive duration",
		"url ldaps://dc1\n base_dn x\n timeout -1s":                  "timeout must be a positive duration",
		"url ldaps://dc1\n base_dn x\n cache -1s":                    "cache must be a positive duration",
		"url ldaps://dc1\n base_dn x\n pool many":                    "pool must be a whole number",
		"url ldaps://dc1\n base_dn x\n nested_groups true":           "nested_groups must be on or off",
		"url ldaps://dc1\n base_dn x\n flavor novell":                "flavor must be ad or openldap",
		"url ldaps://dc1\n base_dn x\n attribute email":              "attribute takes a field and an attribute name",
		"url ldaps://dc1\n base_dn x\n tls_insecure_skip_verify yes": "wrong argument count",
		"url http://dc1\n base_dn x":                                 "must be ldaps://host",
		"url ldap://dc1\n base_dn x":                                 "use ldaps:// or add starttls",
		"base_dn x":                                                  "url or srv is required",
		"url ldaps://dc1\n srv example.com\n base_dn x":              "not both",
		"url ldaps://dc1":                                            "base_dn is required",
		"url ldaps://dc1\n base_dn x\n bind_dn a\n bind_dn b":        "bind_dn is given twice",
	}
	for body, want := range bad {
		_, err := parseLDAPBlock(t, body)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", body, err, want)
		}
	}
	for _, ok := range []string{
		"url ldap://dc1\n starttls\n base_dn x",
		"url ldap://dc1\n insecure_plaintext\n base_dn x",
		"srv hospital.example\n base_dn x",
	} {
		if _, err := parseLDAPBlock(t, ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

func provisionLDAP(t *testing.T, c *LDAPConfig) (*passwordBackend, *observer.ObservedLogs, error) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	b, err := c.newBackend(zap.New(core), caddy.NewReplacer())
	if b != nil {
		t.Cleanup(func() { _ = b.impl.(*ldapChecker).Close() })
	}
	return b, logs, err
}

func TestProvisionLDAP(t *testing.T) {
	secret := "S3cret-Svc-Pass"
	t.Setenv("ADAUTH_TEST_SVC_PW", secret)
	base := func() *LDAPConfig {
		return &LDAPConfig{URL: []string{"ldaps://127.0.0.1:1"}, BaseDN: "DC=hospital,DC=test", Domain: "HOSPITAL",
			BindDN: "CN=svc,DC=hospital,DC=test", BindPassword: "{env.ADAUTH_TEST_SVC_PW}"}
	}
	b, _, err := provisionLDAP(t, base())
	if err != nil {
		t.Fatal(err)
	}
	if b.name != "ldap" || !b.directory || !b.lookups || cap(b.sem) != 8 {
		t.Fatalf("%+v", b)
	}
	// The DC's health shows in the gauge's source after a failed attempt.
	if _, _, err := b.impl.Authenticate(t.Context(), "alice", "pw"); err == nil {
		t.Fatal("no error from a dead DC")
	}
	if up, ok := b.impl.(*ldapChecker).DirectoryHealth()["ldaps://127.0.0.1:1"]; !ok || up {
		t.Fatalf("health %v", b.impl.(*ldapChecker).DirectoryHealth())
	}
	// The same block provisioned again (a reload) shares the backend, so
	// pooled connections and DC health memory survive.
	b2, _, err := provisionLDAP(t, base())
	if err != nil {
		t.Fatal(err)
	}
	if b.impl.(*ldapChecker).b != b2.impl.(*ldapChecker).b {
		t.Fatal("an unchanged ldap block made a new backend")
	}
	other := base()
	other.Pool = 2
	b3, _, err := provisionLDAP(t, other)
	if err != nil {
		t.Fatal(err)
	}
	if b3.impl.(*ldapChecker).b == b.impl.(*ldapChecker).b || cap(b3.sem) != 2 {
		t.Fatal("a changed ldap block reused the backend")
	}

	// A missing secret is an error that names the placeholder only.
	missing := base()
	missing.BindPassword = "{env.ADAUTH_TEST_NOT_SET}"
	if _, _, err := provisionLDAP(t, missing); err == nil || !strings.Contains(err.Error(), "bind_password") {
		t.Fatalf("missing env: %v", err)
	}
	// A secret from a file.
	f := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(f, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile := base()
	fromFile.BindPassword = "{file." + f + "}"
	if _, _, err := provisionLDAP(t, fromFile); err != nil {
		t.Fatalf("file secret: %v", err)
	}
	// Bad configuration fails Provision, and the secret is not in the error.
	plain := base()
	plain.URL = []string{"ldap://127.0.0.1:1"}
	if _, _, err := provisionLDAP(t, plain); err == nil || !strings.Contains(err.Error(), "use ldaps:// or add starttls") || strings.Contains(err.Error(), secret) {
		t.Fatalf("plaintext: %v", err)
	}
	// tls_insecure_skip_verify is warned about at every start.
	insecure := base()
	insecure.TLSInsecureSkipVerify = true
	_, logs, err := provisionLDAP(t, insecure)
	if err != nil {
		t.Fatal(err)
	}
	if logs.FilterLevelExact(zap.WarnLevel).FilterMessageSnippet("tls_insecure_skip_verify").Len() != 1 {
		t.Fatalf("no warning: %v", logs.All())
	}
	for _, e := range logs.All() {
		if strings.Contains(e.Message, secret) || strings.Contains(fmtFields(e.ContextMap()), secret) {
			t.Fatal("secret logged")
		}
	}
	// Without bind_dn there is no re-check.
	direct := base()
	direct.BindDN, direct.BindPassword = "", ""
	if b, _, err := provisionLDAP(t, direct); err != nil || b.lookups {
		t.Fatalf("direct: %v lookups=%v", err, b != nil && b.lookups)
	}
}

func TestBasicAuthContextMarker(t *testing.T) {
	if isBasicAuth(context.Background()) || !isBasicAuth(withBasicAuth(context.Background())) {
		t.Fatal("marker")
	}
}

func fmtFields(m map[string]any) string {
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k + "=")
		if s, ok := v.(string); ok {
			b.WriteString(s)
		}
		b.WriteString(" ")
	}
	return b.String()
}
