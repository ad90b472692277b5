package adauth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/caddy-adauth/adauth/adfsauth"
	"github.com/caddy-adauth/adauth/groups"
)

// ADFSConfig configures AD FS / OpenID Connect single sign-on with the
// authorization code flow, state, nonce and PKCE. The redirect URI to
// register with the provider is https://<site>/<path_prefix>/callback for
// every name the site is reached by: adauth derives it from each request's
// Host (https when the request came over TLS).
type ADFSConfig struct {
	// AD FS host name (and port, if not 443). Discovery is read from
	// https://<server>/adfs/.well-known/openid-configuration (or, on AD FS
	// 2012 R2, the federation metadata) at the first sign-in, not at start,
	// and the claims come from the access token. Exclusive with issuer.
	Server string `json:"server,omitempty"`

	// Issuer URL of any other OpenID Connect provider (Entra ID:
	// https://login.microsoftonline.com/<tenant>/v2.0). The claims come
	// from the ID token. Exclusive with server.
	Issuer string `json:"issuer,omitempty"`

	// Client identifier registered with the provider.
	ClientID string `json:"client_id"`

	// Client secret; omit for a public client. Accepts {env.*} and
	// {file.*} placeholders.
	ClientSecret string `json:"client_secret,omitempty"`

	// AD FS relying party identifier, sent as `resource` on the authorize
	// request.
	RelyingPartyID string `json:"relying_party_id,omitempty"`

	// Audience the token must carry. Default for AD FS:
	// microsoft:identityserver:<relying_party_id>; otherwise the client id.
	Audience string `json:"audience,omitempty"`

	// PEM file of the CA(s) that issued the provider's certificate. Without
	// it, the system roots are used.
	CAFile string `json:"ca_file,omitempty"`

	// Claims tried in order for the username; a DOMAIN\ prefix and an
	// @suffix are removed and the result lower-cased. Default:
	// winaccountname (AD FS), preferred_username (other providers).
	UsernameClaim []string `json:"username_claim,omitempty"`

	// Claim with the user's groups (a string for one group, an array for
	// several). Default: group (AD FS), groups (other providers).
	GroupsClaim string `json:"groups_claim,omitempty"`

	// Identity fields (email, name, given_name, family_name) read from
	// claims of another name. Default: the field's own name.
	Claims map[string]string `json:"claim,omitempty"`

	// Allowed clock difference on token times. Default: 2m
	Leeway caddy.Duration `json:"leeway,omitempty"`

	// Label of the sign-in button on the login page. Default: Sign in with
	// your hospital account
	Button string `json:"button,omitempty"`

	// Send browsers that need to sign in straight to the provider instead
	// of the login page. The login page stays reachable at
	// <path_prefix>/login, so local (break-glass) accounts can still sign in.
	AutoRedirect bool `json:"auto_redirect,omitempty"`

	// Signing out of adauth also ends the provider's session (its
	// end_session_endpoint, or /adfs/ls/?wa=wsignout1.0 on AD FS 2012 R2),
	// which returns to the login page.
	SingleLogout bool `json:"single_logout,omitempty"`

	// Scopes requested. Default: openid profile email (openid is always
	// included).
	Scopes []string `json:"scopes,omitempty"`

	retryAfter time.Duration // tests: back-off after a failed discovery
}

const (
	defaultSSOLabel = "Sign in with your hospital account"
	// flowLifetime bounds a sign-in at the provider: state, nonce and PKCE
	// verifier expire with the flow cookie.
	flowLifetime = 10 * time.Minute
)

// ssoBackend is the configured single sign-on.
type ssoBackend struct {
	client       *adfsauth.Client
	label        string
	autoRedirect bool
	singleLogout bool
}

