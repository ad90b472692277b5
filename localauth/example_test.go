package localauth_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/caddy-adauth/adauth/groups"
	"github.com/caddy-adauth/adauth/localauth"
)

// Example writes a users file with one user, as `caddy adauth user add`
// does, and signs her in.
func Example() {
	dir, err := os.MkdirTemp("", "localauth")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "users.json")

	hash, err := localauth.HashPassword("correct horse battery staple")
	if err != nil {
		log.Fatal(err)
	}
	f := &localauth.File{}
	err = f.Add(localauth.User{
		Username:   "Alice",
		Password:   hash,
		Email:      "alice@hospital.example",
		GivenName:  "Alice",
		FamilyName: "Liddell",
		Groups:     []string{"physics"},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := localauth.WriteFile(path, f); err != nil {
		log.Fatal(err)
	}

	store, err := localauth.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	store.OnReloadError(func(err error) { log.Print(err) })

	id, ok, err := store.Authenticate(context.Background(), "ALICE", "correct horse battery staple")
	fmt.Println(ok, err, id.ID, id.Name, groups.Names(id.Groups))
	_, ok, err = store.Authenticate(context.Background(), "alice", "wrong")
	fmt.Println(ok, err)
	// Output:
	// true <nil> alice Alice Liddell [physics]
	// false <nil>
}
