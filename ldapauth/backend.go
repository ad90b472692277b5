package ldapauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
	"golang.org/x/sync/singleflight"

	"github.com/caddy-adauth/adauth/groups"
)

// srvTTL is how long SRV answers are used before they are looked up again.
const srvTTL = 5 * time.Minute

// Backend checks passwords against one directory. It is safe for
// concurrent use; sign-ins run in parallel on pooled connections.
type Backend struct {
	s    *settings
	dial dialFunc
	now  func() time.Time

	static []*dc // from URLs

	srvMu   sync.Mutex
	srvList []*dc
	srvAt   time.Time
	known   map[string]*dc // every DC seen, by URL, so health memory survives re-resolution
	srvSF   singleflight.Group

	cache  *credCache
	closed atomic.Bool
}

// New validates cfg and returns a Backend. It does no network I/O.
func New(cfg Config) (*Backend, error) {
	s, err := validate(cfg)
	if err != nil {
		return nil, err
	}
	b := &Backend{s: s, now: time.Now, known: map[string]*dc{}}
	b.dial = dialLDAP(s.Timeout, s.Trace)
	for _, u := range s.URLs {
		d, err := newDC(u, s.StartTLS, s.tlsBase, s.Pool)
		if err != nil {
			return nil, configErr("url %q: %v", u, err)
		}
		b.static = append(b.static, d)
		b.known[u] = d
	}
	if s.Cache > 0 {
		if b.cache, err = newCredCache(s.Cache, maxCacheEntries); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// HasServiceAccount reports whether BindDN is configured, i.e. whether
// Lookup can work.
func (b *Backend) HasServiceAccount() bool { return b.s.BindDN != "" }

// Servers is the number of DCs configured (for SRV: last resolved, at
// least 1), for sizing a concurrency limit.
func (b *Backend) Servers() int {
	if b.s.SRV == "" {
		return len(b.static)
	}
	b.srvMu.Lock()
	defer b.srvMu.Unlock()
	return max(1, len(b.srvList))
}

func (b *Backend) trace(format string, args ...any) {
	if b.s.Trace != nil {
		b.s.Trace(format, args...)
	}
}

// dcError marks a failure of the server (not an answer from it): the next
// DC is tried.
type dcError struct{ err error }

func (e *dcError) Error() string { return e.err.Error() }
func (e *dcError) Unwrap() error { return e.err }

func isDCError(err error) bool {
	var de *dcError
	return errors.As(err, &de)
}

// call runs one LDAP operation on c, bounded by ctx: cancelling ctx closes
// c, which aborts the operation. Failures of the server come back as
// *dcError.
func call[T any](ctx context.Context, c Conn, f func() (T, error)) (T, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	v, err := f()
	if !stop() {
		var zero T
		if err == nil {
			err = errors.New("connection closed")
		}
		return zero, &dcError{fmt.Errorf("%w (%w)", ctx.Err(), err)}
	}
	if err != nil && unavailable(err) {
		return v, &dcError{err}
	}
	return v, err
}

// dcs returns the domain controllers, resolving SRV when due.
func (b *Backend) dcs(ctx context.Context) ([]*dc, error) {
	if b.s.SRV == "" {
		return b.static, nil
	}
	b.srvMu.Lock()
	list, at := b.srvList, b.srvAt
	b.srvMu.Unlock()
	if list != nil && b.now().Sub(at) < srvTTL {
		return list, nil
	}
	v, err, _ := b.srvSF.Do("srv", func() (any, error) { return b.resolveSRV(ctx) })
	if err != nil {
		if list != nil {
			b.trace("ldap: SRV lookup failed, keeping the last answer: %v", err)
			return list, nil
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return v.([]*dc), nil
}

func (b *Backend) resolveSRV(ctx context.Context) ([]*dc, error) {
	ctx, cancel := context.WithTimeout(ctx, b.s.Timeout)
	defer cancel()
	_, addrs, err := b.s.Resolver.LookupSRV(ctx, "ldap", "tcp", b.s.SRV)
	if err != nil {
		return nil, fmt.Errorf("SRV _ldap._tcp.%s: %w", b.s.SRV, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("SRV _ldap._tcp.%s: no records", b.s.SRV)
	}
	sort.SliceStable(addrs, func(i, j int) bool {
		if addrs[i].Priority != addrs[j].Priority {
			return addrs[i].Priority < addrs[j].Priority
		}
		return addrs[i].Weight > addrs[j].Weight
	})
	var list []*dc
	b.srvMu.Lock()
	defer b.srvMu.Unlock()
	for _, a := range addrs {
		host := strings.TrimSuffix(a.Target, ".")
		if host == "" {
			continue
		}
		// SRV names the plain LDAP port; without StartTLS the same host
		// is contacted on LDAPS.
		u := "ldaps://" + net.JoinHostPort(host, "636")
		if b.s.StartTLS {
			u = "ldap://" + net.JoinHostPort(host, strconv.Itoa(int(a.Port)))
		}
		d, ok := b.known[u]
		if !ok {
			if d, err = newDC(u, b.s.StartTLS, b.s.tlsBase, b.s.Pool); err != nil {
				return nil, err
			}
			b.known[u] = d
		}
		list = append(list, d)
	}
	b.trace("ldap: SRV _ldap._tcp.%s: %d DCs", b.s.SRV, len(list))
	b.srvList, b.srvAt = list, b.now()
	return list, nil
}

// withDC runs f on each DC in failover order until one answers. A DC whose
// failure is a *dcError is marked down and the next is tried; any other
// result (success, bad password, an account state) is the answer.
func (b *Backend) withDC(ctx context.Context, f func(d *dc) error) error {
	list, err := b.dcs(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range order(list, b.now()) {
		if ctx.Err() != nil {
			break
		}
		err := f(d)
		if !isDCError(err) {
			d.markUp() // it answered, whatever the answer
			return err
		}
		if ctx.Err() != nil {
			// Our own deadline, not necessarily the DC's fault.
			errs = append(errs, fmt.Errorf("%s: %w", d.url, err))
			break
		}
		b.trace("ldap: %s failed, marked down: %v", d.url, err)
		d.markDown(err, b.now())
		errs = append(errs, fmt.Errorf("%s: %w", d.url, err))
	}
	if ctx.Err() != nil && len(errs) == 0 {
		errs = append(errs, ctx.Err())
	}
	return fmt.Errorf("%w: no domain controller answered: %w", ErrUnavailable, errors.Join(errs...))
}

// conn gets a connection of the given kind (service-bound or for user
// binds) from d's pool, or dials one. fromPool tells a retry is worth it
// when the connection turns out to be stale.
func (b *Backend) conn(ctx context.Context, d *dc, svc bool) (c Conn, fromPool bool, err error) {
	p := d.bind
	if svc {
		p = d.svc
	}
	if c := d.get(p, b.now()); c != nil {
		return c, true, nil
	}
	c, err = b.dial(ctx, d)
	if err != nil {
		if isDCError(err) {
			return nil, false, err
		}
		return nil, false, &dcError{err}
	}
	if !svc {
		return c, false, nil
	}
	start := time.Now()
	_, err = call(ctx, c, func() (*ldap.SimpleBindResult, error) {
		return c.SimpleBind(ldap.NewSimpleBindRequest(b.s.BindDN, b.s.BindPassword, nil))
	})
	// Until a user's password has been refused, a bind is the best guess
	// of what a refusal costs (the service account always binds first).
	d.refusal.seed(time.Since(start))
	if err != nil {
		_ = c.Close()
		switch {
		case isDCError(err):
			return nil, false, err
		case ldap.IsErrorAnyOf(err, ldap.LDAPResultStrongAuthRequired, ldap.LDAPResultConfidentialityRequired):
			return nil, false, fmt.Errorf("service account bind: %w: %w", ErrStrongerAuth, err)
		case ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials):
			return nil, false, fmt.Errorf("service account %q refused by %s (check bind_dn and bind_password; AD sub-code %s): %w",
				b.s.BindDN, d.url, adSubCode(err), err)
		}
		return nil, false, fmt.Errorf("service account bind at %s: %w", d.url, err)
	}
	b.trace("ldap: %s: service account bound", d.url)
	return c, false, nil
}

// withConn runs f on a pooled connection of d, retrying once on a fresh
// connection when a pooled one turns out to be dead. Healthy connections go
// back to the pool; broken ones are closed.
func (b *Backend) withConn(ctx context.Context, d *dc, svc bool, f func(c Conn) error) error {
	p := d.bind
	if svc {
		p = d.svc
	}
	for attempt := 0; ; attempt++ {
		c, fromPool, err := b.conn(ctx, d, svc)
		if err != nil {
			return err
		}
		err = f(c)
		if isDCError(err) {
			_ = c.Close()
			if fromPool && attempt == 0 && ctx.Err() == nil {
				b.trace("ldap: %s: pooled connection failed, retrying on a new one: %v", d.url, err)
				continue
			}
			return err
		}
		if b.closed.Load() {
			_ = c.Close()
		} else {
			d.put(p, c, b.now())
		}
		return err
	}
}

// Authenticate checks a username and password: the caddyauth contract.
// ok=false with a nil error means a wrong password or an unknown user (the
// same result for both); an *AccountError means the password was right but
// the account may not sign in; an error wrapping ErrUnavailable means no
// DC answered. Input no directory should see (empty or blank password,
// control characters, over 256 bytes, invalid UTF-8, another domain) is
// refused before any network traffic.
func (b *Backend) Authenticate(ctx context.Context, username, password string) (groups.Identity, bool, error) {
	u, ok := b.parseUsername(username, password)
	if !ok {
		return groups.Identity{}, false, nil
	}
	var id groups.Identity
	err := b.withDC(ctx, func(d *dc) error {
		var err error
		if b.s.BindDN != "" {
			id, err = b.authService(ctx, d, u, password)
		} else {
			id, err = b.authDirect(ctx, d, u, password)
		}
		return err
	})
	switch {
	case err == nil:
		return id, true, nil
	case errors.Is(err, errBadCredentials):
		b.trace("ldap: %q: bad credentials", u.name)
		return groups.Identity{}, false, nil
	}
	return groups.Identity{}, false, err
}

// user is a typed username, understood.
type user struct {
	name     string // the account name, for {username} in the filter
	bindName string // without a service account: DOMAIN\name or name@suffix
}

// parseUsername accepts alice, ALICE, DOMAIN\alice (only Domain) and
// alice@upn_suffix (only UPNSuffix), and refuses bad input.
func (b *Backend) parseUsername(typed, password string) (user, bool) {
	if strings.TrimSpace(password) == "" || len(password) > maxPasswordBytes || strings.IndexByte(password, 0) >= 0 ||
		!utf8.ValidString(password) {
		return user{}, false
	}
	// The limit is on what was sent, surrounding spaces included: the
	// work done for a name is bounded by its bytes, not by its trimmed form.
	if len(typed) > maxUsernameBytes {
		return user{}, false
	}
	typed = strings.TrimSpace(typed)
	if typed == "" || !utf8.ValidString(typed) ||
		strings.IndexFunc(typed, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }) >= 0 {
		return user{}, false
	}
	name := typed
	if dom, rest, found := strings.Cut(typed, `\`); found {
		if b.s.Domain == "" || !strings.EqualFold(dom, b.s.Domain) {
			return user{}, false
		}
		name = rest
	} else if i := strings.LastIndexByte(typed, '@'); i >= 0 {
		if b.s.UPNSuffix == "" || !strings.EqualFold(typed[i+1:], b.s.UPNSuffix) {
			return user{}, false
		}
		name = typed[:i]
	}
	if name == "" || strings.ContainsAny(name, `\@`) || strings.TrimSpace(name) != name {
		return user{}, false
	}
	u := user{name: name}
	switch {
	case b.s.Domain != "":
		u.bindName = b.s.Domain + `\` + name
	case b.s.UPNSuffix != "":
		u.bindName = name + "@" + b.s.UPNSuffix
	}
	return u, true
}

// userFilter is the user filter with the escaped name.
func (b *Backend) userFilter(name string) string {
	return strings.ReplaceAll(b.s.UserFilter, "{username}", ldap.EscapeFilter(name))
}

func (b *Backend) userAttrs(extra ...string) []string {
	a := []string{b.s.attrs[AttrUsername], b.s.attrs[AttrEmail], b.s.attrs[AttrGivenName],
		b.s.attrs[AttrFamilyName], b.s.attrs[AttrName], b.s.attrs[AttrGroups]}
	return append(a, extra...)
}

var errAmbiguous = errors.New("the user filter matches more than one entry")

// findUser searches the user's entry: exactly one is required.
func (b *Backend) findUser(ctx context.Context, c Conn, name string) (*ldap.Entry, error) {
	filter := b.userFilter(name)
	b.trace("ldap: search base=%q filter=%s", b.s.BaseDN, filter)
	req := ldap.NewSearchRequest(b.s.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, int(b.s.Timeout/time.Second), false, filter, b.userAttrs(), nil)
	res, err := call(ctx, c, func() (*ldap.SearchResult, error) { return c.Search(req) })
	entries := entriesOf(res)
	switch {
	case err != nil && ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) && len(entries) > 1:
		return nil, fmt.Errorf("%w (%s)", errAmbiguous, filter)
	case err != nil && ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return nil, fmt.Errorf("base_dn %q does not exist on the directory: %w", b.s.BaseDN, err)
	case err != nil && ldap.IsErrorWithCode(err, ldap.LDAPResultOperationsError):
		return nil, fmt.Errorf("search refused (an anonymous or unprivileged bind?): %w", err)
	case err != nil:
		return nil, fmt.Errorf("user search: %w", err)
	case len(entries) == 0:
		return nil, errBadCredentials
	case len(entries) > 1:
		return nil, fmt.Errorf("%w (%s)", errAmbiguous, filter)
	}
	return entries[0], nil
}

// entriesOf returns the entries of a search result: referrals (AD's
// Configuration and DNS partitions) are ignored, never chased.
func entriesOf(res *ldap.SearchResult) []*ldap.Entry {
	if res == nil {
		return nil
	}
	out := res.Entries[:0:0]
	for _, e := range res.Entries {
		if e != nil && e.DN != "" {
			out = append(out, e)
		}
	}
	return out
}

func (b *Backend) bindRequest(dn, password string) *ldap.SimpleBindRequest {
	req := ldap.NewSimpleBindRequest(dn, password, nil)
	if b.s.Flavor == FlavorOpenLDAP {
		req.Controls = []ldap.Control{ldap.NewControlBeheraPasswordPolicy()}
	}
	return req
}

// userBind checks the password with a bind on c.
func (b *Backend) userBind(ctx context.Context, c Conn, dn, password string) error {
	start := b.now()
	res, err := call(ctx, c, func() (*ldap.SimpleBindResult, error) { return c.SimpleBind(b.bindRequest(dn, password)) })
	if isDCError(err) {
		return err
	}
	err = classifyBind(err, res, dn)
	b.trace("ldap: bind %q: %s (%s)", dn, bindSummary(err), b.now().Sub(start).Round(time.Millisecond))
	return err
}

func bindSummary(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// authService: the service account finds the entry, then the user binds
// as that DN on a connection of the bind pool, so no service connection is
// ever left bound as the user.
func (b *Backend) authService(ctx context.Context, d *dc, u user, password string) (groups.Identity, error) {
	var entry *ldap.Entry
	if err := b.withConn(ctx, d, true, func(c Conn) error {
		var err error
		entry, err = b.findUser(ctx, c, u.name)
		return err
	}); err != nil {
		if errors.Is(err, errBadCredentials) {
			// No such user. A known user's wrong password costs a bind
			// more, which on AD is the dearest step (the DC checks the
			// hash and updates badPwdCount): answering an unknown name at
			// once would tell an attacker, by the response time alone,
			// which names exist. A dummy bind cannot stand in for it: AD
			// refuses a DN with no account some 20 times faster than a
			// wrong password, and binding a real decoy account would
			// count bad passwords against it until it locks. So the
			// answer waits as long as this DC takes to refuse a password.
			d.refusal.wait(ctx, b.s.Timeout)
		}
		return groups.Identity{}, err
	}
	if err := b.withConn(ctx, d, false, func(c Conn) error {
		start := time.Now()
		if err := b.userBind(ctx, c, entry.DN, password); err != nil {
			if errors.Is(err, errBadCredentials) {
				d.refusal.observe(time.Since(start))
			}
			return err
		}
		if b.s.Flavor == FlavorOpenLDAP {
			return b.checkMustChange(ctx, c, entry.DN)
		}
		return nil
	}); err != nil {
		return groups.Identity{}, err
	}
	var id groups.Identity
	err := b.withConn(ctx, d, true, func(c Conn) error {
		var err error
		id, err = b.identity(ctx, c, entry)
		return err
	})
	return id, err
}

// latency tracks how long an operation takes: the median of the last
// latencySamples observations (a median, not a mean, so that the odd slow
// answer does not make every padded one slow).
type latency struct {
	mu      sync.Mutex
	samples [latencySamples]time.Duration
	n       int           // observations so far
	seeded  time.Duration // the estimate until the first observation
}

const latencySamples = 31

func (l *latency) observe(d time.Duration) {
	if d <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.samples[l.n%latencySamples] = d
	l.n++
}

// seed sets the estimate until the first observation.
func (l *latency) seed(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seeded = d
}

func (l *latency) estimate() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 {
		return l.seeded
	}
	s := slices.Clone(l.samples[:min(l.n, latencySamples)])
	slices.Sort(s)
	return s[len(s)/2]
}

// wait waits for the estimate (at most limit), or until ctx ends. In a
// quiet process the runtime's timers fire up to a millisecond late (the
// poller sleeps in whole milliseconds), which alone would set the padded
// answers apart from those woken by a DC's reply; so the timer covers all
// but the last millisecond, and that is waited out by yielding.
func (l *latency) wait(ctx context.Context, limit time.Duration) {
	d := min(l.estimate(), limit)
	if d <= 0 {
		return
	}
	end := time.Now().Add(d)
	if d > time.Millisecond {
		t := time.NewTimer(d - time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
	for time.Now().Before(end) && ctx.Err() == nil {
		runtime.Gosched()
	}
}

// checkMustChange: OpenLDAP lets a must-change bind succeed and then
// refuses everything else with result 50. One base read of the user's own
// entry tells.
func (b *Backend) checkMustChange(ctx context.Context, c Conn, dn string) error {
	req := ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1,
		int(b.s.Timeout/time.Second), false, "(objectClass=*)", []string{"1.1"}, nil)
	_, err := call(ctx, c, func() (*ldap.SearchResult, error) { return c.Search(req) })
	if ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
		return &AccountError{Code: "50", State: StateMustChange, User: dn}
	}
	if isDCError(err) {
		return err
	}
	return nil
}

// authDirect: bind as DOMAIN\user (or the UPN), then read the user's own
// entry and groups on that connection.
func (b *Backend) authDirect(ctx context.Context, d *dc, u user, password string) (groups.Identity, error) {
	var id groups.Identity
	err := b.withConn(ctx, d, false, func(c Conn) error {
		if err := b.userBind(ctx, c, u.bindName, password); err != nil {
			return err
		}
		entry, err := b.findUser(ctx, c, u.name)
		if err != nil {
			if errors.Is(err, errBadCredentials) {
				b.trace("ldap: %q bound but the user filter finds no entry for it", u.bindName)
			}
			return err
		}
		id, err = b.identity(ctx, c, entry)
		return err
	})
	return id, err
}

// identity builds the Identity of entry, groups included.
func (b *Backend) identity(ctx context.Context, c Conn, entry *ldap.Entry) (groups.Identity, error) {
	name := entry.GetEqualFoldAttributeValue(b.s.attrs[AttrUsername])
	if name == "" {
		return groups.Identity{}, fmt.Errorf("entry %q has no %s attribute", entry.DN, b.s.attrs[AttrUsername])
	}
	id := groups.Identity{
		ID:         strings.ToLower(name),
		Email:      entry.GetEqualFoldAttributeValue(b.s.attrs[AttrEmail]),
		Name:       entry.GetEqualFoldAttributeValue(b.s.attrs[AttrName]),
		GivenName:  entry.GetEqualFoldAttributeValue(b.s.attrs[AttrGivenName]),
		FamilyName: entry.GetEqualFoldAttributeValue(b.s.attrs[AttrFamilyName]),
		DN:         entry.DN,
	}
	gs, err := b.groupsOf(ctx, c, entry)
	if err != nil {
		return groups.Identity{}, err
	}
	id.Groups = gs
	return id, nil
}

// Lookup re-reads a signed-in user's entry with the service account: the
// fresh identity, or an *AccountError matching ErrAccountGone or
// ErrAccountDisabled, or an error wrapping ErrUnavailable when no DC
// answered (the session should continue).
func (b *Backend) Lookup(ctx context.Context, dn string) (groups.Identity, error) {
	if b.s.BindDN == "" {
		return groups.Identity{}, ErrNoServiceAccount
	}
	if _, err := ldap.ParseDN(dn); err != nil || dn == "" {
		return groups.Identity{}, fmt.Errorf("lookup: %q is not a DN", dn)
	}
	var id groups.Identity
	err := b.withDC(ctx, func(d *dc) error {
		return b.withConn(ctx, d, true, func(c Conn) error {
			var err error
			id, err = b.lookupOn(ctx, c, dn)
			return err
		})
	})
	return id, err
}

var lookupAttrs = []string{"userAccountControl", "msDS-User-Account-Control-Computed", "lockoutTime",
	"accountExpires", "pwdAccountLockedTime"}

func (b *Backend) lookupOn(ctx context.Context, c Conn, dn string) (groups.Identity, error) {
	req := ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1,
		int(b.s.Timeout/time.Second), false, "(objectClass=*)", b.userAttrs(lookupAttrs...), nil)
	b.trace("ldap: lookup %q", dn)
	res, err := call(ctx, c, func() (*ldap.SearchResult, error) { return c.Search(req) })
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return groups.Identity{}, &AccountError{Code: "32", State: StateGone, User: dn}
	}
	if err != nil {
		return groups.Identity{}, fmt.Errorf("lookup %q: %w", dn, err)
	}
	entries := entriesOf(res)
	if len(entries) != 1 {
		return groups.Identity{}, &AccountError{Code: "no entry", State: StateGone, User: dn}
	}
	e := entries[0]
	if err := accountState(e, b.now()); err != nil {
		return groups.Identity{}, err
	}
	return b.identity(ctx, c, e)
}

// accountState reads disabled, locked and expired from an entry.
func accountState(e *ldap.Entry, now time.Time) error {
	uac, _ := strconv.ParseInt(e.GetEqualFoldAttributeValue("userAccountControl"), 10, 64)
	if uac&0x2 != 0 {
		return &AccountError{Code: "userAccountControl", State: StateDisabled, User: e.DN}
	}
	if v := e.GetEqualFoldAttributeValue("msDS-User-Account-Control-Computed"); v != "" {
		// AD computes the lockout, honouring the lockout duration.
		if n, _ := strconv.ParseInt(v, 10, 64); n&0x10 != 0 {
			return &AccountError{Code: "msDS-User-Account-Control-Computed", State: StateLockedOut, User: e.DN}
		}
	} else if lt, _ := strconv.ParseInt(e.GetEqualFoldAttributeValue("lockoutTime"), 10, 64); lt > 0 {
		return &AccountError{Code: "lockoutTime", State: StateLockedOut, User: e.DN}
	}
	if e.GetEqualFoldAttributeValue("pwdAccountLockedTime") != "" {
		return &AccountError{Code: "pwdAccountLockedTime", State: StateLockedOut, User: e.DN}
	}
	if ae, _ := strconv.ParseInt(e.GetEqualFoldAttributeValue("accountExpires"), 10, 64); ae > 0 && ae != 1<<63-1 {
		if fileTime(ae).Before(now) {
			return &AccountError{Code: "accountExpires", State: StateAccountExpired, User: e.DN}
		}
	}
	return nil
}

// fileTime converts a Windows FILETIME (100 ns since 1601) to a time.
func fileTime(ft int64) time.Time {
	const epochDiff = 116444736000000000 // 1601 → 1970 in 100 ns
	return time.Unix(0, 0).Add(time.Duration(ft-epochDiff) * 100)
}

// Health reports each DC's state, for a metrics gauge.
func (b *Backend) Health() []DCStatus {
	var list []*dc
	if b.s.SRV == "" {
		list = b.static
	} else {
		b.srvMu.Lock()
		for _, d := range b.known {
			list = append(list, d)
		}
		b.srvMu.Unlock()
		sort.Slice(list, func(i, j int) bool { return list[i].url < list[j].url })
	}
	now := b.now()
	out := make([]DCStatus, 0, len(list))
	for _, d := range list {
		d.mu.Lock()
		out = append(out, DCStatus{URL: d.url, Up: !now.Before(d.downUntil), LastError: d.lastErr})
		d.mu.Unlock()
	}
	return out
}

// Close closes the pooled connections. Calls still running finish; their
// connections are closed instead of pooled.
func (b *Backend) Close() error {
	b.closed.Store(true)
	b.srvMu.Lock()
	defer b.srvMu.Unlock()
	for _, d := range b.known {
		d.drain()
	}
	return nil
}

// FindUser looks an account up by the name a user would type, with the
// service account, without a password: for diagnostics (check-ldap). The
// identity carries the entry's DN and groups; an unknown name is an error.
func (b *Backend) FindUser(ctx context.Context, username string) (groups.Identity, error) {
	if b.s.BindDN == "" {
		return groups.Identity{}, ErrNoServiceAccount
	}
	u, ok := b.parseUsername(username, "-")
	if !ok {
		return groups.Identity{}, fmt.Errorf("%q is not a name this directory accepts (domain %q, upn_suffix %q)", username, b.s.Domain, b.s.UPNSuffix)
	}
	var id groups.Identity
	err := b.withDC(ctx, func(d *dc) error {
		return b.withConn(ctx, d, true, func(c Conn) error {
			entry, err := b.findUser(ctx, c, u.name)
			if errors.Is(err, errBadCredentials) {
				return fmt.Errorf("no entry matches %s under %s", b.userFilter(u.name), b.s.BaseDN)
			}
			if err != nil {
				return err
			}
			id, err = b.identity(ctx, c, entry)
			return err
		})
	})
	return id, err
}

// Check connects to the DCs (TLS included) and, with a service account,
// binds it: for diagnostics and readiness probes.
func (b *Backend) Check(ctx context.Context) error {
	return b.withDC(ctx, func(d *dc) error {
		return b.withConn(ctx, d, b.s.BindDN != "", func(Conn) error { return nil })
	})
}
