package localauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// djangoObject is one record of `manage.py dumpdata`.
type djangoObject struct {
	Model  string          `json:"model"`
	PK     json.RawMessage `json:"pk"`
	Fields json.RawMessage `json:"fields"`
}

type djangoGroup struct {
	Name string `json:"name"`
}

type djangoUser struct {
	Username  string            `json:"username"`
	Password  string            `json:"password"`
	Email     string            `json:"email"`
	FirstName string            `json:"first_name"`
	LastName  string            `json:"last_name"`
	IsActive  *bool             `json:"is_active"`
	Groups    []json.RawMessage `json:"groups"`
}

// ImportDjango turns the output of
//
//	manage.py dumpdata auth.user auth.group --indent 2
//
// (QATrack+'s users and groups) into users for a users file, in the order
// of the dump. Usernames are lower-cased; names and email are copied;
// is_active=false becomes Disabled; password hashes (pbkdf2_sha256 by
// default in Django) are kept as they are, and an unusable one ("!…") stays
// unusable. Groups may be ids (resolved through the auth.group records) or
// natural keys (["name"], from --natural-foreign). Records of other models
// are ignored. An unknown group id, a hash this package cannot verify or
// two users whose names differ only in case are errors naming the user.
func ImportDjango(dumpdata []byte) ([]User, error) {
	var objs []djangoObject
	if err := json.Unmarshal(dumpdata, &objs); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(dumpdata, se.Offset)
			return nil, fmt.Errorf("django dump: line %d, column %d: %w", line, col, err)
		}
		return nil, fmt.Errorf("django dump: want a JSON array of records: %w", err)
	}
	names := map[string]string{} // group pk (as JSON text) -> name
	for _, o := range objs {
		if o.Model != "auth.group" {
			continue
		}
		var g djangoGroup
		if err := json.Unmarshal(o.Fields, &g); err != nil {
			return nil, fmt.Errorf("django dump: group %s: %w", o.PK, err)
		}
		if strings.TrimSpace(g.Name) == "" {
			return nil, fmt.Errorf("django dump: group %s has no name", o.PK)
		}
		names[string(bytes.TrimSpace(o.PK))] = g.Name
	}

	var users []User
	seen := map[string]bool{}
	for _, o := range objs {
		if o.Model != "auth.user" {
			continue
		}
		var du djangoUser
		if err := json.Unmarshal(o.Fields, &du); err != nil {
			return nil, fmt.Errorf("django dump: user %s: %w", o.PK, err)
		}
		name := strings.ToLower(strings.TrimSpace(du.Username))
		if name == "" {
			return nil, fmt.Errorf("django dump: user %s has no username", o.PK)
		}
		if seen[name] {
			return nil, fmt.Errorf("django dump: user %q: %w (usernames are matched case-insensitively)", name, ErrUserExists)
		}
		seen[name] = true
		u := User{
			Username:   name,
			Password:   du.Password,
			Email:      du.Email,
			GivenName:  du.FirstName,
			FamilyName: du.LastName,
			Groups:     []string{},
			Disabled:   du.IsActive != nil && !*du.IsActive,
		}
		if u.Password == "" {
			u.Password = "!" // Django treats an empty password as unusable
		}
		for _, ref := range du.Groups {
			g, err := groupName(ref, names)
			if err != nil {
				return nil, fmt.Errorf("django dump: user %q: %w", name, err)
			}
			u.Groups = append(u.Groups, g)
		}
		if _, err := u.check(); err != nil {
			return nil, fmt.Errorf("django dump: %w", err)
		}
		users = append(users, u)
	}
	return users, nil
}

// groupName resolves a user's group reference: a primary key, or a natural
// key ["name"].
func groupName(ref json.RawMessage, names map[string]string) (string, error) {
	var natural []string
	if json.Unmarshal(ref, &natural) == nil {
		if len(natural) != 1 || strings.TrimSpace(natural[0]) == "" {
			return "", fmt.Errorf("group reference %s: want an id or [\"name\"]", ref)
		}
		return natural[0], nil
	}
	if n, ok := names[string(bytes.TrimSpace(ref))]; ok {
		return n, nil
	}
	return "", fmt.Errorf("group id %s is not among the dump's auth.group records (dump auth.group too)", ref)
}
