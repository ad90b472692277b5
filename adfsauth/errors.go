package adfsauth

import (
	"errors"
	"fmt"
	"time"
)

// ErrUnavailable is wrapped by every error that means the identity provider
// could not be reached or answered nonsense (discovery, keys, token
// endpoint): the sign-in may work in a minute, and the user should be told
// so rather than that they were refused.
var ErrUnavailable = errors.New("identity provider unavailable")

// ClaimError reports a token without the claim the configuration needs.
type ClaimError struct {
	Claim string // the claim that was looked for
	Have  []string
}

func (e *ClaimError) Error() string {
	return fmt.Sprintf("token has no %q claim (it carries: %v); add an issuance rule for it on the relying party or set username_claim", e.Claim, e.Have)
}

// AudienceError reports a token issued for another relying party.
type AudienceError struct {
	Want string
	Got  []string
}

func (e *AudienceError) Error() string {
	return fmt.Sprintf("token audience is %q, want %q: check relying_party_id / audience against the relying party's identifier", e.Got, e.Want)
}

// IssuerError reports a token from another issuer than the configured one.
type IssuerError struct {
	Want, Got string
}

func (e *IssuerError) Error() string {
	return fmt.Sprintf("token issuer is %q, want %q", e.Got, e.Want)
}

// ProviderError is an OAuth error the provider answered with: on the
// callback (error=access_denied when the user is not permitted by the
// relying party's access control policy) or from the token endpoint
// (invalid_grant for a code used twice or expired).
type ProviderError struct {
	Code        string
	Description string
}

func (e *ProviderError) Error() string {
	if e.Description == "" {
		return "identity provider refused the sign-in: " + e.Code
	}
	return fmt.Sprintf("identity provider refused the sign-in: %s: %s", e.Code, e.Description)
}

// TimeError reports a token outside its validity window, even allowing for
// the configured leeway: usually a clock difference between this server and
// the provider.
type TimeError struct {
	Claim  string    // exp, nbf or iat
	At     time.Time // the claim's time
	Now    time.Time // this server's clock
	Leeway time.Duration
}

func (e *TimeError) Error() string {
	if e.Claim == "exp" {
		return fmt.Sprintf("token expired at %s; this server's clock says %s (leeway %s): check the clocks (NTP) of this server and the identity provider, or raise leeway",
			e.At.UTC().Format(time.RFC3339), e.Now.UTC().Format(time.RFC3339), e.Leeway)
	}
	return fmt.Sprintf("token not valid until %s (%s); this server's clock says %s (leeway %s): check the clocks (NTP) of this server and the identity provider, or raise leeway",
		e.At.UTC().Format(time.RFC3339), e.Claim, e.Now.UTC().Format(time.RFC3339), e.Leeway)
}

// Expired reports whether the token was too old rather than too new.
func (e *TimeError) Expired() bool { return e.Claim == "exp" }

// NonceError reports an ID token whose nonce is not the one this sign-in
// sent: a token replayed from another sign-in.
type NonceError struct{}

func (e *NonceError) Error() string { return "ID token nonce does not match this sign-in" }

// SignatureError reports a token whose signature does not verify under the
// provider's keys, or uses an algorithm that is not accepted.
type SignatureError struct{ Err error }

func (e *SignatureError) Error() string { return "token signature: " + e.Err.Error() }
func (e *SignatureError) Unwrap() error { return e.Err }
