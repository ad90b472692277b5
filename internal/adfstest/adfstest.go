// Package adfstest is an in-process AD FS for tests, faithful to what AD FS
// 2016/2019 does on the wire (and AD FS 2012 R2 in Legacy mode):
//
//   - discovery at /adfs/.well-known/openid-configuration, issuer
//     https://host/adfs, access_token_issuer http://host/adfs/services/trust;
//   - JWKS at /adfs/discovery/keys with kid, x5t and x5c;
//   - /adfs/oauth2/authorize: an HTML sign-in form (#username, #password,
//     #submit), redirecting back with code and state, or with an error;
//   - /adfs/oauth2/token: single-use codes, exact redirect_uri, PKCE S256,
//     client secret (basic or post), access tokens with
//     aud=microsoft:identityserver:<resource>, RS256 with kid and x5t, no
//     nbf, auth_time an ISO string; the ID token only with scope openid;
//   - group: a string for one group, an array for several, absent for none;
//   - key rollover, clock skew, token lifetime, down/up, 2012 R2 mode
//     (discovery 404, FederationMetadata.xml), sign-out endpoints that
//     record their hits.
//
// Generic mode turns it into a plain OpenID Connect provider (claims in the
// ID token: preferred_username, groups).
package adfstest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html/template"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// User is an account the emulator knows.
type User struct {
	Username string // what is typed into the form
	Password string
	// WinAccountName as AD FS sends it: "HOSPITAL\alice" or bare "alice".
	// Default: HOSPITAL\<Username>.
	WinAccountName string
	UPN            string // default <Username>@hospital.example
	GivenName      string
	FamilyName     string
	Email          string
	// Groups: nil or empty sends no group claim; one is sent as a string;
	// several as an array.
	Groups []string
	// Omit lists claims to leave out of the tokens (e.g. winaccountname).
	Omit []string
}

// Client is a registered OAuth client (an AD FS application group).
type Client struct {
	ID     string
	Secret string // empty: a public client
	// RedirectURIs allowed; empty allows any (tests that derive the
	// redirect URI from the request's host).
	RedirectURIs []string
}

// Server is the emulator. Exported fields may be changed between requests
// while holding no lock: tests set them before the step they affect, so
// they are read under mu by the handlers via the setters below.
type Server struct {
	*httptest.Server
	// Host is host:port, what the adfs block's `server` is set to.
	Host string
	// CAFile is a PEM file with the server's certificate, for ca_file.
	CAFile string

	mu       sync.Mutex
	users    map[string]User
	clients  map[string]Client
	keys     []*signingKey // keys[0] signs; all are published
	codes    map[string]*grant
	refresh  map[string]*grant
	skew     time.Duration
	lifetime time.Duration
	legacy   bool
	generic  bool
	down     bool
	authErr  string
	hook     func(access, id map[string]any)
	hits     map[string][]url.Values
	tokenReq int
}

type signingKey struct {
	priv *rsa.PrivateKey
	der  []byte
	kid  string // = x5t, as AD FS does
}

type grant struct {
	user        User
	clientID    string
	redirectURI string
	scope       string
	resource    string
	nonce       string
	challenge   string
	method      string
	issued      time.Time
}

