package adfsauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/coreos/go-oidc/v3/oidc/oidctest"
	"golang.org/x/oauth2"

	"github.com/caddy-adauth/adauth/adfsauth"
	"github.com/caddy-adauth/adauth/groups"
	"github.com/caddy-adauth/adauth/internal/adfstest"
)

const redirect = "https://qa.hospital.example/adauth/callback"

var testUsers = []adfstest.User{
	{Username: "alice", Password: "pw", GivenName: "Alice", FamilyName: "Andersen", Email: "alice@hospital.example", Groups: []string{"QA-Physicists"}},
	{Username: "bob", Password: "pw", WinAccountName: "bob", Groups: []string{"QA-Physicists", "HOSPITAL\\QA-Admins"}},
	{Username: "carol", Password: "pw"},
}

func emulator(t *testing.T) *adfstest.Server {
	return adfstest.New(t, testUsers, []adfstest.Client{{ID: "qatrackplus", Secret: "s3cret", RedirectURIs: []string{redirect}}})
}

func client(t *testing.T, s *adfstest.Server, mutate func(*adfsauth.Config)) *adfsauth.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	cfg := adfsauth.Config{Server: s.Host, ClientID: "qatrackplus", ClientSecret: "s3cret", RelyingPartyID: "qatrackplus", RootCAs: pool, RetryAfter: time.Millisecond}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := adfsauth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// signIn runs one whole flow and returns the result.
func signIn(t *testing.T, s *adfstest.Server, c *adfsauth.Client, user string) (adfsauth.Result, error) {
	t.Helper()
	ctx := t.Context()
	verifier := oauth2.GenerateVerifier()
	authURL, err := c.AuthCodeURL(ctx, redirect, "state-1", "nonce-1", verifier)
	if err != nil {
		return adfsauth.Result{}, err
	}
	u, _ := url.Parse(authURL)
	if u.Query().Get("resource") != "qatrackplus" || u.Query().Get("code_challenge_method") != "S256" || u.Query().Get("nonce") != "nonce-1" {
		t.Fatalf("authorize URL lacks resource/PKCE/nonce: %s", authURL)
	}
	cb, err := s.SignIn(authURL, user, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if err := adfsauth.CallbackError(cb.Query()); err != nil {
		return adfsauth.Result{}, err
	}
	if cb.Query().Get("state") != "state-1" {
		t.Fatalf("state not returned: %s", cb)
	}
	return c.Exchange(ctx, redirect, cb.Query().Get("code"), verifier, "nonce-1")
}

func TestIdentities(t *testing.T) {
	s := emulator(t)
	c := client(t, s, nil)
	for _, tc := range []struct {
		user   string
		id     string
		groups []string
	}{
		{"alice", "alice", []string{"QA-Physicists"}},          // DOMAIN\alice, one group: a string claim
		{"bob", "bob", []string{"QA-Physicists", "QA-Admins"}}, // bare name, two groups: an array
		{"carol", "carol", nil},                                // no group claim
	} {
		res, err := signIn(t, s, c, tc.user)
		if err != nil {
			t.Fatalf("%s: %v", tc.user, err)
		}
		if res.Identity.ID != tc.id || !slices.Equal(groups.Names(res.Identity.Groups), tc.groups) && len(tc.groups)+len(res.Identity.Groups) > 0 {
			t.Errorf("%s: got %+v", tc.user, res.Identity)
		}
		if res.IDToken == "" || res.RefreshToken == "" {
			t.Errorf("%s: no ID or refresh token", tc.user)
		}
	}
	res, _ := signIn(t, s, c, "alice")
	if res.Identity.Email != "alice@hospital.example" || res.Identity.GivenName != "Alice" || res.Identity.FamilyName != "Andersen" {
		t.Errorf("alice's names: %+v", res.Identity)
	}
	// Refresh re-reads the account: new groups show.
	s.AddUser(adfstest.User{Username: "alice", Password: "pw", Groups: []string{"QA-Staff", "QA-Admins"}})
	r2, err := c.Refresh(t.Context(), res.RefreshToken)
	if err != nil || !slices.Equal(groups.Names(r2.Identity.Groups), []string{"QA-Staff", "QA-Admins"}) {
		t.Fatalf("refresh: %v %+v", err, r2.Identity)
	}
	var pe *adfsauth.ProviderError
	if _, err := c.Refresh(t.Context(), "bogus"); !errors.As(err, &pe) || pe.Code != "invalid_grant" {
		t.Fatalf("refresh with a bad token: %v", err)
	}
}

func TestTokenChecks(t *testing.T) {
	s := emulator(t)
	c := client(t, s, nil)
	check := func(name string, setup func(), want func(error) bool) {
		t.Helper()
		setup()
		_, err := signIn(t, s, c, "alice")
		s.SetSkew(0)
		s.SetLifetime(time.Hour)
		s.SetTokenHook(nil)
		if !want(err) {
			t.Errorf("%s: err = %v", name, err)
		} else if err != nil {
			t.Logf("%s: %v", name, err)
		}
	}
	is := func(target any) func(error) bool { return func(err error) bool { return errors.As(err, target) } }
	var te *adfsauth.TimeError
	var ae *adfsauth.AudienceError
	var ie *adfsauth.IssuerError
	var ce *adfsauth.ClaimError
	var se *adfsauth.SignatureError
	var ne *adfsauth.NonceError
	ok := func(err error) bool { return err == nil }
	check("skew within leeway", func() { s.SetSkew(90 * time.Second) }, ok)
	check("skew beyond leeway", func() { s.SetSkew(5 * time.Minute) }, func(err error) bool {
		return errors.As(err, &te) && !te.Expired() && strings.Contains(err.Error(), "clock")
	})
	check("clock behind but token still valid", func() { s.SetSkew(-30 * time.Minute) }, ok)
	check("expired", func() { s.SetLifetime(-5 * time.Minute) }, func(err error) bool { return errors.As(err, &te) && te.Expired() })
	check("expired within leeway", func() { s.SetLifetime(-time.Minute) }, ok)
	check("wrong audience", func() {
		s.SetTokenHook(func(a, _ map[string]any) { a["aud"] = "microsoft:identityserver:otherapp" })
	}, is(&ae))
	check("wrong issuer", func() {
		s.SetTokenHook(func(a, _ map[string]any) { a["iss"] = "http://evil.example/adfs/services/trust" })
	}, is(&ie))
	check("missing username claim", func() { s.SetTokenHook(func(a, _ map[string]any) { delete(a, "winaccountname") }) }, is(&ce))
	check("ID token with another nonce", func() { s.SetTokenHook(func(_, id map[string]any) { id["nonce"] = "other" }) }, is(&ne))
	check("nbf in the future", func() {
		s.SetTokenHook(func(a, _ map[string]any) { a["nbf"] = time.Now().Add(10 * time.Minute).Unix() })
	}, is(&te))
	check("auth_time as ISO string and no nbf", func() {}, ok)
	_ = se
}

func TestReplayedCode(t *testing.T) {
	s := emulator(t)
	c := client(t, s, nil)
	verifier := oauth2.GenerateVerifier()
	authURL, _ := c.AuthCodeURL(t.Context(), redirect, "st", "n", verifier)
	cb, err := s.SignIn(authURL, "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	code := cb.Query().Get("code")
	if _, err := c.Exchange(t.Context(), redirect, code, verifier, "n"); err != nil {
		t.Fatal(err)
	}
	var pe *adfsauth.ProviderError
	if _, err := c.Exchange(t.Context(), redirect, code, verifier, "n"); !errors.As(err, &pe) || pe.Code != "invalid_grant" {
		t.Fatalf("replayed code: %v", err)
	}
	// A code with the wrong PKCE verifier is refused too.
	authURL, _ = c.AuthCodeURL(t.Context(), redirect, "st", "n", verifier)
	cb, _ = s.SignIn(authURL, "alice", "pw")
	if _, err := c.Exchange(t.Context(), redirect, cb.Query().Get("code"), oauth2.GenerateVerifier(), "n"); !errors.As(err, &pe) {
		t.Fatalf("wrong verifier: %v", err)
	}
}

func TestProviderErrorOnCallback(t *testing.T) {
	s := emulator(t)
	c := client(t, s, nil)
	s.SetAuthorizeError("access_denied")
	_, err := signIn(t, s, c, "alice")
	var pe *adfsauth.ProviderError
	if !errors.As(err, &pe) || pe.Code != "access_denied" {
		t.Fatalf("err = %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	s := emulator(t)
	c := client(t, s, nil)
	if _, err := signIn(t, s, c, "alice"); err != nil {
		t.Fatal(err)
	}
	before := s.TokenRequests()
	s.Rotate(t, false)
	if _, err := signIn(t, s, c, "alice"); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	// A second unknown key within 10 s does not refetch: tokens signed
	// with it are refused until the interval has passed.
	s.Rotate(t, false)
	_, err := signIn(t, s, c, "alice")
	var se *adfsauth.SignatureError
	if !errors.As(err, &se) {
		t.Fatalf("second rotation within the refetch interval: %v", err)
	}
	_ = before
	c2 := client(t, s, func(cfg *adfsauth.Config) { cfg.KeyRefetchInterval = time.Millisecond })
	if _, err := signIn(t, s, c2, "alice"); err != nil {
		t.Fatal(err)
	}
	s.Rotate(t, true)
	time.Sleep(2 * time.Millisecond)
	if _, err := signIn(t, s, c2, "alice"); err != nil {
		t.Fatalf("rotation with a short interval: %v", err)
	}
}

func TestDownThenUp(t *testing.T) {
	s := emulator(t)
	s.SetDown(true)
	c := client(t, s, nil) // no I/O at construction
	_, err := c.AuthCodeURL(t.Context(), redirect, "s", "n", oauth2.GenerateVerifier())
	if !errors.Is(err, adfsauth.ErrUnavailable) {
		t.Fatalf("down: %v", err)
	}
	s.SetDown(false)
	time.Sleep(5 * time.Millisecond)
	if _, err := signIn(t, s, c, "alice"); err != nil {
		t.Fatalf("up again: %v", err)
	}
}

func TestLegacy2012(t *testing.T) {
	s := emulator(t)
	s.SetLegacy(true)
	c := client(t, s, nil)
	res, err := signIn(t, s, c, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if res.Identity.ID != "bob" || len(res.Identity.Groups) != 2 {
		t.Fatalf("%+v", res.Identity)
	}
	d, err := c.Discover(t.Context())
	if err != nil || !d.Legacy || d.ClaimsIssuer != s.AccessTokenIssuer() {
		t.Fatalf("discover: %+v %v", d, err)
	}
	u, ok := c.EndSessionURL(t.Context(), "", "https://qa.hospital.example/adauth/login")
	if !ok || !strings.Contains(u, "/adfs/ls/?") || !strings.Contains(u, "wa=wsignout1.0") {
		t.Fatalf("end session: %s", u)
	}
}

func TestGenericOIDC(t *testing.T) {
	s := emulator(t)
	s.SetGeneric(true)
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	c, err := adfsauth.New(adfsauth.Config{Issuer: s.Issuer(), ClientID: "qatrackplus", ClientSecret: "s3cret", RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	res, err := signIn2(t, s, c, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if res.Identity.ID != "bob" || !slices.Equal(groups.Names(res.Identity.Groups), []string{"QA-Physicists", "QA-Admins"}) {
		t.Fatalf("%+v", res.Identity)
	}
	u, ok := c.EndSessionURL(t.Context(), res.IDToken, "https://qa/x")
	if !ok || !strings.Contains(u, "id_token_hint=") || !strings.Contains(u, "post_logout_redirect_uri=") {
		t.Fatalf("end session: %s", u)
	}
}

// signIn2 is signIn without the resource check (generic OIDC sends none).
func signIn2(t *testing.T, s *adfstest.Server, c *adfsauth.Client, user string) (adfsauth.Result, error) {
	verifier := oauth2.GenerateVerifier()
	authURL, err := c.AuthCodeURL(t.Context(), redirect, "st", "n", verifier)
	if err != nil {
		return adfsauth.Result{}, err
	}
	cb, err := s.SignIn(authURL, user, "pw")
	if err != nil {
		t.Fatal(err)
	}
	return c.Exchange(t.Context(), redirect, cb.Query().Get("code"), verifier, "n")
}

// TestForgedAlgorithms: alg none and HS256 with the public key as the HMAC
// secret (the classic RS256/HS256 confusion) are refused however the
// claims look.
func TestForgedAlgorithms(t *testing.T) {
	s := emulator(t)
	var forge func(string) string
	s.SetTokenHook(func(a, _ map[string]any) {})
	c := client(t, s, nil)
	if _, err := signIn(t, s, c, "alice"); err != nil { // discover first
		t.Fatal(err)
	}
	_, certDER := s.SigningKey()
	claims := map[string]any{
		"aud": "microsoft:identityserver:qatrackplus", "iss": s.AccessTokenIssuer(), "winaccountname": "HOSPITAL\\admin",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}
	none := adfstest.EncodePart(map[string]any{"alg": "none", "typ": "JWT"}) + "." + adfstest.EncodePart(claims) + "."
	hsIn := adfstest.EncodePart(map[string]any{"alg": "HS256", "typ": "JWT", "kid": s.KeyID()}) + "." + adfstest.EncodePart(claims)
	mac := hmac.New(sha256.New, certDER)
	mac.Write([]byte(hsIn))
	hs := hsIn + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	_ = forge
	for name, tok := range map[string]string{"none": none, "HS256": hs} {
		_, err := adfsauth.VerifyForTest(c, context.Background(), tok)
		var se *adfsauth.SignatureError
		if !errors.As(err, &se) {
			t.Errorf("%s: err = %v, want a SignatureError", name, err)
		}
	}
	// The genuine key signs a token that passes the same path.
	priv, _ := s.SigningKey()
	good := adfstest.SignRS256(priv, map[string]any{"kid": s.KeyID()}, claims)
	if id, err := adfsauth.VerifyForTest(c, context.Background(), good); err != nil || id.ID != "admin" {
		t.Fatalf("genuine token: %v %+v", err, id)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []adfsauth.Config{
		{ClientID: "x"},
		{Server: "a", Issuer: "https://b", ClientID: "x"},
		{Server: "a"},
		{Server: "adfs.example/adfs", ClientID: "x"},
		{Issuer: "http://idp.example", ClientID: "x"},
		{Server: "a", ClientID: "x", Claims: map[string]string{"phone": "tel"}},
	} {
		if _, err := adfsauth.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func TestGroupValues(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want []string
	}{
		{"QA", []string{"QA"}},
		{[]any{"A", `HOSPITAL\B`, 3, ""}, []string{"A", "B"}},
		{nil, nil},
		{map[string]any{}, nil},
	} {
		if got := adfsauth.GroupValues(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("GroupValues(%v) = %v", tc.in, got)
		}
	}
	for in, want := range map[string]string{`HOSPITAL\Alice`: "alice", "alice@hospital.example": "alice", "Bob": "bob", `a\b\C`: "c"} {
		if got := adfsauth.CanonicalUsername(in); got != want {
			t.Errorf("CanonicalUsername(%q) = %q", in, got)
		}
	}
}

func FuzzGroupValues(f *testing.F) {
	f.Add("QA-Physicists", `HOSPITAL\QA`)
	f.Fuzz(func(t *testing.T, a, b string) {
		_ = adfsauth.GroupValues([]any{a, b})
		_ = adfsauth.CanonicalUsername(a)
	})
}

func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte(`<EntityDescriptor entityID="http://a/adfs/services/trust"><RoleDescriptor><KeyDescriptor use="signing"><KeyInfo><X509Data><X509Certificate>AAAA</X509Certificate></X509Data></KeyInfo></KeyDescriptor></RoleDescriptor></EntityDescriptor>`))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = adfsauth.ParseMetadataForTest(b) })
}

// TestUnknownKidRefetchIsLimited: a flood of tokens naming unknown key ids,
// concurrent or not, costs at most one JWKS fetch per interval.
func TestUnknownKidRefetchIsLimited(t *testing.T) {
	s := emulator(t)
	c := client(t, s, nil)
	if _, err := signIn(t, s, c, "alice"); err != nil {
		t.Fatal(err)
	}
	fetches := len(s.Hits("/adfs/discovery/keys"))
	priv, _ := s.SigningKey()
	claims := map[string]any{"aud": "microsoft:identityserver:qatrackplus", "iss": s.AccessTokenIssuer(), "winaccountname": "x",
		"exp": time.Now().Add(time.Hour).Unix()}
	done := make(chan error, 50)
	for i := range 50 {
		go func() {
			tok := adfstest.SignRS256(priv, map[string]any{"kid": "unknown-" + strings.Repeat("k", i)}, claims)
			_, err := adfsauth.VerifyForTest(c, context.Background(), tok)
			done <- err
		}()
	}
	for range 50 {
		var se *adfsauth.SignatureError
		if err := <-done; !errors.As(err, &se) {
			t.Errorf("unknown kid: %v", err)
		}
	}
	if n := len(s.Hits("/adfs/discovery/keys")) - fetches; n > 1 {
		t.Fatalf("%d JWKS fetches for 50 unknown key ids, want at most 1", n)
	}
}

// TestGenericOIDCWithOidctest verifies ID tokens from go-oidc's own test
// provider, signed with ES256 (which the AD FS emulator never uses), and
// refuses a provider that advertises only HMAC.
func TestGenericOIDCWithOidctest(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	op := &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: priv.Public(), KeyID: "k1", Algorithm: oidc.ES256}}, Algorithms: []string{oidc.ES256}}
	srv := httptest.NewTLSServer(op)
	t.Cleanup(srv.Close)
	op.SetIssuer(srv.URL)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c, err := adfsauth.New(adfsauth.Config{Issuer: srv.URL, ClientID: "qa", RootCAs: pool, GroupsClaim: "roles"})
	if err != nil {
		t.Fatal(err)
	}
	claims := fmt.Sprintf(`{"iss":%q,"aud":"qa","sub":"1","exp":%d,"iat":%d,"preferred_username":"Alice@Hospital.example","roles":"QA"}`,
		srv.URL, time.Now().Add(time.Hour).Unix(), time.Now().Unix())
	id, err := adfsauth.VerifyForTest(c, t.Context(), oidctest.SignIDToken(priv, "k1", oidc.ES256, claims))
	if err != nil || id.ID != "alice" || len(id.Groups) != 1 || id.Groups[0].Name != "QA" {
		t.Fatalf("ES256 ID token: %v %+v", err, id)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var se *adfsauth.SignatureError
	if _, err := adfsauth.VerifyForTest(c, t.Context(), oidctest.SignIDToken(other, "k1", oidc.ES256, claims)); !errors.As(err, &se) {
		t.Fatalf("token signed by another key: %v", err)
	}

	op2 := &oidctest.Server{Algorithms: []string{"HS256"}}
	srv2 := httptest.NewTLSServer(op2)
	t.Cleanup(srv2.Close)
	op2.SetIssuer(srv2.URL)
	pool.AddCert(srv2.Certificate())
	c2, _ := adfsauth.New(adfsauth.Config{Issuer: srv2.URL, ClientID: "qa", RootCAs: pool, RetryAfter: time.Millisecond})
	if _, err := c2.Discover(t.Context()); err == nil || !strings.Contains(err.Error(), "none of which is accepted") {
		t.Fatalf("HMAC-only provider: %v", err)
	}
}
