package localauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Errors of the file-editing API, for errors.Is.
var (
	ErrUserExists   = errors.New("user already exists")
	ErrUserNotFound = errors.New("no such user")
)

// File is a users file as it is stored:
//
//	{"users": [{"username": "alice", "password": "$argon2id$…", "email": "…",
//	  "given_name": "…", "family_name": "…", "groups": ["physics"], "disabled": false}]}
//
// Fields this package does not know, at the top level and in each user, are
// kept from ReadFile to WriteFile.
type File struct {
	Users []User

	extra map[string]json.RawMessage
}

// User is one account in a users file.
type User struct {
	// Username is what the user types; matched case-insensitively. The
	// signed-in id is its lower-case form.
	Username string `json:"username"`
	// Password is a hash: bcrypt ($2a$, $2b$, $2y$), argon2id (the PHC
	// string of `caddy hash-password`), Django's pbkdf2_sha256$… or
	// pbkdf2_sha1$…, or Django's unusable "!…" (no password signs in).
	Password   string   `json:"password"`
	Email      string   `json:"email,omitempty"`
	GivenName  string   `json:"given_name,omitempty"`
	FamilyName string   `json:"family_name,omitempty"`
	Groups     []string `json:"groups"`
	// Disabled users cannot sign in; with the right password they are
	// told why.
	Disabled bool `json:"disabled"`

	extra map[string]json.RawMessage
}

// userFields is User without its methods, for the standard encoding.
type userFields User

var (
	fileKeys = []string{"users"}
	userKeys = []string{"username", "password", "email", "given_name", "family_name", "groups", "disabled"}
)

// MarshalJSON implements json.Marshaler.
func (f File) MarshalJSON() ([]byte, error) {
	users := f.Users
	if users == nil {
		users = []User{}
	}
	b, err := json.Marshal(struct {
		Users []User `json:"users"`
	}{users})
	if err != nil {
		return nil, err
	}
	return appendExtra(b, f.extra)
}

// MarshalJSON implements json.Marshaler.
func (u User) MarshalJSON() ([]byte, error) {
	if u.Groups == nil {
		u.Groups = []string{}
	}
	b, err := json.Marshal(userFields(u))
	if err != nil {
		return nil, err
	}
	return appendExtra(b, u.extra)
}

