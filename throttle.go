package adauth

import (
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// ThrottleConfig limits failed sign-ins, so that nobody can guess passwords
// through adauth, nor push a staff account into AD lockout: once a limit is
// reached, further attempts are answered 429 without contacting the
// directory at all.
type ThrottleConfig struct {
	// Failed sign-ins allowed per username within Window. Each client IP
	// is allowed 4 times as many (a password spray across users). Keep it
	// below the AD lockout threshold. Default: 5
	Failures int `json:"failures,omitempty"`
	// A username or IP that reached its limit is refused until Window has
	// passed since its last failure. Keep it at least as long as AD's
	// "Reset account lockout counter after". Default: 15m
	Window caddy.Duration `json:"window,omitempty"`
}

const (
	defaultThrottleFailures = 5
	defaultThrottleWindow   = 15 * time.Minute
	ipFactor                = 4
	// throttleCapacity bounds each table: beyond it, expired entries are
	// swept and then arbitrary ones dropped, so a flood of distinct
	// usernames or addresses cannot grow memory without bound.
	throttleCapacity = 1 << 16
	throttleShards   = 16
)

// throttlePool keeps counters across `caddy reload`: the key is the
// configuration, so a reload with the same limits continues counting.
var throttlePool = caddy.NewUsagePool()

// throttle counts failed sign-ins per username and per client IP. An
// attempt is admitted only while its failures plus the attempts still in
// flight stay below the limit, so parallel requests cannot all pass the
// check before the first failure is counted: at most the limit ever reaches
// the directory, however many an attacker sends at once.
type throttle struct {
	limit  int
	window time.Duration
	users  *counterTable
	ips    *counterTable

	mu   sync.Mutex
	wake chan struct{} // closed when an attempt ends, if anyone waits for one
}

func (t *throttle) Destruct() error { return nil }

func (c *ThrottleConfig) key() string {
	return fmt.Sprintf("adauth-throttle/%d/%s", c.Failures, time.Duration(c.Window))
}

func newThrottle(limit int, window time.Duration) *throttle {
	return &throttle{limit: limit, window: window, users: newCounterTable(), ips: newCounterTable()}
}

// admit reserves one attempt for user and ip. wait > 0: a limit is reached,
// refuse for that long. busy: not refused, but the attempts in flight could
// still reach a limit; wait for one to end (changed) and ask again.
// Checking and reserving are one step under both counters' locks.
func (t *throttle) admit(user, ip string, now time.Time) (wait time.Duration, busy bool) {
	us, is := t.users.shard(user), t.ips.shard(ip)
	us.Lock()
	defer us.Unlock()
	is.Lock()
	defer is.Unlock()
	uc, ic := us.m[user], is.m[ip]
	ul, il := t.limit, ipFactor*t.limit
	if w := max(uc.wait(ul, t.window, now), ic.wait(il, t.window, now)); w > 0 {
		return w, false
	}
	if uc.busy(ul, t.window, now) || ic.busy(il, t.window, now) {
		return 0, true
	}
	uc.inFlight++
	ic.inFlight++
	t.users.store(us, user, uc, t.window, now)
	t.ips.store(is, ip, ic, t.window, now)
	return 0, false
}

// done ends an admitted attempt; failed counts it against user and ip.
func (t *throttle) done(user, ip string, failed bool, now time.Time) {
	t.users.end(user, failed, t.window, now)
	t.ips.end(ip, failed, t.window, now)
	t.mu.Lock()
	if t.wake != nil {
		close(t.wake)
		t.wake = nil
	}
	t.mu.Unlock()
}

// changed returns a channel closed when the next attempt ends. Take it
// before calling admit, so that an end between the two is not missed.
func (t *throttle) changed() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.wake == nil {
		t.wake = make(chan struct{})
	}
	return t.wake
}

// succeeded clears the user's failures; the IP's stay, so one good
// password among a spray does not reset them.
func (t *throttle) succeeded(user string) { t.users.clear(user) }

type counter struct {
	n        int       // failures, the last at last
	inFlight int       // attempts admitted whose outcome is not known yet
	last     time.Time // the last failure
}

// failures is n while the window since the last failure lasts, then 0.
func (c counter) failures(window time.Duration, now time.Time) int {
	if now.Sub(c.last) >= window {
		return 0
	}
	return c.n
}

// wait is how long a key at its limit must still wait, or 0.
func (c counter) wait(limit int, window time.Duration, now time.Time) time.Duration {
	if c.failures(window, now) < limit {
		return 0
	}
	return c.last.Add(window).Sub(now)
}

// busy: the attempts in flight, should they fail, would reach the limit.
func (c counter) busy(limit int, window time.Duration, now time.Time) bool {
	return c.failures(window, now)+c.inFlight >= limit
}

type shard struct {
	sync.Mutex
	m map[string]counter
}

// counterTable is a sharded map of counters; no lock is held for longer
// than a few map operations, and never across a directory call.
type counterTable struct {
	seed   maphash.Seed
	shards [throttleShards]shard
}

func newCounterTable() *counterTable {
	t := &counterTable{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = make(map[string]counter)
	}
	return t
}

func (t *counterTable) shard(key string) *shard {
	return &t.shards[maphash.String(t.seed, key)%throttleShards]
}

// store writes c under key in s (locked by the caller): an idle counter
// is deleted; a new key in a full shard first sweeps expired counters,
// then drops arbitrary idle ones (never one with attempts in flight).
func (t *counterTable) store(s *shard, key string, c counter, window time.Duration, now time.Time) {
	if c.inFlight == 0 && c.failures(window, now) == 0 {
		delete(s.m, key)
		return
	}
	if _, ok := s.m[key]; !ok && len(s.m) >= throttleCapacity/throttleShards {
		for k, v := range s.m {
			if v.inFlight == 0 && v.failures(window, now) == 0 {
				delete(s.m, k)
			}
		}
		for k, v := range s.m {
			if len(s.m) < throttleCapacity/throttleShards {
				break
			}
			if v.inFlight == 0 {
				delete(s.m, k)
			}
		}
	}
	s.m[key] = c
}

// end releases one attempt in flight for key and, if it failed, counts it.
func (t *counterTable) end(key string, failed bool, window time.Duration, now time.Time) {
	s := t.shard(key)
	s.Lock()
	defer s.Unlock()
	c := s.m[key]
	if c.inFlight > 0 {
		c.inFlight--
	}
	if failed {
		c.n = c.failures(window, now) + 1
		c.last = now
	}
	t.store(s, key, c, window, now)
}

// clear forgets key's failures (its attempts in flight stay counted).
func (t *counterTable) clear(key string) {
	s := t.shard(key)
	s.Lock()
	defer s.Unlock()
	switch c, ok := s.m[key]; {
	case !ok:
	case c.inFlight == 0:
		delete(s.m, key)
	default:
		c.n = 0
		s.m[key] = c
	}
}
