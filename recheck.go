package adauth

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-adauth/adauth/groups"
)

// accountLooker is what a backend offers for the re-check of a signed-in
// user: the account as the directory sees it now, and a new refresh token
// when the provider rotated it. An error with a UserMessage (disabled,
// locked, deleted, sign-in revoked) ends the session; any other error means
// the directory could not answer, and the session continues.
type accountLooker interface {
	lookupAccount(ctx context.Context, ss *session) (id groups.Identity, refresh string, err error)
}

// dnLooker is a directory backend (ldap) that looks accounts up by DN with
// its service account.
type dnLooker interface {
	Lookup(ctx context.Context, dn string) (groups.Identity, error)
}

// byDN adapts a dnLooker to the re-check.
type byDN struct{ l dnLooker }

func (b byDN) lookupAccount(ctx context.Context, ss *session) (groups.Identity, string, error) {
	id, err := b.l.Lookup(ctx, ss.DN)
	return id, "", err
}

// recheckTimeout bounds one background look-up.
const recheckTimeout = 10 * time.Second

// recheckRetry is how long a user's re-check waits after the directory
// could not answer, so a down DC is not asked again on every request.
const recheckRetry = time.Minute

// maxRecheckResults bounds the results kept; beyond it old ones are dropped
// (the affected sessions are simply looked up again).
const maxRecheckResults = 1 << 16

// rechecker runs the periodic re-validation of directory users. The request
// that finds a session due starts a look-up in the background and goes on
// with the session it has, so no request waits for the directory; the
// result is applied by the user's next request. At most one look-up per
// user runs at a time.
type rechecker struct {
	interval time.Duration
	backends map[string]accountLooker // by backend name ("ldap")

	mu      sync.Mutex
	running map[string]bool          // recheckKey -> a look-up is in flight
	results map[string]recheckResult // recheckKey -> the latest answer
}

// recheckKey names whose account a look-up answers for. A directory
// look-up answers for the user of one backend, whatever the browser, so
// all of that user's sessions share it (one look-up per user at a time).
// A refresh-token look-up answers for one sign-in only: its groups and
// rotated token come from that session's own token, so they must never
// be applied to another session of the same user.
func recheckKey(ss *session) string {
	if ss.Refresh != "" {
		return ss.Backend + "\x00" + ss.ID + "\x00" + strconv.FormatInt(ss.Issued, 10)
	}
	return ss.Backend + "\x00" + ss.ID
}

// recheckResult is what the directory said about a user at a time.
type recheckResult struct {
	at      int64    // unix seconds of the answer
	ended   bool     // the account may no longer sign in
	message string   // why, for the login page and the log
	groups  []string // the application groups now
	refresh string   // a rotated refresh token (AD FS), or ""
	failed  bool     // the directory could not answer; retry after recheckRetry
}

func newRechecker(interval time.Duration) *rechecker {
	return &rechecker{
		interval: interval,
		backends: map[string]accountLooker{},
		running:  map[string]bool{},
		results:  map[string]recheckResult{},
	}
}

// due reports whether ss should be checked again. It is the only part on
// the per-request path for sessions that are not due: two comparisons.
func (rc *rechecker) due(ss *session, now int64) bool {
	if rc == nil || rc.interval <= 0 || (ss.DN == "" && ss.Refresh == "") {
		return false
	}
	if _, ok := rc.backends[ss.Backend]; !ok {
		return false
	}
	return now-ss.Checked >= int64(rc.interval/time.Second)
}

// recheck applies a finished look-up to ss, or starts one. It returns the
// session to use (a copy with new groups, when they changed), whether the
// cookie must be rewritten, and whether the session has ended.
func (h *Handler) recheck(ss *session, now int64) (out *session, rewrite, ended bool, message string) {
	rc := h.rechecker
	key := recheckKey(ss)
	rc.mu.Lock()
	res, ok := rc.results[key]
	if ok && res.at > ss.Checked && !res.failed {
		rc.mu.Unlock()
		if res.ended {
			return nil, false, true, res.message
		}
		c := *ss
		c.Checked = res.at
		c.Groups = res.groups
		if res.refresh != "" {
			c.Refresh = res.refresh
		}
		return &c, true, false, ""
	}
	if rc.running[key] || (ok && res.failed && now-res.at < int64(recheckRetry/time.Second)) {
		rc.mu.Unlock()
		return ss, false, false, ""
	}
	rc.running[key] = true
	rc.mu.Unlock()

	go h.lookup(*ss, key)
	return ss, false, false, ""
}

// lookup asks the directory about one user and records the answer under
// key (recheckKey).
func (h *Handler) lookup(ss session, key string) {
	rc := h.rechecker
	res := recheckResult{}
	defer func() {
		if p := recover(); p != nil {
			h.logger.Error("re-check panicked; the session continues", zap.String("user", ss.ID), zap.Any("panic", p))
			res = recheckResult{failed: true}
		}
		res.at = h.now().Unix()
		rc.mu.Lock()
		delete(rc.running, key)
		if len(rc.results) >= maxRecheckResults {
			for k := range rc.results {
				delete(rc.results, k)
				if len(rc.results) < maxRecheckResults/2 {
					break
				}
			}
		}
		rc.results[key] = res
		rc.mu.Unlock()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), recheckTimeout)
	defer cancel()
	start := time.Now()
	id, refresh, err := rc.backends[ss.Backend].lookupAccount(ctx, &ss)
	h.observeBackend(ss.Backend, "lookup", time.Since(start))
	var um userMessenger
	switch {
	case errors.As(err, &um):
		res.ended, res.message = true, um.UserMessage()
		h.logger.Warn("re-check ended a session", zap.String("user", ss.ID), zap.String("backend", ss.Backend), zap.Error(err))
		return
	case err != nil:
		res.failed = true
		h.logger.Warn("re-check could not reach the directory; the session continues",
			zap.String("user", ss.ID), zap.String("backend", ss.Backend), zap.Error(err))
		return
	}
	apps, err := h.mapper.Directory(id.Groups)
	if errors.As(err, &um) {
		res.ended, res.message = true, um.UserMessage()
		h.logger.Warn("re-check ended a session: no longer in a qualifying group", zap.String("user", ss.ID),
			zap.Strings("directory_groups", groups.Names(id.Groups)))
		return
	}
	if err != nil {
		res.failed = true
		h.logger.Error("re-check could not map groups; the session continues", zap.String("user", ss.ID), zap.Error(err))
		return
	}
	res.groups, res.refresh = apps, refresh
	if !slices.Equal(apps, ss.Groups) {
		h.logger.Info("re-check updated groups", zap.String("user", ss.ID),
			zap.Strings("from", ss.Groups), zap.Strings("to", apps))
	}
}