// New starts an emulator with the given users and clients. It is closed
// when the test ends.
func New(t testing.TB, users []User, clients []Client) *Server {
	t.Helper()
	s := &Server{
		users: map[string]User{}, clients: map[string]Client{},
		codes: map[string]*grant{}, refresh: map[string]*grant{}, hits: map[string][]url.Values{},
		lifetime: time.Hour,
	}
	for _, u := range users {
		s.users[strings.ToLower(u.Username)] = u
	}
	for _, c := range clients {
		s.clients[c.ID] = c
	}
	s.keys = []*signingKey{newKey(t)}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // untrusted-CA tests make handshake noise
	s.StartTLS()
	t.Cleanup(s.Close)
	s.Host = strings.TrimPrefix(s.URL, "https://")
	s.CAFile = filepath.Join(t.TempDir(), "adfs-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(s.CAFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func newKey(t testing.TB) *signingKey {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "ADFS Signing - adfs.hospital.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(der)
	return &signingKey{priv: priv, der: der, kid: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// Issuer is the discovery issuer, https://host/adfs.
func (s *Server) Issuer() string { return "https://" + s.Host + "/adfs" }

// AccessTokenIssuer is http://host/adfs/services/trust.
func (s *Server) AccessTokenIssuer() string { return "http://" + s.Host + "/adfs/services/trust" }

func (s *Server) with(f func()) { s.mu.Lock(); defer s.mu.Unlock(); f() }

// AddUser adds or replaces a user.
func (s *Server) AddUser(u User) { s.with(func() { s.users[strings.ToLower(u.Username)] = u }) }

// SetSkew shifts every token time by d (the AD FS clock is d ahead).
func (s *Server) SetSkew(d time.Duration) { s.with(func() { s.skew = d }) }

// SetLifetime sets the token lifetime; negative issues expired tokens.
func (s *Server) SetLifetime(d time.Duration) { s.with(func() { s.lifetime = d }) }

// SetLegacy switches AD FS 2012 R2 mode: no discovery (404), federation
// metadata, no ID token, tokens with x5t only.
func (s *Server) SetLegacy(on bool) { s.with(func() { s.legacy = on }) }

// SetGeneric switches plain OpenID Connect: claims in the ID token
// (preferred_username, groups), no access_token_issuer.
func (s *Server) SetGeneric(on bool) { s.with(func() { s.generic = on }) }

// SetDown makes every endpoint answer 503 (true) or work again (false).
func (s *Server) SetDown(on bool) { s.with(func() { s.down = on }) }

// SetAuthorizeError makes the authorize endpoint redirect back with
// error=code (e.g. access_denied); "" turns it off.
func (s *Server) SetAuthorizeError(code string) { s.with(func() { s.authErr = code }) }

// SetTokenHook lets a test change the claims of the next tokens (wrong
// audience, wrong issuer, missing claims); nil removes it.
func (s *Server) SetTokenHook(f func(access, id map[string]any)) { s.with(func() { s.hook = f }) }

// Rotate publishes a new signing key and signs with it from now on. The
// old key stays published when keepOld, else it is removed.
func (s *Server) Rotate(t testing.TB, keepOld bool) {
	k := newKey(t)
	s.with(func() {
		if keepOld {
			s.keys = append([]*signingKey{k}, s.keys...)
		} else {
			s.keys = []*signingKey{k}
		}
	})
}

// Hits returns the queries with which path (e.g. /adfs/oauth2/logout,
// /adfs/ls/ or /adfs/discovery/keys) was requested, in order.
func (s *Server) Hits(path string) []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.hits[path]...)
}

// TokenRequests counts requests to the token endpoint.
func (s *Server) TokenRequests() int { s.mu.Lock(); defer s.mu.Unlock(); return s.tokenReq }

// KeyID is the current signing key's id (= x5t).
func (s *Server) KeyID() string { s.mu.Lock(); defer s.mu.Unlock(); return s.keys[0].kid }

// SigningKey returns the current private signing key and its certificate
// (DER), for tests that craft tokens.
func (s *Server) SigningKey() (*rsa.PrivateKey, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[0].priv, s.keys[0].der
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down, legacy := s.down, s.legacy
	s.hits[r.URL.Path] = append(s.hits[r.URL.Path], r.URL.Query())
	s.mu.Unlock()
	if down {
		http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	switch p := strings.TrimSuffix(r.URL.Path, "/"); p {
	case "/adfs/.well-known/openid-configuration":
		if legacy {
			http.NotFound(w, r)
			return
		}
		s.discovery(w)
	case "/adfs/discovery/keys":
		if legacy {
			http.NotFound(w, r)
			return
		}
		s.jwks(w)
	case "/FederationMetadata/2007-06/FederationMetadata.xml":
		s.metadata(w)
	case "/adfs/oauth2/authorize":
		s.authorize(w, r)
	case "/adfs/oauth2/token":
		s.token(w, r)
	case "/adfs/oauth2/logout":
		s.signedOut(w, r, r.URL.Query().Get("post_logout_redirect_uri"))
	case "/adfs/ls":
		if r.URL.Query().Get("wa") != "wsignout1.0" {
			http.Error(w, "MSIS7042: unsupported request", http.StatusBadRequest)
			return
		}
		s.signedOut(w, r, r.URL.Query().Get("wreply"))
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) signedOut(w http.ResponseWriter, r *http.Request, back string) {
	if back != "" {
		http.Redirect(w, r, back, http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, `<!doctype html><title>Sign Out</title><p id="signed-out">You have successfully signed out.</p>`)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) discovery(w http.ResponseWriter) {
	base := s.Issuer()
	doc := map[string]any{
		"issuer":                                           base,
		"authorization_endpoint":                           base + "/oauth2/authorize/",
		"token_endpoint":                                   base + "/oauth2/token/",
		"jwks_uri":                                         base + "/discovery/keys",
		"token_endpoint_auth_methods_supported":            []string{"client_secret_post", "client_secret_basic", "private_key_jwt", "windows_client_authentication"},
		"response_types_supported":                         []string{"code", "id_token", "code id_token", "id_token token", "code token", "code id_token token"},
		"response_modes_supported":                         []string{"query", "fragment", "form_post"},
		"grant_types_supported":                            []string{"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer", "implicit", "password", "srv_challenge", "urn:ietf:params:oauth:grant-type:device_code", "device_code"},
		"subject_types_supported":                          []string{"pairwise"},
		"scopes_supported":                                 []string{"vpn_cert", "email", "openid", "profile", "allatclaims", "logon_cert", "aza", "winhello_cert", "user_impersonation"},
		"id_token_signing_alg_values_supported":            []string{"RS256"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS256"},
		"access_token_issuer":                              s.AccessTokenIssuer(),
		"claims_supported":                                 []string{"aud", "iss", "iat", "exp", "auth_time", "nonce", "at_hash", "c_hash", "sub", "upn", "unique_name", "pwd_url", "pwd_exp", "mfa_auth_time", "sid", "nbf"},
		"microsoft_multi_refresh_token":                    true,
		"userinfo_endpoint":                                base + "/userinfo",
		"capabilities":                                     []string{},
		"end_session_endpoint":                             base + "/oauth2/logout",
		"as_access_token_token_binding_supported":          true,
		"as_refresh_token_token_binding_supported":         true,
		"resource_access_token_token_binding_supported":    true,
		"op_id_token_token_binding_supported":              true,
		"rp_id_token_token_binding_supported":              true,
		"frontchannel_logout_supported":                    true,
		"frontchannel_logout_session_supported":            true,
		"code_challenge_methods_supported":                 []string{"plain", "S256"},
	}
	s.mu.Lock()
	if s.generic {
		delete(doc, "access_token_issuer")
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, doc)
}

func (s *Server) jwks(w http.ResponseWriter) {
	s.mu.Lock()
	var keys []map[string]any
	for _, k := range s.keys {
		keys = append(keys, map[string]any{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": k.kid, "x5t": k.kid,
			"n":   base64.RawURLEncoding.EncodeToString(k.priv.N.Bytes()),
			"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.priv.E)).Bytes()),
			"x5c": []string{base64.StdEncoding.EncodeToString(k.der)},
		})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

func (s *Server) metadata(w http.ResponseWriter) {
	s.mu.Lock()
	var certs strings.Builder
	for _, k := range s.keys {
		fmt.Fprintf(&certs, `<KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>%s</X509Certificate></X509Data></KeyInfo></KeyDescriptor>`,
			base64.StdEncoding.EncodeToString(k.der))
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?>
<EntityDescriptor ID="_%d" entityID="%s" xmlns="urn:oasis:names:tc:SAML:2.0:metadata">
<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/></ds:Signature>
<RoleDescriptor xsi:type="fed:SecurityTokenServiceType" protocolSupportEnumeration="http://docs.oasis-open.org/ws-sx/ws-trust/200512 http://schemas.xmlsoap.org/ws/2005/02/trust http://docs.oasis-open.org/wsfed/federation/200706" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:fed="http://docs.oasis-open.org/wsfed/federation/200706">
%s
<KeyDescriptor use="encryption"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>bm90IGEgY2VydA==</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
</RoleDescriptor>
<IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">%s
<SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://%s/adfs/ls/"/>
</IDPSSODescriptor>
</EntityDescriptor>`, time.Now().UnixNano(), s.AccessTokenIssuer(), certs.String(), certs.String(), s.Host)
}

var formTmpl = template.Must(template.New("form").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign In</title></head>
<body><h1>Hospital sign-in</h1>
{{if .Error}}<p id="error">{{.Error}}</p>{{end}}
<form method="post" id="loginForm" action="/adfs/oauth2/authorize/">
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<label for="username">User account</label> <input id="username" name="UserName" type="text" autocomplete="username" placeholder="someone@example.com">
<label for="password">Password</label> <input id="password" name="Password" type="password" autocomplete="current-password">
<button id="submit" type="submit">Sign in</button>
</form></body></html>`))

// authorizeParams are carried from the authorize GET through the form.
var authorizeParams = []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "resource", "code_challenge", "code_challenge_method", "response_mode", "prompt", "access_type"}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	params := map[string]string{}
	for _, k := range authorizeParams {
		if v := r.Form.Get(k); v != "" {
			params[k] = v
		}
	}
	s.mu.Lock()
	client, ok := s.clients[params["client_id"]]
	authErr := s.authErr
	s.mu.Unlock()
	redirect := params["redirect_uri"]
	if !ok {
		http.Error(w, "MSIS9223: Received invalid OAuth authorization request. The received 'client_id' is invalid as no registered client was found with this client identifier.", http.StatusBadRequest)
		return
	}
	if !allowedRedirect(client, redirect) {
		http.Error(w, "MSIS9224: Received invalid OAuth authorization request. The received 'redirect_uri' parameter is not a valid registered redirect URI for the client.", http.StatusBadRequest)
		return
	}
	back := func(q url.Values) {
		u, _ := url.Parse(redirect)
		qq := u.Query()
		for k, v := range q {
			qq[k] = v
		}
		if st := params["state"]; st != "" {
			qq.Set("state", st)
		}
		u.RawQuery = qq.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
	if params["response_type"] != "code" {
		back(url.Values{"error": {"unsupported_response_type"}, "error_description": {"MSIS9226: response_type not supported."}})
		return
	}
	if authErr != "" {
		back(url.Values{"error": {authErr}, "error_description": {"MSIS9605: The client is not allowed to access the requested resource."}})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = formTmpl.Execute(w, map[string]any{"Params": params})
		return
	}
	name := r.PostForm.Get("UserName")
	if i := strings.LastIndexByte(name, '\\'); i >= 0 {
		name = name[i+1:]
	}
	if i := strings.IndexByte(name, '@'); i > 0 {
		name = name[:i]
	}
	s.mu.Lock()
	user, ok := s.users[strings.ToLower(name)]
	s.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare([]byte(user.Password), []byte(r.PostForm.Get("Password"))) != 1 {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_ = formTmpl.Execute(w, map[string]any{"Params": params, "Error": "Incorrect user ID or password. Type the correct user ID and password, and try again."})
		return
	}
	code := randomString(48)
	g := &grant{user: user, clientID: client.ID, redirectURI: redirect, scope: params["scope"], resource: params["resource"],
		nonce: params["nonce"], challenge: params["code_challenge"], method: params["code_challenge_method"], issued: time.Now()}
	s.with(func() { s.codes[code] = g })
	back(url.Values{"code": {code}})
}

func allowedRedirect(c Client, redirect string) bool {
	if redirect == "" {
		return false
	}
	if len(c.RedirectURIs) == 0 {
		return true
	}
	for _, u := range c.RedirectURIs {
		if u == redirect {
			return true
		}
	}
	return false
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.with(func() { s.tokenReq++ })
	if r.Method != http.MethodPost {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "MSIS9601: POST only.")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	clientID, secret, basic := r.BasicAuth()
	if basic {
		clientID, _ = url.QueryUnescape(clientID)
		secret, _ = url.QueryUnescape(secret)
	} else {
		clientID, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	s.mu.Lock()
	client, ok := s.clients[clientID]
	s.mu.Unlock()
	if !ok || (client.Secret != "" && subtle.ConstantTimeCompare([]byte(client.Secret), []byte(secret)) != 1) {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "MSIS9607: The 'client_secret' parameter in the OAuth message is invalid.")
		return
	}
	var g *grant
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		code := r.PostForm.Get("code")
		s.mu.Lock()
		g = s.codes[code]
		delete(s.codes, code) // single use, whatever happens next
		s.mu.Unlock()
		switch {
		case g == nil || time.Since(g.issued) > time.Minute || g.clientID != clientID:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "MSIS9612: The authorization code received in 'code' parameter is invalid.")
			return
		case r.PostForm.Get("redirect_uri") != g.redirectURI:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "MSIS9609: The 'redirect_uri' parameter is invalid. It does not match the redirect URI of the authorization request.")
			return
		case g.challenge != "":
			v := r.PostForm.Get("code_verifier")
			want := v
			if g.method == "S256" {
				sum := sha256.Sum256([]byte(v))
				want = base64.RawURLEncoding.EncodeToString(sum[:])
			}
			if v == "" || subtle.ConstantTimeCompare([]byte(want), []byte(g.challenge)) != 1 {
				oauthError(w, http.StatusBadRequest, "invalid_grant", "MSIS9615: The 'code_verifier' parameter does not match the 'code_challenge'.")
				return
			}
		}
	case "refresh_token":
		s.mu.Lock()
		g = s.refresh[r.PostForm.Get("refresh_token")]
		s.mu.Unlock()
		if g == nil || g.clientID != clientID {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "MSIS9614: The refresh token received in 'refresh_token' parameter is invalid.")
			return
		}
		s.mu.Lock()
		if u, ok := s.users[strings.ToLower(g.user.Username)]; ok {
			ng := *g
			ng.user = u
			g = &ng
		} else {
			g = nil
		}
		s.mu.Unlock()
		if g == nil {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "MSIS9614: The user no longer exists.")
			return
		}
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "MSIS9611: grant_type not supported.")
		return
	}
	writeJSON(w, http.StatusOK, s.issue(g))
}

