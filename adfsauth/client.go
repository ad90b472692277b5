package adfsauth

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/caddy-adauth/adauth/groups"
)

// Config configures a Client. Exactly one of Server and Issuer is set.
type Config struct {
	// Server is the AD FS host name (and port, if not 443), e.g.
	// adfs.hospital.example.
	Server string
	// Issuer is the issuer URL of a generic OpenID Connect provider, e.g.
	// https://login.microsoftonline.com/<tenant>/v2.0.
	Issuer string

	// ClientID is the client identifier registered with the provider.
	ClientID string
	// ClientSecret is the client's secret; empty for a public client
	// (PKCE alone).
	ClientSecret string
	// RelyingPartyID is the AD FS relying party identifier, sent as the
	// `resource` parameter of the authorize request.
	RelyingPartyID string
	// Audience the claims token must carry. Default for AD FS:
	// microsoft:identityserver:<RelyingPartyID> (or the client id when no
	// relying party is set); for generic OIDC: the client id.
	Audience string
	// Scopes requested. Default: openid profile email. "openid" is always
	// added, so an ID token (with the nonce) comes back.
	Scopes []string

	// RootCAs verifies the provider's certificate. Nil uses the system
	// pool. Ignored when HTTPClient is set.
	RootCAs *x509.CertPool
	// HTTPClient for every request to the provider. Default: a client
	// with a 10 s timeout that trusts RootCAs.
	HTTPClient *http.Client

	// UsernameClaims are tried in order for the username. Default:
	// winaccountname (AD FS), preferred_username (generic). A DOMAIN\
	// prefix and an @suffix are removed and the result lower-cased, so
	// HOSPITAL\Alice, alice@hospital.example and alice are one user.
	UsernameClaims []string
	// GroupsClaim carries group names: a string for one group, an array
	// for several. Default: group (AD FS), groups (generic).
	GroupsClaim string
	// Claims maps identity fields (email, name, given_name, family_name)
	// to claim names. Defaults: the field's own name.
	Claims map[string]string

	// Leeway allowed on exp, nbf and iat for clock differences. Default 2m.
	Leeway time.Duration
	// KeyRefetchInterval is the least time between two key fetches caused
	// by an unknown key id. Default 10 s.
	KeyRefetchInterval time.Duration
	// RetryAfter is how long a failed discovery is remembered before the
	// next sign-in tries again. Default 5 s.
	RetryAfter time.Duration
	// Now is the clock tokens are judged by. Default time.Now.
	Now func() time.Time
}

// Client runs sign-ins against one provider. It is safe for concurrent use.
type Client struct {
	cfg    Config
	http   *http.Client
	adfs   bool
	scopes []string

	mu       sync.Mutex // guards the fields below; held during discovery
	prov     *provider
	lastErr  error
	failedAt time.Time
}

// provider is what discovery (or the 2012 metadata) found.
type provider struct {
	authURL, tokenURL, endSessionURL string
	idIssuer                         string // the ID token's iss
	claimsIssuer                     string // the claims token's iss (AD FS: access_token_issuer)
	legacy                           bool   // AD FS 2012 R2: federation metadata
	algs                             []string
	keys                             *keySet
}

// Result of a sign-in.
type Result struct {
	Identity groups.Identity
	// IDToken is the raw ID token, for id_token_hint at sign-out.
	IDToken string
	// RefreshToken, when the provider issued one.
	RefreshToken string
	// Expiry of the access token.
	Expiry time.Time
	// Claims read from the claims token (for diagnostics).
	Claims map[string]any
}

// Limits on talking to the provider.
const (
	httpTimeout     = 10 * time.Second
	maxResponseBody = 1 << 20
)

// acceptedAlgs are the signature algorithms accepted when the provider
// advertises them: asymmetric only. "none" and HMAC (HS256 signed with the
// public key as the secret) are never accepted.
var acceptedAlgs = []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.PS256, oidc.ES256, oidc.ES384}

