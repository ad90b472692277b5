package localauth

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenErrors(t *testing.T) {
	bc := lowBcrypt(t, "x")
	tests := []struct {
		name, content string
		want          []string
	}{
		{"empty", "", []string{"is empty"}},
		{"not an object", `[]`, []string{"line 1, column 1", "cannot unmarshal array"}},
		{"syntax error line 3", "{\n  \"users\": [\n    {\"username\": \"alice\",, }\n  ]\n}\n", []string{"line 3, column 26", "invalid character ','"}},
		{"trailing comma line 4", "{\"users\": [\n {\"username\": \"a\",\n  \"password\": \"" + bc + "\"},\n ]\n}", []string{"line 4, column 2"}},
		{"truncated", "{\"users\": [\n", []string{"unexpected end of JSON input"}},
		{"type error", "{\"users\": [\n {\"username\": \"a\", \"groups\": \"physics\"}]}", []string{"line 2", "groups"}},
		{"no username", `{"users": [{"password": "` + bc + `"}]}`, []string{"a user has no username"}},
		{"spaces in username", `{"users": [{"username": " alice", "password": "` + bc + `"}]}`, []string{`" alice"`, "spaces"}},
		{"duplicate", `{"users": [{"username": "alice", "password": "` + bc + `"}, {"username": "ALICE", "password": "` + bc + `"}]}`, []string{`"ALICE"`, "already exists"}},
		{"plaintext", `{"users": [{"username": "bob", "password": "hunter2"}]}`, []string{`user "bob"`, "plaintext"}},
		{"no password", `{"users": [{"username": "bob"}]}`, []string{`user "bob"`, "empty password hash"}},
		{"bad hash", `{"users": [{"username": "carol", "password": "$argon2id$v=19$m=64,t=1,p=1$x$y"}]}`, []string{`user "carol"`, "argon2id hash"}},
		{"empty group", `{"users": [{"username": "dave", "password": "` + bc + `", "groups": [""]}]}`, []string{`user "dave"`, "empty group"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, tt.content)
			s, err := Open(path)
			if err == nil {
				s.Close()
				t.Fatal("Open accepted the file")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if _, err2 := ReadFile(path); err2 == nil {
				t.Error("ReadFile accepted the file")
			}
		})
	}
}

func TestOpenMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.json")
	_, err := Open(path)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("Open of a missing file: %v", err)
	}
	_, err = ReadFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a missing file: %v", err)
	}
}

func TestPosition(t *testing.T) {
	data := []byte("ab\ncde\n\nf")
	tests := []struct {
		offset          int64
		wantLine, wantC int
	}{
		{0, 1, 1}, {1, 1, 1}, {2, 1, 2}, {4, 2, 1}, {6, 2, 3}, {8, 3, 1}, {9, 4, 1}, {100, 4, 2},
	}
	for _, tt := range tests {
		if l, c := position(data, tt.offset); l != tt.wantLine || c != tt.wantC {
			t.Errorf("position(%d) = %d:%d, want %d:%d", tt.offset, l, c, tt.wantLine, tt.wantC)
		}
	}
}

func TestFileEditing(t *testing.T) {
	bc := lowBcrypt(t, "pw")
	path := writeTemp(t, `{
  "version": 2,
  "users": [
    {"username": "alice", "password": "`+bc+`", "groups": ["physics"], "phone": "1234", "disabled": false},
    {"username": "Bob", "password": "!", "email": "bob@x"}
  ]
}`)
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if u := f.Find("ALICE"); u == nil || u.Groups[0] != "physics" {
		t.Fatalf("Find(ALICE) = %+v", u)
	}
	if f.Find("carol") != nil {
		t.Error("Find(carol) found someone")
	}
	if err := f.Add(User{Username: "bob", Password: bc}); !errors.Is(err, ErrUserExists) {
		t.Errorf("Add(bob) = %v, want ErrUserExists", err)
	}
	if err := f.Add(User{Username: "carol", Password: "plain"}); err == nil || !strings.Contains(err.Error(), "carol") {
		t.Errorf("Add with a plaintext password = %v", err)
	}
	if err := f.Add(User{Username: "carol", Password: bc, GivenName: "Carol"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Remove("BOB"); err != nil {
		t.Fatal(err)
	}
	if err := f.Remove("bob"); !errors.Is(err, ErrUserNotFound) {
		t.Errorf("second Remove(bob) = %v, want ErrUserNotFound", err)
	}
	f.Find("alice").Disabled = true

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 (world access dropped)", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}

	data, _ := os.ReadFile(path)
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["version"] != float64(2) {
		t.Errorf("unknown top-level field lost: %s", data)
	}
	if !strings.Contains(string(data), `"phone": "1234"`) {
		t.Errorf("unknown user field lost: %s", data)
	}
	g, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Users) != 2 || !g.Find("alice").Disabled || g.Find("carol").GivenName != "Carol" || g.Find("bob") != nil {
		t.Errorf("read back %+v", g.Users)
	}

	// A new file is 0600; an invalid File is not written.
	newPath := filepath.Join(t.TempDir(), "new.json")
	if err := WriteFile(newPath, &File{}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(newPath); fi.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v, want 0600", fi.Mode().Perm())
	}
	if data, _ := os.ReadFile(newPath); strings.TrimSpace(string(data)) != "{\n  \"users\": []\n}" {
		t.Errorf("empty file written as %q", data)
	}
	bad := &File{Users: []User{{Username: "x", Password: "plain"}}}
	if err := WriteFile(newPath, bad); err == nil {
		t.Error("WriteFile wrote an invalid file")
	}
}

func TestWriteFileFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.json")
	link := filepath.Join(dir, "users.json")
	if err := os.WriteFile(real, []byte(`{"users": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	f := &File{}
	if err := f.Add(User{Username: "a", Password: "!"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(link, f); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi, err)
	}
	if g, err := ReadFile(real); err != nil || g.Find("a") == nil {
		t.Errorf("the target was not written: %v", err)
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add([]byte(`{"users": [{"username": "a", "password": "!", "groups": ["g"], "x": 1}], "y": [1]}`))
	f.Add([]byte("{\n  \"users\": [\n    {\"username\": \"alice\",, }\n  ]\n}\n"))
	f.Add([]byte(`{"users": [null, {"username": 5}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := parseFile("users.json", data)
		if err != nil {
			return
		}
		if file.Validate() != nil {
			return
		}
		// What validates survives a round trip.
		b, err := json.Marshal(file)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseFile("users.json", b)
		if err != nil {
			t.Fatalf("re-reading %s: %v", b, err)
		}
		if err := again.Validate(); err != nil || len(again.Users) != len(file.Users) {
			t.Fatalf("round trip of %s: %v", b, err)
		}
	})
}
