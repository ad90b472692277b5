package ldapauth_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddy-adauth/adauth/ldapauth"
)

func Example() {
	b, err := ldapauth.New(ldapauth.Config{
		URLs:         []string{"ldaps://dc1.hospital.example", "ldaps://dc2.hospital.example"},
		CAFile:       "", // the system roots; usually /etc/caddy/ad-ca.pem
		Domain:       "HOSPITAL",
		UPNSuffix:    "hospital.example",
		BaseDN:       "DC=hospital,DC=example",
		BindDN:       "CN=svc-qa,OU=Service,DC=hospital,DC=example",
		BindPassword: "from a secret store",
		Timeout:      5 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	// New contacted nobody; a DC is only asked at the first sign-in. An
	// empty password is refused before any traffic.
	_, ok, err := b.Authenticate(context.Background(), `HOSPITAL\alice`, "")
	fmt.Println(ok, err)

	// What a sign-in error tells.
	var ae *ldapauth.AccountError
	err = &ldapauth.AccountError{Code: "773", State: ldapauth.StateMustChange}
	if errors.As(err, &ae) {
		fmt.Println(ae.Code, ae.State)
	}
	// Output:
	// false <nil>
	// 773 password must be changed
}