// New checks cfg and returns a Client. It does no I/O.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.Server == "" && cfg.Issuer == "":
		return nil, errors.New("one of server (AD FS) or issuer (OpenID Connect) is required")
	case cfg.Server != "" && cfg.Issuer != "":
		return nil, errors.New("server and issuer are exclusive: server for AD FS, issuer for other OpenID Connect providers")
	case cfg.ClientID == "":
		return nil, errors.New("client_id is required")
	}
	c := &Client{cfg: cfg, adfs: cfg.Server != ""}
	if c.adfs {
		s := strings.TrimSuffix(strings.TrimPrefix(cfg.Server, "https://"), "/")
		if s == "" || strings.ContainsAny(s, "/?#@ ") || strings.Contains(s, "://") {
			return nil, fmt.Errorf("server %q must be a host name such as adfs.hospital.example", cfg.Server)
		}
		if _, _, err := net.SplitHostPort(s); err != nil && strings.Contains(s, ":") && !strings.HasPrefix(s, "[") {
			return nil, fmt.Errorf("server %q: %w", cfg.Server, err)
		}
		c.cfg.Server = s
		if c.cfg.Audience == "" {
			if cfg.RelyingPartyID != "" {
				c.cfg.Audience = "microsoft:identityserver:" + cfg.RelyingPartyID
			} else {
				c.cfg.Audience = "microsoft:identityserver:" + cfg.ClientID
			}
		}
		if len(c.cfg.UsernameClaims) == 0 {
			c.cfg.UsernameClaims = []string{"winaccountname"}
		}
		if c.cfg.GroupsClaim == "" {
			c.cfg.GroupsClaim = "group"
		}
	} else {
		u, err := url.Parse(cfg.Issuer)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			return nil, fmt.Errorf("issuer %q must be an https URL", cfg.Issuer)
		}
		if c.cfg.Audience == "" {
			c.cfg.Audience = cfg.ClientID
		}
		if len(c.cfg.UsernameClaims) == 0 {
			c.cfg.UsernameClaims = []string{"preferred_username"}
		}
		if c.cfg.GroupsClaim == "" {
			c.cfg.GroupsClaim = "groups"
		}
	}
	for field := range cfg.Claims {
		if !slices.Contains([]string{"email", "name", "given_name", "family_name"}, field) {
			return nil, fmt.Errorf("claim: unknown identity field %q (email, name, given_name, family_name)", field)
		}
	}
	if c.cfg.Leeway == 0 {
		c.cfg.Leeway = 2 * time.Minute
	}
	if c.cfg.Leeway < 0 {
		return nil, errors.New("leeway must not be negative")
	}
	if c.cfg.KeyRefetchInterval == 0 {
		c.cfg.KeyRefetchInterval = 10 * time.Second
	}
	if c.cfg.RetryAfter == 0 {
		c.cfg.RetryAfter = 5 * time.Second
	}
	if c.cfg.Now == nil {
		c.cfg.Now = time.Now
	}
	c.scopes = []string{"openid"}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{"profile", "email"}
	}
	for _, s := range scopes {
		if !slices.Contains(c.scopes, s) {
			c.scopes = append(c.scopes, s)
		}
	}
	c.http = cfg.HTTPClient
	if c.http == nil {
		c.http = NewHTTPClient(cfg.RootCAs)
	}
	return c, nil
}

// NewHTTPClient returns the client New uses by default: a 10 s timeout,
// response bodies limited to 1 MiB, and roots (nil: the system pool).
func NewHTTPClient(roots *x509.CertPool) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: httpTimeout, Transport: limitTransport{t}}
}

// limitTransport bounds every response body: a provider (or something
// pretending to be one) cannot make the server buffer gigabytes.
type limitTransport struct{ next http.RoundTripper }

func (l limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{r: io.LimitReader(resp.Body, maxResponseBody+1), c: resp.Body}
	return resp, nil
}

type limitedBody struct {
	r io.Reader
	c io.Closer
	n int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > maxResponseBody {
		return n, fmt.Errorf("response body larger than %d bytes", maxResponseBody)
	}
	return n, err
}
func (b *limitedBody) Close() error { return b.c.Close() }

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsADFS reports whether the client talks to AD FS (Server) rather than a
// generic OpenID Connect provider (Issuer).
func (c *Client) IsADFS() bool { return c.adfs }

