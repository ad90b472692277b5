package adauth

import (
	"runtime"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-adauth/adauth/localauth"
)

// LocalConfig configures local accounts: the break-glass path that works
// when the directory is down.
type LocalConfig struct {
	// Path to the JSON users file. It is re-read when it changes; a broken
	// file keeps the last good users and is logged.
	File string `json:"file"`
}

func (c *LocalConfig) provision(ctx caddy.Context, repl *caddy.Replacer) (*passwordBackend, error) {
	path := repl.ReplaceKnown(c.File, "")
	store, err := localauth.Open(path)
	if err != nil {
		return nil, err
	}
	logger := ctx.Logger()
	// The store re-reads the file when it changes; a broken edit keeps the
	// last good users, and the administrator reads why here.
	store.OnReloadError(func(err error) {
		logger.Error("users file not reloaded; keeping the last good users", zap.String("file", path), zap.Error(err))
	})
	return &passwordBackend{
		name: "local",
		impl: store,
		// Hashing is CPU- and (argon2id) memory-bound: more at once than
		// there are cores only queues inside the scheduler with the memory
		// already taken.
		sem: make(chan struct{}, runtime.GOMAXPROCS(0)),
	}, nil
}
