package ldapauth

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Sentinels, matched with errors.Is.
var (
	// ErrUnavailable is wrapped by every error that means no directory
	// server could answer (all down, timed out, TLS failed): a sign-in is
	// "try again later", an existing session continues.
	ErrUnavailable = errors.New("directory unavailable")

	// ErrAccountGone: Lookup found no entry for the DN any more.
	ErrAccountGone = errors.New("account no longer in the directory")

	// ErrAccountDisabled: the account is disabled, locked out or expired.
	ErrAccountDisabled = errors.New("account disabled, locked or expired")

	// ErrNoServiceAccount: Lookup needs BindDN.
	ErrNoServiceAccount = errors.New("lookup needs a service account (bind_dn)")

	// ErrStrongerAuth: the DC refuses simple binds without TLS or
	// signing (LDAP result 8).
	ErrStrongerAuth = errors.New("the DC requires signing/TLS: use ldaps:// or starttls")
)

// AccountState is why a directory refused an account whose password was
// right (or, for Lookup, why a signed-in account is no longer valid).
type AccountState int

// Account states.
const (
	StateDisabled        AccountState = iota + 1 // AD 533, userAccountControl 0x2
	StateMustChange                              // AD 773, ppolicy changeAfterReset
	StatePasswordExpired                         // AD 532, ppolicy passwordExpired
	StateAccountExpired                          // AD 701, accountExpires
	StateLockedOut                               // AD 775, ppolicy accountLocked
	StateLogonHours                              // AD 530
	StateWorkstation                             // AD 531
	StateGone                                    // Lookup: no such entry
)

var stateNames = map[AccountState]string{
	StateDisabled:        "account disabled",
	StateMustChange:      "password must be changed",
	StatePasswordExpired: "password expired",
	StateAccountExpired:  "account expired",
	StateLockedOut:       "account locked out",
	StateLogonHours:      "not permitted to sign in at this time",
	StateWorkstation:     "not permitted to sign in from this workstation",
	StateGone:            "account no longer in the directory",
}

func (s AccountState) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("state %d", int(s))
}

// AccountError is an account the directory will not let sign in, with a
// message for the person at the keyboard. It matches ErrAccountDisabled
// (disabled, locked, expired) or ErrAccountGone with errors.Is.
type AccountError struct {
	// Code is the AD sub-code ("533", "773", ...), "ppolicy" for an
	// OpenLDAP password-policy control, or the attribute that showed the
	// state in Lookup ("userAccountControl", "accountExpires", ...).
	Code string
	// State is what the code means.
	State AccountState
	// User is the account (DN or name), for logs.
	User string
}

func (e *AccountError) Error() string {
	if e.User != "" {
		return fmt.Sprintf("ldap: %s: %s (%s)", e.User, e.State, e.Code)
	}
	return fmt.Sprintf("ldap: %s (%s)", e.State, e.Code)
}

// UserMessage says what happened and what to do, for the sign-in page.
func (e *AccountError) UserMessage() string {
	switch e.State {
	case StateDisabled:
		return "Your account is disabled, so you cannot sign in. Please contact the IT service desk."
	case StateMustChange:
		return "Your password must be changed before you can sign in. Please change it at a hospital PC (Ctrl+Alt+Del, Change a password) or on the password portal, then sign in here with the new password."
	case StatePasswordExpired:
		return "Your password has expired. Please change it at a hospital PC (Ctrl+Alt+Del, Change a password) or on the password portal, then sign in here with the new password."
	case StateAccountExpired:
		return "Your account has expired. Please ask your manager or the IT service desk to extend it."
	case StateLockedOut:
		return "Your account is locked after too many failed sign-ins. Wait for it to unlock (usually within 30 minutes) or call the IT service desk to unlock it."
	case StateLogonHours:
		return "Your account is not permitted to sign in at this time of day. Please contact the IT service desk if you need access now."
	case StateWorkstation:
		return "Your account is not permitted to sign in from this computer. Please ask the IT service desk to allow this service for your account."
	case StateGone:
		return "Your account is no longer in the directory. Please sign in again, or contact the IT service desk."
	}
	return "Your account cannot sign in right now. Please contact the IT service desk."
}