// HTTPClient is the client used for every request to the provider.
func (c *Client) HTTPClient() *http.Client { return c.http }

// discoveryURL is where the provider's configuration is read.
func (c *Client) discoveryURL() string {
	if c.adfs {
		return "https://" + c.cfg.Server + "/adfs/.well-known/openid-configuration"
	}
	return strings.TrimSuffix(c.cfg.Issuer, "/") + "/.well-known/openid-configuration"
}

// provider returns the discovered configuration, discovering it on first
// use. A failure is remembered for RetryAfter, so a down provider costs one
// request per few seconds, not one per visitor.
func (c *Client) provider(ctx context.Context) (*provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prov != nil {
		return c.prov, nil
	}
	if c.lastErr != nil && time.Since(c.failedAt) < c.cfg.RetryAfter {
		return nil, c.lastErr
	}
	p, err := c.discover(ctx)
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		c.lastErr, c.failedAt = err, time.Now()
		return nil, err
	}
	c.prov, c.lastErr = p, nil
	return p, nil
}

// Discover fetches the provider's configuration and keys now (the
// check-adfs command uses it); sign-ins discover lazily on their own.
func (c *Client) Discover(ctx context.Context) (Discovery, error) {
	p, err := c.provider(ctx)
	if err != nil {
		return Discovery{}, err
	}
	keys, err := p.keys.get(ctx)
	if err != nil {
		return Discovery{}, err
	}
	d := Discovery{
		AuthorizationEndpoint: p.authURL, TokenEndpoint: p.tokenURL, EndSessionEndpoint: p.endSessionURL,
		Issuer: p.idIssuer, ClaimsIssuer: p.claimsIssuer, Legacy: p.legacy, Algorithms: p.algs,
	}
	for _, k := range keys {
		d.KeyIDs = append(d.KeyIDs, k.KeyID)
	}
	return d, nil
}

// Discovery summarises what Discover found.
type Discovery struct {
	Issuer, ClaimsIssuer                                     string
	AuthorizationEndpoint, TokenEndpoint, EndSessionEndpoint string
	Legacy                                                   bool // AD FS 2012 R2 federation metadata
	Algorithms, KeyIDs                                       []string
}

type discoveryDoc struct {
	Issuer            string   `json:"issuer"`
	AuthURL           string   `json:"authorization_endpoint"`
	TokenURL          string   `json:"token_endpoint"`
	JWKSURL           string   `json:"jwks_uri"`
	EndSessionURL     string   `json:"end_session_endpoint"`
	AccessTokenIssuer string   `json:"access_token_issuer"`
	Algorithms        []string `json:"id_token_signing_alg_values_supported"`
}

func (c *Client) discover(ctx context.Context) (*provider, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.discoveryURL(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("discovery %s: %w", c.discoveryURL(), err)
	}
	if resp.StatusCode == http.StatusNotFound && c.adfs {
		return c.discoverLegacy(ctx)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("discovery %s: %s", c.discoveryURL(), resp.Status)
	}
	var doc discoveryDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("discovery %s: %w", c.discoveryURL(), err)
	}
	wantIssuer := strings.TrimSuffix(c.discoveryURL(), "/.well-known/openid-configuration")
	if doc.Issuer != wantIssuer && !(!c.adfs && strings.TrimSuffix(doc.Issuer, "/") == strings.TrimSuffix(wantIssuer, "/")) {
		return nil, &IssuerError{Want: wantIssuer, Got: doc.Issuer}
	}
	if doc.AuthURL == "" || doc.TokenURL == "" || doc.JWKSURL == "" {
		return nil, fmt.Errorf("discovery %s: authorization_endpoint, token_endpoint or jwks_uri missing", c.discoveryURL())
	}
	p := &provider{
		authURL: doc.AuthURL, tokenURL: doc.TokenURL, endSessionURL: doc.EndSessionURL,
		idIssuer: doc.Issuer, claimsIssuer: doc.Issuer,
	}
	if c.adfs {
		if doc.AccessTokenIssuer == "" {
			doc.AccessTokenIssuer = "http://" + c.cfg.Server + "/adfs/services/trust"
		}
		p.claimsIssuer = doc.AccessTokenIssuer
	}
	for _, a := range doc.Algorithms {
		if slices.Contains(acceptedAlgs, a) {
			p.algs = append(p.algs, a)
		}
	}
	if len(doc.Algorithms) == 0 {
		p.algs = []string{oidc.RS256}
	}
	if len(p.algs) == 0 {
		return nil, fmt.Errorf("discovery: the provider signs with %v, none of which is accepted (%v)", doc.Algorithms, acceptedAlgs)
	}
	jwksURL := doc.JWKSURL
	p.keys = newKeySet(func(ctx context.Context) ([]jsonWebKey, error) { return fetchJWKS(ctx, c.http, jwksURL) },
		p.algs, c.cfg.KeyRefetchInterval)
	return p, nil
}