// extraFields returns the members of the object b whose names are not in
// known (compared as encoding/json does, case-insensitively).
func extraFields(b []byte, known []string) (map[string]json.RawMessage, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	for k := range all {
		if slices.ContainsFunc(known, func(s string) bool { return strings.EqualFold(s, k) }) {
			delete(all, k)
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	return all, nil
}

// appendExtra adds the members of extra to the encoded object b.
func appendExtra(b []byte, extra map[string]json.RawMessage) ([]byte, error) {
	if len(extra) == 0 {
		return b, nil
	}
	e, err := json.Marshal(extra) // sorted by name
	if err != nil {
		return nil, err
	}
	out := append(b[:len(b)-1:len(b)-1], ',')
	return append(out, e[1:]...), nil
}

// sameName is how usernames compare: as the store looks them up, by their
// lower-case form (strings.EqualFold folds more: it takes "ſ" for "s",
// and would let two entries collide that the store keeps apart).
//
//lint:ignore SA6005 lower-case equality is the store's own key, on purpose
func sameName(a, b string) bool { return strings.ToLower(a) == strings.ToLower(b) }

// Find returns the user called username (case-insensitively), or nil.
func (f *File) Find(username string) *User {
	for i := range f.Users {
		if sameName(f.Users[i].Username, username) {
			return &f.Users[i]
		}
	}
	return nil
}

// Add appends u. It fails with ErrUserExists if the name is taken (in any
// case) and with a validation error if u is not a valid user.
func (f *File) Add(u User) error {
	if f.Find(u.Username) != nil {
		return fmt.Errorf("%q: %w", u.Username, ErrUserExists)
	}
	if _, err := u.check(); err != nil {
		return err
	}
	f.Users = append(f.Users, u)
	return nil
}

// Remove deletes the user called username (case-insensitively); it fails
// with ErrUserNotFound if there is none.
func (f *File) Remove(username string) error {
	n := len(f.Users)
	f.Users = slices.DeleteFunc(f.Users, func(u User) bool { return sameName(u.Username, username) })
	if len(f.Users) == n {
		return fmt.Errorf("%q: %w", username, ErrUserNotFound)
	}
	return nil
}

// Validate checks what Open checks: every user has a username, no two share
// one (in any case), and every password is a hash this package verifies.
func (f *File) Validate() error {
	_, err := f.compile(nil, false)
	return err
}

// check validates one user and parses its hash.
func (u *User) check() (verifier, error) {
	switch {
	case u.Username == "":
		return nil, errors.New("a user has no username")
	case strings.TrimSpace(u.Username) != u.Username:
		// The login form trims what is typed: this name could never match.
		return nil, fmt.Errorf("user %q: username has leading or trailing spaces", u.Username)
	case strings.ContainsFunc(u.Username, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return nil, fmt.Errorf("user %q: username has control characters", u.Username)
	}
	for _, g := range u.Groups {
		if strings.TrimSpace(g) == "" {
			return nil, fmt.Errorf("user %q: empty group name", u.Username)
		}
	}
	v, err := parseHash(u.Password)
	if err != nil {
		return nil, fmt.Errorf("user %q: password: %w", u.Username, err)
	}
	return v, nil
}

// ReadFile reads and validates a users file. A missing file is an error
// that errors.Is(err, fs.ErrNotExist) recognises.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading users file: %w", err)
	}
	f, err := parseFile(path, data)
	if err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	return f, nil
}

// parseFile decodes data, naming the line and column of a syntax error.
func parseFile(path string, data []byte) (*File, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("users file %s is empty (want {\"users\": [...]})", path)
	}
	// The typed decode first, so that a type error's offset is the
	// file's, then the raw one for the fields this package does not know.
	var typed struct {
		Users []userFields `json:"users"`
	}
	if err := json.Unmarshal(data, &typed); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			line, col := position(data, se.Offset)
			return nil, fmt.Errorf("users file %s: line %d, column %d: %w", path, line, col, err)
		case errors.As(err, &te):
			line, col := position(data, te.Offset)
			return nil, fmt.Errorf("users file %s: line %d, column %d: %w", path, line, col, err)
		}
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	var raw struct {
		Users []json.RawMessage `json:"users"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	f := &File{Users: make([]User, len(typed.Users))}
	var err error
	if f.extra, err = extraFields(data, fileKeys); err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	for i, u := range typed.Users {
		if u.extra, err = extraFields(raw.Users[i], userKeys); err != nil {
			return nil, fmt.Errorf("users file %s: user %d: %w", path, i+1, err)
		}
		f.Users[i] = User(u)
	}
	return f, nil
}

// position turns the byte offset encoding/json reports (the bytes read
// before the error, so the offending byte is the last of them) into a
// 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	p := int(min(max(offset-1, 0), int64(len(data))))
	before := data[:p]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = p - bytes.LastIndexByte(before, '\n')
	return line, col
}

// WriteFile writes f to path atomically: a temporary file in the same
// directory, synced, then renamed over path, so Caddy never reads half a
// file. A new file gets mode 0600; an existing one keeps its owner (when
// the caller may set it) and its owner and group permissions, but never
// world access, so `sudo caddy adauth user add` leaves the file readable
// by the user Caddy runs as. A symbolic link at path is followed.
func WriteFile(path string, f *File) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("not writing %s: %w", path, err)
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')

	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	mode := fs.FileMode(0o600)
	old, err := os.Stat(path)
	switch {
	case err == nil:
		mode = old.Mode().Perm() & 0o660
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("writing users file: %w", err)
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing users file: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("writing users file: %w", err)
	}
	if old != nil {
		keepOwner(tmp, old)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("writing users file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing users file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing users file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		done = true
		return fmt.Errorf("writing users file: %w", err)
	}
	done = true
	syncDir(filepath.Dir(path))
	return nil
}

// syncDir makes a rename in dir durable; failure only loses durability.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
