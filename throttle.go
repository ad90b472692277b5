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

type throttle struct {
	limit  int
	window time.Duration
	users  *counterTable
	ips    *counterTable
}

func (t *throttle) Destruct() error { return nil }

func (c *ThrottleConfig) key() string {
	return fmt.Sprintf("adauth-throttle/%d/%s", c.Failures, time.Duration(c.Window))
}

func newThrottle(limit int, window time.Duration) *throttle {
	return &throttle{limit: limit, window: window, users: newCounterTable(), ips: newCounterTable()}
}

// blocked reports how long user and ip must still wait, or 0.
func (t *throttle) blocked(user, ip string, now time.Time) time.Duration {
	return max(t.users.wait(user, t.limit, t.window, now), t.ips.wait(ip, ipFactor*t.limit, t.window, now))
}

// failed records a failed sign-in.
func (t *throttle) failed(user, ip string, now time.Time) {
	t.users.add(user, t.window, now)
	t.ips.add(ip, t.window, now)
}

// succeeded clears the user's counter; the IP's stays, so one good
// password among a spray does not reset it.
func (t *throttle) succeeded(user string) { t.users.clear(user) }

type counter struct {
	n    int
	last time.Time
}

// counterTable is a sharded map of counters; no lock is held for longer
// than a map operation, and never across a directory call.
type counterTable struct {
	seed   maphash.Seed
	shards [throttleShards]struct {
		sync.Mutex
		m map[string]counter
	}
}

func newCounterTable() *counterTable {
	t := &counterTable{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = make(map[string]counter)
	}
	return t
}

func (t *counterTable) shard(key string) *struct {
	sync.Mutex
	m map[string]counter
} {
	return &t.shards[maphash.String(t.seed, key)%throttleShards]
}

func (t *counterTable) wait(key string, limit int, window time.Duration, now time.Time) time.Duration {
	s := t.shard(key)
	s.Lock()
	c, ok := s.m[key]
	s.Unlock()
	if !ok || c.n < limit {
		return 0
	}
	if d := c.last.Add(window).Sub(now); d > 0 {
		return d
	}
	return 0
}

func (t *counterTable) add(key string, window time.Duration, now time.Time) {
	s := t.shard(key)
	s.Lock()
	defer s.Unlock()
	c, ok := s.m[key]
	if !ok && len(s.m) >= throttleCapacity/throttleShards {
		for k, v := range s.m {
			if now.Sub(v.last) >= window {
				delete(s.m, k)
			}
		}
		for k := range s.m {
			if len(s.m) < throttleCapacity/throttleShards {
				break
			}
			delete(s.m, k)
		}
	}
	if ok && now.Sub(c.last) >= window {
		c.n = 0
	}
	c.n++
	c.last = now
	s.m[key] = c
}

func (t *counterTable) clear(key string) {
	s := t.shard(key)
	s.Lock()
	delete(s.m, key)
	s.Unlock()
}