// discoverLegacy reads AD FS 2012 R2's federation metadata: the token
// issuer (entityID) and the signing certificates. Its OAuth endpoints are
// at fixed paths.
func (c *Client) discoverLegacy(ctx context.Context) (*provider, error) {
	metaURL := "https://" + c.cfg.Server + "/FederationMetadata/2007-06/FederationMetadata.xml"
	md, err := fetchMetadata(ctx, c.http, metaURL)
	if err != nil {
		return nil, err
	}
	base := "https://" + c.cfg.Server + "/adfs"
	p := &provider{
		authURL:       base + "/oauth2/authorize",
		tokenURL:      base + "/oauth2/token",
		endSessionURL: base + "/ls/?wa=wsignout1.0",
		idIssuer:      md.entityID,
		claimsIssuer:  md.entityID,
		legacy:        true,
		algs:          []string{oidc.RS256},
	}
	p.keys = newKeySet(func(ctx context.Context) ([]jsonWebKey, error) {
		md, err := fetchMetadata(ctx, c.http, metaURL)
		if err != nil {
			return nil, err
		}
		return md.keys, nil
	}, p.algs, c.cfg.KeyRefetchInterval)
	p.keys.set(md.keys)
	return p, nil
}

func (c *Client) oauth2Config(p *provider, redirectURL string) *oauth2.Config {
	style := oauth2.AuthStyleAutoDetect
	if c.cfg.ClientSecret == "" {
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: p.authURL, TokenURL: p.tokenURL, AuthStyle: style},
		RedirectURL:  redirectURL,
		Scopes:       c.scopes,
	}
}

// AuthCodeURL returns the URL to send the browser to. It may discover the
// provider; an unreachable provider is an error wrapping ErrUnavailable.
// state and nonce are random values the caller keeps with verifier (from
// oauth2.GenerateVerifier) until the callback.
func (c *Client) AuthCodeURL(ctx context.Context, redirectURL, state, nonce, verifier string) (string, error) {
	p, err := c.provider(ctx)
	if err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{oauth2.AccessTypeOnline, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if c.cfg.RelyingPartyID != "" {
		opts = append(opts, oauth2.SetAuthURLParam("resource", c.cfg.RelyingPartyID))
	}
	return c.oauth2Config(p, redirectURL).AuthCodeURL(state, opts...), nil
}

// CallbackError turns the error parameters of a callback URL into a
// *ProviderError, or nil when there are none.
func CallbackError(q url.Values) error {
	if code := q.Get("error"); code != "" {
		desc := q.Get("error_description")
		if len(desc) > 300 {
			desc = desc[:300]
		}
		if len(code) > 64 {
			code = code[:64]
		}
		return &ProviderError{Code: code, Description: desc}
	}
	return nil
}

// Exchange redeems the code from the callback and verifies the tokens.
// redirectURL must be the one given to AuthCodeURL.
func (c *Client) Exchange(ctx context.Context, redirectURL, code, verifier, nonce string) (Result, error) {
	p, err := c.provider(ctx)
	if err != nil {
		return Result{}, err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.http)
	tok, err := c.oauth2Config(p, redirectURL).Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Result{}, tokenError(err)
	}
	return c.result(ctx, p, tok, nonce, true)
}

