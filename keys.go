package adauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/caddyserver/certmagic"
)

// keyStorageName is where the generated session key lives in Caddy's
// storage (the data directory by default, or whatever `storage` sets), so a
// reload, a restart and every instance sharing the storage seal alike.
const keyStorageName = "adauth/session_key"

// newKey returns a random 32-byte key as base64url text (what `caddy
// adauth key` prints).
func newKey() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// storedKey loads the session key from storage, creating it on first use.
// The storage lock makes two instances starting together agree on one key.
func storedKey(ctx context.Context, st certmagic.Storage) (string, error) {
	if k, err := st.Load(ctx, keyStorageName); err == nil {
		return strings.TrimSpace(string(k)), nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := st.Lock(ctx, keyStorageName); err != nil {
		return "", fmt.Errorf("locking %s: %w", keyStorageName, err)
	}
	defer func() { _ = st.Unlock(ctx, keyStorageName) }()
	if k, err := st.Load(ctx, keyStorageName); err == nil {
		return strings.TrimSpace(string(k)), nil
	}
	k := newKey()
	if err := st.Store(ctx, keyStorageName, []byte(k)); err != nil {
		return "", err
	}
	return k, nil
}
