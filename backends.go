package adauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/caddy-adauth/adauth/groups"
)

// passwordChecker is what a password backend (local, ldap) offers: the
// caddyauth contract. ok=false with a nil error is a bad username or
// password; an error is a technical failure, or an account-state refusal
// that carries a message for the user (see userMessenger).
type passwordChecker interface {
	Authenticate(ctx context.Context, username, password string) (groups.Identity, bool, error)
}

// userMessenger is an error a backend wants the user to read: the account
// is disabled, the password has expired, and so on.
type userMessenger interface {
	error
	UserMessage() string
}

// passwordBackend is a configured password backend with its limit.
type passwordBackend struct {
	name      string // "local" or "ldap": the backend placeholder and log field
	impl      passwordChecker
	directory bool // groups are directory groups, mapped by the groups rules
	lookups   bool // impl can look accounts up again (recheck): a service account is configured
	// sem bounds concurrent checks: argon2id takes tens of MiB per hash and
	// a DC has a connection budget, so a flood of sign-ins must queue here
	// rather than exhaust either.
	sem chan struct{}
}

func (b *passwordBackend) authenticate(ctx context.Context, username, password string) (id groups.Identity, ok bool, err error) {
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return groups.Identity{}, false, fmt.Errorf("%s: waiting for a free slot: %w", b.name, ctx.Err())
	}
	defer func() { <-b.sem }()
	// A bug in a backend must cost one failed sign-in, never the server
	// nor a pass: the panic becomes a technical failure (the next backend
	// is tried, the user sees "unavailable", the log has the cause).
	defer func() {
		if p := recover(); p != nil {
			id, ok, err = groups.Identity{}, false, fmt.Errorf("%s: %w: %v", b.name, errBackendPanic, p)
		}
	}()
	return b.impl.Authenticate(ctx, username, password)
}

var errBackendPanic = errors.New("backend panicked")

// Limits on what a sign-in form or Basic header may carry. Anything larger
// is refused before a backend sees it.
const (
	maxUsernameBytes = 256
	maxPasswordBytes = 1024
)

// outcome is the result of one sign-in attempt.
type outcome int

const (
	outcomeOK          outcome = iota
	outcomeBad                 // bad username or password: the one generic message
	outcomeRefused             // right password, but the account may not sign in now
	outcomeUnavailable         // no backend could answer
	outcomeThrottled           // too many failures: no backend was asked
)

func (o outcome) String() string {
	return [...]string{"success", "bad_credentials", "refused", "unavailable", "throttled"}[o]
}

// signInResult carries what the login page and the log need.
type signInResult struct {
	outcome outcome
	session *session
	backend string
	message string        // for outcomeRefused: what the user reads
	reason  string        // for the log: never a secret
	wait    time.Duration // for outcomeThrottled: until the next attempt
}

// backendDeadline bounds one backend's answer to one sign-in, whatever its
// own timeouts: a hung DC must never hang the request with it.
const backendDeadline = 20 * time.Second

var errBadInput = errors.New("username or password malformed")