// Refresh redeems a refresh token and verifies the new tokens: the
// periodic re-check of a signed-in user. A *ProviderError (invalid_grant)
// means the account may no longer sign in.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (Result, error) {
	p, err := c.provider(ctx)
	if err != nil {
		return Result{}, err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.http)
	tok, err := c.oauth2Config(p, "").TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return Result{}, tokenError(err)
	}
	res, err := c.result(ctx, p, tok, "", false)
	if err == nil && res.RefreshToken == "" {
		res.RefreshToken = refreshToken
	}
	return res, err
}

func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return &ProviderError{Code: re.ErrorCode, Description: re.ErrorDescription}
		}
		if re.Response != nil && re.Response.StatusCode >= 500 {
			return fmt.Errorf("%w: token endpoint: %s", ErrUnavailable, re.Response.Status)
		}
		return fmt.Errorf("token endpoint: %w", err)
	}
	return fmt.Errorf("%w: token endpoint: %w", ErrUnavailable, err)
}

func (c *Client) result(ctx context.Context, p *provider, tok *oauth2.Token, nonce string, checkNonce bool) (Result, error) {
	res := Result{RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}
	res.IDToken, _ = tok.Extra("id_token").(string)
	var claims map[string]any
	if c.adfs {
		// AD FS puts the relying party's issuance rules into the access
		// token; the ID token carries little but the nonce.
		var err error
		if claims, err = c.verify(ctx, p, tok.AccessToken, p.claimsIssuer, c.cfg.Audience, "", false); err != nil {
			return Result{}, fmt.Errorf("access token: %w", err)
		}
		if res.IDToken != "" && !p.legacy {
			if _, err := c.verify(ctx, p, res.IDToken, p.idIssuer, c.cfg.ClientID, nonce, checkNonce); err != nil {
				return Result{}, fmt.Errorf("ID token: %w", err)
			}
		}
	} else {
		if res.IDToken == "" {
			return Result{}, errors.New("the token response has no id_token: is the openid scope allowed for this client?")
		}
		var err error
		if claims, err = c.verify(ctx, p, res.IDToken, p.idIssuer, c.cfg.Audience, nonce, checkNonce); err != nil {
			return Result{}, fmt.Errorf("ID token: %w", err)
		}
	}
	id, err := c.identity(claims)
	if err != nil {
		return Result{}, err
	}
	res.Identity, res.Claims = id, claims
	return res, nil
}

type errHolderKey struct{}

// verify checks a token's signature, issuer, audience, times (with the
// leeway) and nonce, and returns its claims. go-oidc checks the signature
// and algorithm; it is told to skip its own issuer, audience and expiry
// checks, whose errors are untyped and whose leeways are fixed.
func (c *Client) verify(ctx context.Context, p *provider, raw, issuer, audience, nonce string, checkNonce bool) (map[string]any, error) {
	if raw == "" {
		return nil, errors.New("token is empty")
	}
	holder := new(error)
	v := oidc.NewVerifier(issuer, p.keys, &oidc.Config{
		SkipClientIDCheck: true, SkipExpiryCheck: true, SkipIssuerCheck: true,
		SupportedSigningAlgs: p.algs,
	})
	tok, err := v.Verify(context.WithValue(ctx, errHolderKey{}, holder), raw)
	if err != nil {
		if *holder != nil {
			return nil, *holder // the keys could not be fetched
		}
		return nil, &SignatureError{Err: err}
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, fmt.Errorf("token claims: %w", err)
	}
	if tok.Issuer != issuer {
		return nil, &IssuerError{Want: issuer, Got: tok.Issuer}
	}
	if !slices.Contains(tok.Audience, audience) {
		return nil, &AudienceError{Want: audience, Got: tok.Audience}
	}
	now, lw := c.cfg.Now(), c.cfg.Leeway
	if tok.Expiry.IsZero() || tok.Expiry.Unix() == 0 {
		return nil, &ClaimError{Claim: "exp", Have: claimNames(claims)}
	}
	if now.After(tok.Expiry.Add(lw)) {
		return nil, &TimeError{Claim: "exp", At: tok.Expiry, Now: now, Leeway: lw}
	}
	for _, name := range []string{"nbf", "iat"} {
		if t, ok := numericTime(claims[name]); ok && now.Add(lw).Before(t) {
			return nil, &TimeError{Claim: name, At: t, Now: now, Leeway: lw}
		}
	}
	if checkNonce && subtle.ConstantTimeCompare([]byte(tok.Nonce), []byte(nonce)) != 1 {
		return nil, &NonceError{}
	}
	return claims, nil
}

