package adfsauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"golang.org/x/oauth2"

	"github.com/caddy-adauth/adauth/adfsauth"
)

// Example shows one sign-in: AuthCodeURL at the start, Exchange at the
// callback. The caller keeps state, nonce and verifier between the two (in
// a sealed, short-lived cookie) and checks state before Exchange.
func Example() {
	c, err := adfsauth.New(adfsauth.Config{
		Server:         "adfs.hospital.example",
		ClientID:       "qatrackplus",
		RelyingPartyID: "qatrackplus",
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	redirect := "https://qa.hospital.example/adauth/callback"
	state, nonce, verifier := "random-state", "random-nonce", oauth2.GenerateVerifier()

	authURL, err := c.AuthCodeURL(ctx, redirect, state, nonce, verifier)
	if errors.Is(err, adfsauth.ErrUnavailable) {
		fmt.Println("AD FS unreachable: show a 503 page")
		return
	}
	_ = authURL // redirect the browser here

	// ... the browser comes back to redirect?code=...&state=...
	callback, _ := url.Parse(redirect + "?code=xyz&state=random-state")
	if err := adfsauth.CallbackError(callback.Query()); err != nil {
		fmt.Println(err) // e.g. access_denied
		return
	}
	res, err := c.Exchange(ctx, redirect, callback.Query().Get("code"), verifier, nonce)
	var ce *adfsauth.ClaimError
	switch {
	case errors.As(err, &ce):
		fmt.Println("fix the relying party's claim rules:", ce.Claim)
	case err == nil:
		fmt.Println(res.Identity.ID)
	}
}