// newClient builds the adfsauth client. It reads the CA file but contacts
// no provider.
func (c *ADFSConfig) newClient(repl *caddy.Replacer) (*adfsauth.Client, error) {
	secret, err := repl.ReplaceOrErr(c.ClientSecret, true, true)
	if err != nil {
		return nil, fmt.Errorf("client_secret: %w", err)
	}
	cfg := adfsauth.Config{
		Server:         repl.ReplaceKnown(c.Server, ""),
		Issuer:         repl.ReplaceKnown(c.Issuer, ""),
		ClientID:       repl.ReplaceKnown(c.ClientID, ""),
		ClientSecret:   secret,
		RelyingPartyID: repl.ReplaceKnown(c.RelyingPartyID, ""),
		Audience:       repl.ReplaceKnown(c.Audience, ""),
		Scopes:         c.Scopes,
		UsernameClaims: c.UsernameClaim,
		GroupsClaim:    c.GroupsClaim,
		Claims:         c.Claims,
		Leeway:         time.Duration(c.Leeway),
		RetryAfter:     c.retryAfter,
	}
	if c.CAFile != "" {
		path := repl.ReplaceKnown(c.CAFile, "")
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", path)
		}
		cfg.RootCAs = pool
	}
	return adfsauth.New(cfg)
}

func (c *ADFSConfig) provision(_ caddy.Context, repl *caddy.Replacer, _ endpoints) (*ssoBackend, error) {
	client, err := c.newClient(repl)
	if err != nil {
		return nil, err
	}
	b := &ssoBackend{client: client, label: c.Button, autoRedirect: c.AutoRedirect, singleLogout: c.SingleLogout}
	if b.label == "" {
		b.label = defaultSSOLabel
	}
	return b, nil
}

