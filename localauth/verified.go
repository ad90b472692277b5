package localauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
)

// maxVerified bounds the credentials one snapshot remembers; when full it
// starts afresh (the next check of each simply pays its hash again).
const maxVerified = 10000

// verified remembers the credentials that matched a hash of one snapshot,
// so that an API client sending HTTP Basic with every request pays the
// password hash once instead of on every request (bcrypt and argon2id are
// slow on purpose: tens of checks per second per core). It belongs to the
// snapshot: any change to the users file makes a new, empty one, so a
// changed password or a disabled account is never answered from it.
// Only successes are kept, so a wrong password always costs the hash; the
// keys are HMAC-SHA256 under a random key of the snapshot's own, never the
// password nor a plain hash of it.
type verified struct {
	key []byte
	mu  sync.Mutex
	m   map[[32]byte]struct{}
}

func newVerified() *verified {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // never fails (crypto/rand panics rather)
	return &verified{key: k, m: map[[32]byte]struct{}{}}
}

func (v *verified) sum(username, password string) [32]byte {
	h := hmac.New(sha256.New, v.key)
	h.Write([]byte(username))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (v *verified) has(k [32]byte) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.m[k]
	return ok
}

func (v *verified) add(k [32]byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.m) >= maxVerified {
		clear(v.m)
	}
	v.m[k] = struct{}{}
}
