package localauth

import (
	"context"

	"github.com/caddy-adauth/adauth/groups"
)

type Store struct{}

func Open(path string) (*Store, error) { return &Store{}, nil }
func (s *Store) OnReloadError(func(error)) {}
func (s *Store) Authenticate(ctx context.Context, u, p string) (groups.Identity, bool, error) {
	if u == "alice" && p == "pw" {
		return groups.Identity{ID: "alice", Groups: []groups.Group{{Name: "physics"}}}, true, nil
	}
	return groups.Identity{}, false, nil
}