// issue makes the token response for a grant.
func (s *Server) issue(g *grant) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().Add(s.skew)
	iat, exp := now.Unix(), now.Add(s.lifetime).Unix()
	u := g.user
	win := u.WinAccountName
	if win == "" {
		win = "HOSPITAL\\" + u.Username
	}
	upn := u.UPN
	if upn == "" {
		upn = u.Username + "@hospital.example"
	}
	resource := g.resource
	if resource == "" {
		resource = "urn:microsoft:userinfo"
	}
	user := map[string]any{
		"winaccountname": win, "upn": upn, "unique_name": "HOSPITAL\\" + u.Username,
		"given_name": u.GivenName, "family_name": u.FamilyName, "email": u.Email,
	}
	switch len(u.Groups) {
	case 0:
	case 1:
		user["group"] = u.Groups[0]
	default:
		user["group"] = append([]string(nil), u.Groups...)
	}
	for k, v := range user {
		if v == "" {
			delete(user, k)
		}
	}
	access := map[string]any{
		"aud": "microsoft:identityserver:" + resource, "iss": s.AccessTokenIssuer(),
		"iat": iat, "exp": exp, "apptype": "Confidential", "appid": g.clientID,
		"authmethod": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
		"auth_time":  now.UTC().Format("2006-01-02T15:04:05.000Z"), "ver": "1.0", "scp": g.scope,
	}
	for k, v := range user {
		access[k] = v
	}
	id := map[string]any{
		"aud": g.clientID, "iss": s.Issuer(), "iat": iat, "exp": exp, "auth_time": iat,
		"sub": randomSub(u.Username), "upn": upn, "unique_name": "HOSPITAL\\" + u.Username,
		"sid": "S-1-5-21-1004336348-1177238915-682003330-1104", "apptype": "Confidential", "appid": g.clientID, "ver": "1.0",
	}
	if g.nonce != "" {
		id["nonce"] = g.nonce
	}
	if s.generic {
		id["iss"] = s.Issuer()
		id["preferred_username"] = upn
		id["name"] = strings.TrimSpace(u.GivenName + " " + u.FamilyName)
		id["given_name"], id["family_name"], id["email"] = u.GivenName, u.FamilyName, u.Email
		if len(u.Groups) > 0 {
			id["groups"] = append([]string(nil), u.Groups...)
		}
		access = map[string]any{"aud": "https://graph.example", "iss": s.Issuer(), "iat": iat, "exp": exp}
	}
	for _, c := range u.Omit {
		delete(access, c)
		delete(id, c)
	}
	if s.hook != nil {
		s.hook(access, id)
	}
	k := s.keys[0]
	header := map[string]any{"typ": "JWT", "alg": "RS256", "x5t": k.kid}
	if !s.legacy {
		header["kid"] = k.kid
	}
	resp := map[string]any{
		"access_token": SignRS256(k.priv, header, access), "token_type": "bearer",
		"expires_in": int(s.lifetime / time.Second), "resource": resource,
		"scope": g.scope,
	}
	rt := randomString(64)
	s.refresh[rt] = g
	resp["refresh_token"] = rt
	resp["refresh_token_expires_in"] = 28800
	if !s.legacy && hasScope(g.scope, "openid") {
		resp["id_token"] = SignRS256(k.priv, header, id)
	}
	return resp
}

func hasScope(scope, want string) bool {
	for _, s := range strings.Fields(scope) {
		if s == want {
			return true
		}
	}
	return false
}

func randomSub(user string) string {
	sum := sha256.Sum256([]byte("sub:" + user))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// SignRS256 makes a compact JWS with RS256 over the given header and claims.
func SignRS256(priv *rsa.PrivateKey, header, claims map[string]any) string {
	h := map[string]any{}
	for k, v := range header {
		h[k] = v
	}
	h["alg"] = "RS256"
	in := encodePart(h) + "." + encodePart(claims)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, sum[:])
	if err != nil {
		panic(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func encodePart(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// EncodePart is the base64url JSON of one JWT part, for tests that craft
// malformed tokens (alg none, HMAC).
func EncodePart(v any) string { return encodePart(v) }
