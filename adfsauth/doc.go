// Package adfsauth signs people in through AD FS or any OpenID Connect
// provider (Entra ID included) with the authorization code flow, state,
// nonce and PKCE, and turns the verified token into a groups.Identity.
//
// It is a plain library: it imports neither Caddy nor a logger, contacts
// the provider only when a sign-in needs it (a down AD FS never stops the
// program that embeds it from starting), and returns typed errors
// (*ClaimError, *AudienceError, *IssuerError, *ProviderError, *TimeError,
// *NonceError, *SignatureError, and ErrUnavailable wrapped) that say what an
// administrator should fix.
//
// Two modes:
//
//   - Server (AD FS 2016/2019, and 2012 R2 through its federation
//     metadata): discovery at https://<server>/adfs/.well-known/openid-configuration;
//     the claims are read from the access token, whose issuer is the
//     discovery document's access_token_issuer
//     (http://<server>/adfs/services/trust) and whose audience is
//     microsoft:identityserver:<relying party id>. The ID token, when there
//     is one, is verified too, for its nonce.
//   - Issuer (any OpenID Connect provider): the claims are read from the ID
//     token, whose audience is the client id.
//
// Usage:
//
//	c, err := adfsauth.New(adfsauth.Config{
//		Server:         "adfs.hospital.example",
//		ClientID:       "qatrackplus",
//		RelyingPartyID: "qatrackplus",
//	})
//	// start: keep state, nonce and verifier (e.g. in a sealed cookie)
//	verifier := oauth2.GenerateVerifier()
//	url, err := c.AuthCodeURL(ctx, redirectURL, state, nonce, verifier)
//	// callback: after checking state
//	res, err := c.Exchange(ctx, redirectURL, code, verifier, nonce)
//	// res.Identity.ID is "alice" for HOSPITAL\alice
//
// Keys are fetched from the provider's JWKS (or the federation metadata's
// signing certificates) and fetched again when a token names an unknown key
// id, at most once per KeyRefetchInterval (10 s), so a flood of forged
// tokens cannot turn into a flood of requests to AD FS.
package adfsauth