// Unwrap lets errors.Is match ErrAccountGone or ErrAccountDisabled.
func (e *AccountError) Unwrap() error {
	switch e.State {
	case StateGone:
		return ErrAccountGone
	case StateDisabled, StateLockedOut, StateAccountExpired:
		return ErrAccountDisabled
	}
	return nil
}

// adData finds AD's sub-code in a bind diagnostic such as
// "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v4563".
var adData = regexp.MustCompile(`(?i)\bdata ([0-9a-f]{1,8})\b`)

// adSubCode returns the sub-code of an AD invalidCredentials result, or "".
func adSubCode(err error) string {
	var le *ldap.Error
	if !errors.As(err, &le) || le.Err == nil {
		return ""
	}
	m := adData.FindStringSubmatch(le.Err.Error())
	if m == nil {
		return ""
	}
	return strings.ToLower(m[1])
}

var adStates = map[string]AccountState{
	"530": StateLogonHours,
	"531": StateWorkstation,
	"532": StatePasswordExpired,
	"533": StateDisabled,
	"701": StateAccountExpired,
	"773": StateMustChange,
	"775": StateLockedOut,
}

// ppolicy error values (draft-behera-ldap-password-policy).
const (
	ppPasswordExpired  = 0
	ppAccountLocked    = 1
	ppChangeAfterReset = 2
)

// classifyBind classifies a user bind's result: nil (right password, account
// fine), errBadCredentials, an *AccountError, ErrStrongerAuth, or a
// technical error.
func classifyBind(err error, res *ldap.SimpleBindResult, user string) error {
	if pp := ppolicyControl(res); pp != nil {
		switch pp.Error {
		case ppPasswordExpired:
			return &AccountError{Code: "ppolicy", State: StatePasswordExpired, User: user}
		case ppAccountLocked:
			return &AccountError{Code: "ppolicy", State: StateLockedOut, User: user}
		case ppChangeAfterReset:
			return &AccountError{Code: "ppolicy", State: StateMustChange, User: user}
		}
	}
	if err == nil {
		return nil
	}
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials):
		code := adSubCode(err)
		if st, ok := adStates[code]; ok {
			return &AccountError{Code: code, State: st, User: user}
		}
		return errBadCredentials // 525, 52e, a plain 49
	case ldap.IsErrorWithCode(err, ldap.LDAPResultStrongAuthRequired),
		ldap.IsErrorWithCode(err, ldap.LDAPResultConfidentialityRequired):
		return fmt.Errorf("%w: %w", ErrStrongerAuth, err)
	case ldap.IsErrorAnyOf(err, ldap.LDAPResultInvalidDNSyntax, ldap.LDAPResultNoSuchObject,
		ldap.LDAPResultUnwillingToPerform, ldap.LDAPResultInappropriateAuthentication, ldap.ErrorEmptyPassword):
		// A name the DC cannot parse, or (OpenLDAP) an empty password.
		return errBadCredentials
	}
	return err
}

var errBadCredentials = errors.New("bad credentials")

func ppolicyControl(res *ldap.SimpleBindResult) *ldap.ControlBeheraPasswordPolicy {
	if res == nil {
		return nil
	}
	for _, c := range res.Controls {
		if pp, ok := c.(*ldap.ControlBeheraPasswordPolicy); ok {
			return pp
		}
	}
	return nil
}

// unavailable reports whether err means the server could not answer (so
// the next DC should be tried), as opposed to an answer.
func unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) {
		return true
	}
	var le *ldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case ldap.ErrorNetwork, ldap.LDAPResultBusy, ldap.LDAPResultUnavailable,
			ldap.LDAPResultServerDown, ldap.LDAPResultTimeout, ldap.LDAPResultConnectError:
			return true
		}
		return false
	}
	return true // not an LDAP answer: a network or TLS failure
}
