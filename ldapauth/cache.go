package ldapauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/caddy-adauth/adauth/groups"
)

// credCache remembers successful checks for a while. Keys are
// HMAC-SHA256(per-process random key, username NUL password): neither the
// password nor a plain hash of it is kept. Only successes are cached, the
// size is bounded (oldest out first), and concurrent checks of the same
// credentials share one bind.
type credCache struct {
	ttl time.Duration
	max int
	key []byte

	mu    sync.Mutex
	m     map[[32]byte]cacheEntry
	queue []cacheSlot // insertion order, for eviction
	sf    singleflight.Group
}

type cacheEntry struct {
	id  groups.Identity
	exp time.Time
}

type cacheSlot struct {
	k   [32]byte
	exp time.Time
}

func newCredCache(ttl time.Duration, maxEntries int) (*credCache, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("credential cache key: %w", err)
	}
	return &credCache{ttl: ttl, max: maxEntries, key: k, m: map[[32]byte]cacheEntry{}}, nil
}

func (c *credCache) keyOf(username, password string) [32]byte {
	h := hmac.New(sha256.New, c.key)
	h.Write([]byte(strings.ToLower(strings.TrimSpace(username))))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (c *credCache) get(k [32]byte, now time.Time) (groups.Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || !now.Before(e.exp) {
		return groups.Identity{}, false
	}
	return e.id, true
}

func (c *credCache) put(k [32]byte, id groups.Identity, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp := now.Add(c.ttl)
	// Drop expired entries from the front, then the oldest while full.
	for len(c.queue) > 0 && (len(c.m) >= c.max || !now.Before(c.queue[0].exp) || len(c.queue) > 2*c.max) {
		s := c.queue[0]
		c.queue = c.queue[1:]
		if e, ok := c.m[s.k]; ok && e.exp.Equal(s.exp) {
			delete(c.m, s.k)
		}
	}
	c.m[k] = cacheEntry{id: id, exp: exp}
	c.queue = append(c.queue, cacheSlot{k: k, exp: exp})
}

func (c *credCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// AuthenticateCached is Authenticate with the credential cache (Config.Cache)
// in front: meant for HTTP Basic, which sends the same credentials with
// every request. A success is remembered for Cache; failures and refusals
// never are, and concurrent checks of the same credentials share one bind.
// A password changed in the directory is therefore still accepted here
// for up to Cache after the change. Without a cache it is Authenticate.
func (b *Backend) AuthenticateCached(ctx context.Context, username, password string) (groups.Identity, bool, error) {
	c := b.cache
	if c == nil {
		return b.Authenticate(ctx, username, password)
	}
	if _, ok := b.parseUsername(username, password); !ok {
		return groups.Identity{}, false, nil
	}
	k := c.keyOf(username, password)
	if id, ok := c.get(k, b.now()); ok {
		b.trace("ldap: %q: accepted from the credential cache", username)
		return id, true, nil
	}
	type result struct {
		id groups.Identity
		ok bool
	}
	ch := c.sf.DoChan(string(k[:]), func() (any, error) {
		// Not the caller's context: the bind is shared by every caller
		// waiting for it, so one leaving must not cancel it for the rest.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(b.Servers()+1)*3*b.s.Timeout)
		defer cancel()
		id, ok, err := b.Authenticate(bctx, username, password)
		if err == nil && ok {
			c.put(k, id, b.now())
		}
		return result{id, ok}, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return groups.Identity{}, false, r.Err
		}
		res := r.Val.(result)
		return res.id, res.ok, nil
	case <-ctx.Done():
		return groups.Identity{}, false, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
}