// flowState is what the sealed flow cookie carries between /adfs and
// /callback. Binding it to the browser's cookie, not a server table, means
// any Caddy instance can finish a sign-in another started, and a state
// from one browser is useless in another.
type flowState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"r"`
	Redirect string `json:"u"`
	Issued   int64  `json:"t"`
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// callbackURL is the redirect URI for this request: the request's own host,
// so a site reached by several names returns to the name it was used by.
func (h *Handler) callbackURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + h.endpoints.callback
}

// ssoStartURL is the local URL that starts a sign-in at the provider.
func (h *Handler) ssoStartURL(next string) string {
	return h.endpoints.adfs + "?next=" + url.QueryEscape(safeNext(next))
}

func (h *Handler) serveSSO(ep endpoint, w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.pages.message(w, r, http.StatusMethodNotAllowed, "Method not allowed", "Open this address in your browser.")
		return nil
	}
	if ep == epADFS {
		h.startSSO(w, r)
	} else {
		h.finishSSO(w, r)
	}
	return nil
}

// startSSO sends the browser to the provider's authorize endpoint.
func (h *Handler) startSSO(w http.ResponseWriter, r *http.Request) {
	fs := flowState{
		State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier(),
		Next: safeNext(r.URL.Query().Get("next")), Redirect: h.callbackURL(r), Issued: h.now().Unix(),
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	authURL, err := h.sso.client.AuthCodeURL(ctx, fs.Redirect, fs.State, fs.Nonce, fs.Verifier)
	if err != nil {
		h.logSSO(r, "", signInResult{outcome: outcomeUnavailable, reason: "starting sign-in: " + err.Error()})
		h.pages.message(w, r, http.StatusServiceUnavailable, "Sign-in service unavailable",
			"The hospital sign-in service (AD FS) could not be reached. Please try again in a minute; if it keeps happening, call IT.")
		return
	}
	plain, _ := json.Marshal(fs)
	name, purpose := flowCookie(r)
	setCookie(w, r, name, h.sealer.seal(plain, purpose), flowLifetime)
	http.Redirect(w, r, authURL, http.StatusFound)
}

// readFlow opens the flow cookie and clears it: a flow is single use.
func (h *Handler) readFlow(w http.ResponseWriter, r *http.Request) (*flowState, string) {
	name, purpose := flowCookie(r)
	v, n := cookieValue(r.Header, name)
	if n == 0 {
		return nil, "no flow cookie (sign-in started in another browser, cookies blocked, or already finished)"
	}
	setCookie(w, r, name, "", -1)
	p, err := h.sealer.open(v, purpose)
	if err != nil {
		return nil, "flow cookie: " + err.Error()
	}
	var fs flowState
	if err := json.Unmarshal(p, &fs); err != nil || fs.State == "" {
		return nil, "flow cookie is malformed"
	}
	age := h.now().Unix() - fs.Issued
	if age < -60 || age > int64(flowLifetime/time.Second) {
		return nil, "flow cookie expired"
	}
	return &fs, ""
}

// finishSSO is the redirect URI: it checks state, redeems the code,
// verifies the tokens, maps groups and sets the session.
func (h *Handler) finishSSO(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fs, why := h.readFlow(w, r)
	restart := "Please go back to the sign-in page and start again."
	if perr := adfsauth.CallbackError(q); perr != nil {
		var pe *adfsauth.ProviderError
		errors.As(perr, &pe)
		h.logSSO(r, "", signInResult{outcome: outcomeRefused, reason: perr.Error()})
		if pe.Code == "access_denied" {
			h.pages.message(w, r, http.StatusForbidden, "Sign-in refused",
				"The hospital sign-in service refused access to this application for your account. If you need access, call IT.")
			return
		}
		h.pages.message(w, r, http.StatusBadRequest, "Sign-in failed",
			"The hospital sign-in service reported an error ("+pe.Code+"). "+restart)
		return
	}
	if fs == nil {
		h.logSSO(r, "", signInResult{outcome: outcomeBad, reason: why})
		h.pages.message(w, r, http.StatusBadRequest, "Sign-in expired",
			"This sign-in was not started in this browser, or it took too long. "+restart)
		return
	}
	state := q.Get("state")
	if subtle.ConstantTimeCompare([]byte(state), []byte(fs.State)) != 1 {
		h.logSSO(r, "", signInResult{outcome: outcomeBad, reason: "state does not match the flow cookie"})
		h.pages.message(w, r, http.StatusBadRequest, "Sign-in expired",
			"This sign-in does not match the one started in this browser. "+restart)
		return
	}
	code := q.Get("code")
	if code == "" {
		h.logSSO(r, "", signInResult{outcome: outcomeBad, reason: "callback without code"})
		h.pages.message(w, r, http.StatusBadRequest, "Sign-in failed", "The sign-in service sent no authorization code. "+restart)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	start := time.Now()
	res, err := h.sso.client.Exchange(ctx, fs.Redirect, code, fs.Verifier, fs.Nonce)
	h.observeBackend("adfs", "authenticate", time.Since(start))
	if err != nil {
		h.ssoFailure(w, r, err, restart)
		return
	}
	ss, refused := h.newSession("adfs", true, res.Identity)
	if refused != nil {
		h.logSSO(r, res.Identity.ID, *refused)
		status := http.StatusForbidden
		msg := refused.message
		if refused.outcome != outcomeRefused {
			status, msg = http.StatusServiceUnavailable, "Your groups could not be mapped. Please call IT."
		}
		h.pages.message(w, r, status, "Sign-in refused", msg)
		return
	}
	// The refresh token lets a later re-check ask AD FS about the account;
	// when it would not fit in the cookie, the session goes without it.
	ss.Refresh = res.RefreshToken
	err = h.writeSession(w, r, ss)
	if err != nil && ss.Refresh != "" {
		ss.Refresh = ""
		err = h.writeSession(w, r, ss)
	}
	if err != nil {
		h.logSSO(r, res.Identity.ID, signInResult{outcome: outcomeRefused, reason: err.Error()})
		h.pages.message(w, r, http.StatusForbidden, "Sign-in refused",
			"Your account is in too many groups to fit in a session. Ask IT to map fewer directory groups for this service.")
		return
	}
	h.logSSO(r, res.Identity.ID, signInResult{outcome: outcomeOK, session: ss})
	http.Redirect(w, r, safeNext(fs.Next), http.StatusSeeOther)
}

// ssoFailure answers a failed code exchange or token check: never a 500,
// and the administrator's reason goes to the log, not the page.
func (h *Handler) ssoFailure(w http.ResponseWriter, r *http.Request, err error, restart string) {
	var (
		pe *adfsauth.ProviderError
		te *adfsauth.TimeError
		ce *adfsauth.ClaimError
	)
	outcome, status, title, msg := outcomeRefused, http.StatusForbidden, "Sign-in failed",
		"The answer of the sign-in service could not be verified. Please call IT."
	switch {
	case errors.Is(err, adfsauth.ErrUnavailable):
		outcome, status, title, msg = outcomeUnavailable, http.StatusServiceUnavailable, "Sign-in service unavailable",
			"The hospital sign-in service (AD FS) could not be reached to finish your sign-in. Please try again in a minute; if it keeps happening, call IT."
	case errors.As(err, &pe):
		outcome, status, msg = outcomeBad, http.StatusBadRequest,
			"The sign-in could not be completed: it was already used or has expired. "+restart
	case errors.As(err, &te):
		msg = "The sign-in could not be accepted because the clocks of this server and the sign-in service differ. Please call IT."
	case errors.As(err, &ce):
		msg = "The sign-in service did not say who you are (a claim is missing from its token). Please call IT: the relying party's claim rules need fixing."
	}
	h.logSSO(r, "", signInResult{outcome: outcome, reason: err.Error()})
	h.pages.message(w, r, status, title, msg)
}

func (h *Handler) logSSO(r *http.Request, user string, res signInResult) {
	res.backend = "adfs"
	h.logSignIn(r, "adfs", user, clientIP(r), res)
}

// ssoLogoutURL is where the logout POST sends a user who signed in through
// AD FS when single_logout is on: the provider's sign-out, returning to the
// login page. The ID token is not kept (it does not fit in the session
// cookie), so no id_token_hint is sent; the client id identifies the
// relying party.
func (h *Handler) ssoLogoutURL(r *http.Request, ss *session) (string, bool) {
	if h.sso == nil || !h.sso.singleLogout || ss == nil || ss.Backend != "adfs" {
		return "", false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	back := scheme + "://" + r.Host + h.endpoints.login + "?signed_out=1"
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	u, ok := h.sso.client.EndSessionURL(ctx, "", back)
	if !ok {
		h.logger.Warn("single logout: the provider has no sign-out endpoint or could not be reached; signed out locally only", zap.String("user", ss.ID))
	}
	return u, ok
}

// ssoEndedError is a re-check refusal from the provider (the refresh token
// was revoked: account disabled, password reset, removed from the relying
// party's access policy). It carries a message for the login page.
type ssoEndedError struct{ err error }

func (e *ssoEndedError) Error() string { return "adfs refused the refresh token: " + e.err.Error() }
func (e *ssoEndedError) Unwrap() error { return e.err }
func (e *ssoEndedError) UserMessage() string {
	return "Your hospital sign-in has ended. Please sign in again."
}

// lookupAccount is the AD FS side of the periodic re-check (recheck.go):
// it redeems the session's refresh token and returns the account as the
// provider sees it now, with the (possibly rotated) refresh token. A
// provider that refuses the token ends the session; one that cannot be
// reached leaves it running. Sessions without a refresh token (the
// provider gave none, or it did not fit in the cookie) are never due.
func (b *ssoBackend) lookupAccount(ctx context.Context, ss *session) (groups.Identity, string, error) {
	if ss.Refresh == "" {
		return groups.Identity{}, "", errors.New("session has no refresh token")
	}
	res, err := b.client.Refresh(ctx, ss.Refresh)
	var pe *adfsauth.ProviderError
	switch {
	case errors.As(err, &pe):
		return groups.Identity{}, "", &ssoEndedError{err}
	case err != nil:
		return groups.Identity{}, "", err
	}
	return res.Identity, res.RefreshToken, nil
}

// Interface guards
var _ userMessenger = (*ssoEndedError)(nil)
