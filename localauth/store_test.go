package localauth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-adauth/adauth/groups"
)

// usersJSON builds a users file from users.
func usersJSON(t testing.TB, users ...User) string {
	t.Helper()
	b, err := File{Users: users}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func openTemp(t *testing.T, content string) (*Store, string) {
	t.Helper()
	path := writeTemp(t, content)
	s, err := open(path, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestAuthenticate(t *testing.T) {
	bc := lowBcrypt(t, "bcrypt pw")
	s, _ := openTemp(t, usersJSON(t,
		User{Username: "Alice", Password: bc, Email: "alice@hospital.example", GivenName: "Alice", FamilyName: "Liddell", Groups: []string{"physics", "admin"}},
		User{Username: "bob", Password: caddyArgon2idLow},
		User{Username: "jsmith", Password: djangoSHA256, Groups: []string{"Physics"}},
		User{Username: "old", Password: djangoSHA1},
		User{Username: "ldapuser", Password: "!Wq3cN0dGk8sR1uY5zTb7xLm2pVe9hJa4fQ6oKi0S"},
		User{Username: "gone", Password: bc, Disabled: true},
	))
	tests := []struct {
		name, user, pass string
		wantOK           bool
		wantID           string
		wantDisabled     bool
	}{
		{"bcrypt", "Alice", "bcrypt pw", true, "alice", false},
		{"bcrypt wrong", "alice", "bcrypt pw!", false, "", false},
		{"case-insensitive name", "ALICE", "bcrypt pw", true, "alice", false},
		{"password is case-sensitive", "alice", "BCRYPT PW", false, "", false},
		{"argon2id", "BoB", "correct horse", true, "bob", false},
		{"argon2id wrong", "bob", "correct horsE", false, "", false},
		{"pbkdf2_sha256", "JSmith", "correct horse", true, "jsmith", false},
		{"pbkdf2_sha256 wrong", "jsmith", "correct", false, "", false},
		{"pbkdf2_sha1", "old", "lètmein", true, "old", false},
		{"pbkdf2_sha1 wrong", "old", "letmein", false, "", false},
		{"unusable", "ldapuser", "", false, "", false},
		{"unusable with its own text", "ldapuser", "!Wq3cN0dGk8sR1uY5zTb7xLm2pVe9hJa4fQ6oKi0S", false, "", false},
		{"unknown", "mallory", "bcrypt pw", false, "", false},
		{"disabled wrong password", "gone", "nope", false, "", false},
		{"disabled right password", "GONE", "bcrypt pw", false, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok, err := s.Authenticate(t.Context(), tt.user, tt.pass)
			if tt.wantDisabled {
				var de *AccountDisabledError
				if !errors.As(err, &de) || de.Username != "gone" {
					t.Fatalf("err = %v, want *AccountDisabledError", err)
				}
				var um interface{ UserMessage() string }
				if !errors.As(err, &um) || !strings.Contains(um.UserMessage(), "disabled") {
					t.Errorf("no user message in %v", err)
				}
				if ok {
					t.Error("ok with a disabled account")
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if ok != tt.wantOK || id.ID != tt.wantID {
				t.Errorf("got (%q, %v), want (%q, %v)", id.ID, ok, tt.wantID, tt.wantOK)
			}
		})
	}

	id, _, _ := s.Authenticate(t.Context(), "alice", "bcrypt pw")
	want := groups.Identity{ID: "alice", Email: "alice@hospital.example", Name: "Alice Liddell", GivenName: "Alice",
		FamilyName: "Liddell", Groups: []groups.Group{{Name: "physics"}, {Name: "admin"}}}
	if fmt.Sprint(id) != fmt.Sprint(want) {
		t.Errorf("identity %+v, want %+v", id, want)
	}
	// The caller may keep and change the identity without touching the store.
	id.Groups[0].Name = "changed"
	if id2, _, _ := s.Authenticate(t.Context(), "alice", "bcrypt pw"); id2.Groups[0].Name != "physics" {
		t.Error("the identity's groups alias the store's")
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, ok, err := s.Authenticate(ctx, "alice", "bcrypt pw"); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: ok=%v err=%v", ok, err)
	}
}

func TestDummyKind(t *testing.T) {
	bc4, bc5 := lowBcrypt(t, "x"), func() string {
		b, _ := bcrypt.GenerateFromPassword([]byte("x"), 5)
		return string(b)
	}()
	bc10, _ := bcrypt.GenerateFromPassword([]byte("x"), 10)
	tests := []struct {
		name  string
		users []User
		want  string
	}{
		{"empty file", nil, "bcrypt cost=10"},
		{"only unusable", []User{{Username: "a", Password: "!"}}, "bcrypt cost=10"},
		{"one argon2id", []User{{Username: "a", Password: caddyArgon2idLow}}, "argon2id m=64,t=1,p=1,len=32"},
		{"most common wins", []User{
			{Username: "a", Password: bc4}, {Username: "b", Password: djangoSHA256},
			{Username: "c", Password: djangoSHA256}, {Username: "d", Password: bc5},
		}, "pbkdf2_sha256 i=1000"},
		{"tie: first seen, even against the default", []User{
			{Username: "a", Password: caddyArgon2idLow}, {Username: "b", Password: string(bc10)},
			{Username: "c", Password: caddyArgon2idLow}, {Username: "d", Password: string(bc10)},
		}, "argon2id m=64,t=1,p=1,len=32"},
		{"tie: first seen", []User{
			{Username: "a", Password: bc5}, {Username: "b", Password: bc4},
			{Username: "c", Password: bc4}, {Username: "d", Password: bc5},
		}, "bcrypt cost=5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap, err := (&File{Users: tt.users}).compile(nil, true)
			if err != nil {
				t.Fatal(err)
			}
			if got := snap.dummy.kind(); got != tt.want {
				t.Errorf("dummy %q, want %q", got, tt.want)
			}
		})
	}
}

// TestUnknownUserTiming checks that a name that does not exist costs what a
// known name with a wrong password costs: both medians within a factor of
// two of each other. Skipping the hash for unknown names would make them
// hundreds of times faster.
func TestUnknownUserTiming(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("timing test: not with -short or -race")
	}
	var users []User
	for i := range 3 {
		h, err := bcrypt.GenerateFromPassword([]byte("pw"), 8)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, User{Username: fmt.Sprintf("user%d", i), Password: string(h)})
	}
	users = append(users, User{Username: "cheap", Password: lowBcrypt(t, "pw")})
	s, _ := openTemp(t, usersJSON(t, users...))

	const tries = 30
	var known, unknown []time.Duration
	measure := func(user string) time.Duration {
		start := time.Now()
		if _, ok, err := s.Authenticate(t.Context(), user, "wrong"); ok || err != nil {
			t.Fatalf("%s: ok=%v err=%v", user, ok, err)
		}
		return time.Since(start)
	}
	for i := range tries {
		// Interleaved, so that load on the machine falls on both alike.
		known = append(known, measure(fmt.Sprintf("user%d", i%3)))
		unknown = append(unknown, measure(fmt.Sprintf("nobody%d", i)))
	}
	mk, mu := median(known), median(unknown)
	t.Logf("median over %d tries: known-wrong %v, unknown %v (ratio %.2f)", tries, mk, mu, float64(mu)/float64(mk))
	if mu < mk/2 || mk < mu/2 {
		t.Errorf("unknown users take %v, known users %v: not within a factor of 2", mu, mk)
	}
}

func TestUnusableTiming(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("timing test: not with -short or -race")
	}
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), 8)
	s, _ := openTemp(t, usersJSON(t,
		User{Username: "a", Password: string(h)},
		User{Username: "ldap", Password: "!unusable"},
	))
	var known, unusableT []time.Duration
	for range 15 {
		for _, pair := range []struct {
			user string
			into *[]time.Duration
		}{{"a", &known}, {"ldap", &unusableT}} {
			start := time.Now()
			s.Authenticate(t.Context(), pair.user, "wrong")
			*pair.into = append(*pair.into, time.Since(start))
		}
	}
	mk, mu := median(known), median(unusableT)
	t.Logf("median: known-wrong %v, unusable password %v", mk, mu)
	if mu < mk/2 {
		t.Errorf("an unusable password takes %v, a real one %v", mu, mk)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func TestReload(t *testing.T) {
	s, path := openTemp(t, usersJSON(t, User{Username: "alice", Password: lowBcrypt(t, "old")}))
	errs := make(chan error, 10)
	s.OnReloadError(func(err error) { errs <- err })

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	works := func(user, pass string) func() bool {
		return func() bool {
			_, ok, _ := s.Authenticate(t.Context(), user, pass)
			return ok
		}
	}

	// An atomic replacement (what WriteFile and most editors do).
	f := &File{Users: []User{{Username: "alice", Password: lowBcrypt(t, "new")}}}
	if err := WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	waitFor("the new password", works("alice", "new"))
	if works("alice", "old")() {
		t.Error("the old password still works")
	}

	// A write in place.
	content := usersJSON(t, User{Username: "alice", Password: lowBcrypt(t, "new")},
		User{Username: "bob", Password: lowBcrypt(t, "bob pw")})
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("the new user", works("bob", "bob pw"))

	// A broken file keeps the last good users and is reported once, with
	// its name and the line of the error.
	if err := os.WriteFile(path, []byte("{\n  \"users\": [\n    {\"username\": \"x\"\n  ]\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 4") {
			t.Errorf("reload error %q does not name the file and line 4", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reload error reported")
	}
	if !works("alice", "new")() || !works("bob", "bob pw")() {
		t.Error("the last good users were dropped")
	}
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-errs:
		t.Errorf("the same broken file was reported twice: %v", err)
	default:
	}

	// An invalid (but well-formed) file, then a removed one.
	if err := os.WriteFile(path, []byte(`{"users": [{"username": "eve", "password": "plain"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; !strings.Contains(err.Error(), `user "eve"`) {
		t.Errorf("reload error %q does not name the user", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reload error %v, want not-exist", err)
	}
	if !works("alice", "new")() {
		t.Error("the last good users were dropped")
	}

	// Fixed again.
	if err := WriteFile(path, &File{Users: []User{{Username: "carol", Password: lowBcrypt(t, "c")}}}); err != nil {
		t.Fatal(err)
	}
	waitFor("the fixed file", works("carol", "c"))

	// After Close the file is no longer read.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := WriteFile(path, &File{Users: []User{{Username: "dan", Password: lowBcrypt(t, "d")}}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if works("dan", "d")() || !works("carol", "c")() {
		t.Error("the file was read after Close")
	}
}

func TestOpenPollsEverySecond(t *testing.T) {
	// Open itself, with its real interval.
	path := writeTemp(t, usersJSON(t))
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := WriteFile(path, &File{Users: []User{{Username: "a", Password: lowBcrypt(t, "a")}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(4 * time.Second)
	for {
		if _, ok, _ := s.Authenticate(t.Context(), "a", "a"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the change was not picked up within 4s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestVerifiedCredentialsRemembered: a password that matched is not hashed
// again (HTTP Basic sends it with every request), a wrong one always is,
// and a change to the users file forgets everything: a changed password
// or a disabled account is never answered from memory.
func TestVerifiedCredentialsRemembered(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("right"), 11)
	if err != nil {
		t.Fatal(err)
	}
	s, path := openTemp(t, usersJSON(t, User{Username: "api", Password: string(hash)}))
	check := func(password string) (ok bool, took time.Duration, err error) {
		start := time.Now()
		_, ok, err = s.Authenticate(t.Context(), "API", password)
		return ok, time.Since(start), err
	}
	ok, first, _ := check("right")
	if !ok {
		t.Fatal("right password refused")
	}
	ok, again, _ := check("right")
	if !ok || again > first/10 {
		t.Fatalf("second check of a matched password took %v (first %v): not remembered", again, first)
	}
	for range 2 {
		if ok, took, _ := check("wrong"); ok || took < first/3 {
			t.Fatalf("wrong password: ok=%v in %v (a hash takes %v): answered from memory", ok, took, first)
		}
	}
	t.Logf("bcrypt cost 11: first check %v, remembered %v", first, again)

	// Disabled in the file, same hash: the right password now says so.
	snap := s.users.Load()
	if err := WriteFile(path, &File{Users: []User{{Username: "api", Password: string(hash), Disabled: true}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.users.Load() == snap {
		if time.Now().After(deadline) {
			t.Fatal("the file was not re-read")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var de *AccountDisabledError
	if ok, _, err := check("right"); ok || !errors.As(err, &de) {
		t.Fatalf("disabled account: ok=%v err=%v", ok, err)
	}
	// A new password: the old one no longer works, though it was remembered.
	snap = s.users.Load()
	if err := WriteFile(path, &File{Users: []User{{Username: "api", Password: lowBcrypt(t, "new")}}}); err != nil {
		t.Fatal(err)
	}
	for s.users.Load() == snap {
		if time.Now().After(deadline) {
			t.Fatal("the file was not re-read")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if ok, _, _ := check("right"); ok {
		t.Fatal("the old password still works after the file changed")
	}
}