// checkCredentials refuses input no backend should see: empty values (a
// Windows DC takes a name with an empty password as an anonymous bind that
// "succeeds"), oversized values, NUL and control characters in the name,
// and invalid UTF-8.
func checkCredentials(username, password string) error {
	switch {
	case username == "" || password == "":
		return errBadInput
	case len(username) > maxUsernameBytes || len(password) > maxPasswordBytes:
		return errBadInput
	case !utf8.ValidString(username) || !utf8.ValidString(password):
		return errBadInput
	case strings.IndexFunc(username, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return errBadInput
	case strings.IndexByte(password, 0) >= 0:
		return errBadInput
	}
	return nil
}

// signIn tries the password backends in order (local first, as QATrack+
// lists ModelBackend before its AD backend). A technical failure in one does
// not stop the next; the first that accepts wins; a refusal with a message
// stops the search, since the password was right for that account.
func (h *Handler) signIn(ctx context.Context, username, password, ip string) signInResult {
	if len(username) > maxUsernameBytes { // as sent, before trimming
		return signInResult{outcome: outcomeBad, reason: errBadInput.Error()}
	}
	username = strings.TrimSpace(username)
	if err := checkCredentials(username, password); err != nil {
		return signInResult{outcome: outcomeBad, reason: err.Error()}
	}
	// The throttle keys on the name as the directory will read it, so
	// "ALICE" and "hospital\alice" count against the same account.
	key := throttleKey(username)
	// Attempts beyond what the limits still allow wait here for those in
	// flight to end: if they fail, the limit is reached and these are
	// refused without ever reaching the directory.
	var changed <-chan struct{}
	for {
		wait, busy := h.throttle.admit(key, ip, h.now())
		if wait > 0 {
			return signInResult{outcome: outcomeThrottled, wait: wait, reason: "too many failed sign-ins"}
		}
		if !busy {
			break
		}
		if changed != nil {
			select {
			case <-changed:
			case <-ctx.Done():
				return signInResult{outcome: outcomeThrottled, wait: time.Second,
					reason: "gave up waiting for other sign-ins of this user or address"}
			}
		}
		changed = h.throttle.changed()
	}
	var res signInResult
	// Deferred, so that the attempt is released even on a panic.
	defer func() { h.throttle.done(key, ip, res.outcome == outcomeBad, h.now()) }()
	res = h.tryBackends(ctx, username, password)
	if res.outcome == outcomeOK {
		h.throttle.succeeded(key)
		if res.session != nil && res.session.ID != key {
			h.throttle.succeeded(res.session.ID)
		}
	}
	return res
}

// throttleKey folds the forms a user may type for one account (ALICE,
// HOSPITAL\alice, alice@hospital.example) to one key.
func throttleKey(username string) string {
	u := strings.ToLower(username)
	if i := strings.LastIndexByte(u, '\\'); i >= 0 {
		u = u[i+1:]
	}
	if i := strings.IndexByte(u, '@'); i > 0 {
		u = u[:i]
	}
	return u
}

// tryBackends asks each password backend in turn.
func (h *Handler) tryBackends(ctx context.Context, username, password string) signInResult {
	var failures []string
	for _, b := range h.passwords {
		start := time.Now()
		bctx, cancel := context.WithTimeout(ctx, backendDeadline)
		id, ok, err := b.authenticate(bctx, username, password)
		cancel()
		h.observeBackend(b.name, "authenticate", time.Since(start))
		var um userMessenger
		switch {
		case ok:
			ss, res := h.newSession(b.name, b.directory, id)
			if res != nil {
				return *res
			}
			return signInResult{outcome: outcomeOK, session: ss, backend: b.name}
		case errors.As(err, &um):
			return signInResult{outcome: outcomeRefused, backend: b.name, message: um.UserMessage(), reason: err.Error()}
		case err != nil:
			failures = append(failures, b.name+": "+err.Error())
			h.logger.Warn("sign-in backend failed; trying the next", zap.String("backend", b.name), zap.Error(err))
		}
	}
	if len(failures) > 0 {
		return signInResult{outcome: outcomeUnavailable, reason: strings.Join(failures, "; ")}
	}
	return signInResult{outcome: outcomeBad, reason: "no backend accepted the credentials"}
}

// newSession applies the group rules to a backend's identity. A refusal
// (not in a qualifying group, too many groups for a cookie) comes back as a
// result to show instead.
func (h *Handler) newSession(backend string, directory bool, id groups.Identity) (*session, *signInResult) {
	var apps []string
	if directory {
		var err error
		apps, err = h.mapper.Directory(id.Groups)
		var um userMessenger
		if errors.As(err, &um) {
			return nil, &signInResult{outcome: outcomeRefused, backend: backend, message: um.UserMessage(),
				reason: fmt.Sprintf("%v (directory groups: %s)", err, strings.Join(groups.Names(id.Groups), ", "))}
		}
		if err != nil {
			return nil, &signInResult{outcome: outcomeUnavailable, backend: backend, reason: err.Error()}
		}
	} else {
		apps = h.mapper.Local(groups.Names(id.Groups))
	}
	// The username becomes X-Remote-User: one the sign-in form would refuse
	// (a control character, say) is refused, never cleaned up, since a
	// cleaned "ali\x01ce" would reach the application as alice.
	if err := checkUsername(id.ID); err != nil {
		return nil, &signInResult{outcome: outcomeRefused, backend: backend,
			message: "This account's username cannot be used here. Please call IT.",
			reason:  fmt.Sprintf("the directory's username %q: %v", id.ID, err)}
	}
	now := h.now().Unix()
	ss := &session{
		ID:         strings.ToLower(id.ID),
		Email:      dropControl(id.Email),
		Name:       dropControl(id.Name),
		GivenName:  dropControl(id.GivenName),
		FamilyName: dropControl(id.FamilyName),
		Backend:    backend,
		DN:         id.DN,
		Groups:     apps,
		Issued:     now,
		Seen:       now,
		Checked:    now,
	}
	if ss.Name == "" {
		ss.Name = strings.TrimSpace(ss.GivenName + " " + ss.FamilyName)
	}
	return ss, nil
}

// checkUsername refuses names the sign-in form would refuse or alter.
func checkUsername(name string) error {
	switch {
	case name == "":
		return errors.New("empty username")
	case len(name) > maxUsernameBytes:
		return fmt.Errorf("username longer than %d bytes", maxUsernameBytes)
	case !utf8.ValidString(name):
		return errors.New("username is not valid UTF-8")
	case strings.TrimSpace(name) != name:
		return errors.New("username has leading or trailing spaces")
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errors.New("username has control characters")
	}
	return nil
}