func numericTime(v any) (time.Time, bool) {
	switch n := v.(type) {
	case float64:
		return time.Unix(int64(n), 0), true
	case json.Number:
		f, err := n.Float64()
		return time.Unix(int64(f), 0), err == nil
	}
	return time.Time{}, false
}

func claimNames(claims map[string]any) []string {
	names := make([]string, 0, len(claims))
	for k := range claims {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// identity reads the configured claims.
func (c *Client) identity(claims map[string]any) (groups.Identity, error) {
	var id groups.Identity
	for _, name := range c.cfg.UsernameClaims {
		if s, ok := claims[name].(string); ok {
			if id.ID = CanonicalUsername(s); id.ID != "" {
				break
			}
		}
	}
	if id.ID == "" {
		return id, &ClaimError{Claim: strings.Join(c.cfg.UsernameClaims, " or "), Have: claimNames(claims)}
	}
	field := func(f string) string {
		name := f
		if n, ok := c.cfg.Claims[f]; ok {
			name = n
		}
		s, _ := claims[name].(string)
		return strings.TrimSpace(s)
	}
	id.Email, id.Name, id.GivenName, id.FamilyName = field("email"), field("name"), field("given_name"), field("family_name")
	for _, g := range GroupValues(claims[c.cfg.GroupsClaim]) {
		id.Groups = append(id.Groups, groups.Group{Name: g})
	}
	return id, nil
}

// CanonicalUsername turns a claim value into adauth's canonical username:
// the DOMAIN\ prefix and an @suffix removed, lower-cased.
func CanonicalUsername(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\\'); i >= 0 {
		s = s[i+1:]
	}
	if i := strings.IndexByte(s, '@'); i > 0 {
		s = s[:i]
	}
	return strings.ToLower(strings.TrimSpace(s))
}

// GroupValues reads a group claim: a string is one group, an array is
// several, anything else none. A DOMAIN\ prefix (AD FS's "Token-Groups
// Qualified by Domain Name") is removed, so group rules name the group as
// LDAP does, by its CN.
func GroupValues(v any) []string {
	var out []string
	add := func(s string) {
		if i := strings.LastIndexByte(s, '\\'); i >= 0 {
			s = s[i+1:]
		}
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	switch g := v.(type) {
	case string:
		add(g)
	case []any:
		for _, e := range g {
			if s, ok := e.(string); ok {
				add(s)
			}
		}
	case []string:
		for _, s := range g {
			add(s)
		}
	}
	return out
}

// EndSessionURL is where to send the browser to end the provider's
// session too, returning to postLogoutRedirect; false when the provider has
// none or has not been discovered. idTokenHint may be empty: the client id
// is sent so the provider can still identify the relying party.
func (c *Client) EndSessionURL(ctx context.Context, idTokenHint, postLogoutRedirect string) (string, bool) {
	p, err := c.provider(ctx)
	if err != nil || p.endSessionURL == "" {
		return "", false
	}
	u, err := url.Parse(p.endSessionURL)
	if err != nil {
		return "", false
	}
	q := u.Query()
	if p.legacy {
		if postLogoutRedirect != "" {
			q.Set("wreply", postLogoutRedirect)
		}
	} else {
		q.Set("client_id", c.cfg.ClientID)
		if idTokenHint != "" {
			q.Set("id_token_hint", idTokenHint)
		}
		if postLogoutRedirect != "" {
			q.Set("post_logout_redirect_uri", postLogoutRedirect)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), true
}
