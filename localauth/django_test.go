package localauth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImportDjango(t *testing.T) {
	dump, err := os.ReadFile(filepath.Join("testdata", "qatrack-dumpdata.json"))
	if err != nil {
		t.Fatal(err)
	}
	users, err := ImportDjango(dump)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		username, email, given, family, groups string
		disabled                               bool
		hashPrefix                             string
	}{
		{"admin", "qa-admin@hospital.example", "", "", "QA Admin", false, "pbkdf2_sha256$870000$"},
		{"jsmith", "jane.smith@hospital.example", "Jane", "Smith", "Physics,QA Admin", false, "pbkdf2_sha256$36000$"},
		{"therapist1", "", "Tom", "O'Brien", "Therapists", true, "pbkdf2_sha256$260000$"},
		{"mbrown", "mark.brown@hospital.example", "Mark", "Brown", "Physics", false, "!"},
	}
	if len(users) != len(want) {
		t.Fatalf("%d users, want %d: %+v", len(users), len(want), users)
	}
	for i, w := range want {
		u := users[i]
		if u.Username != w.username || u.Email != w.email || u.GivenName != w.given || u.FamilyName != w.family ||
			strings.Join(u.Groups, ",") != w.groups || u.Disabled != w.disabled || !strings.HasPrefix(u.Password, w.hashPrefix) {
			t.Errorf("user %d = %+v, want %+v", i, u, w)
		}
	}

	// The imported file signs QATrack+'s users in with their passwords.
	path := filepath.Join(t.TempDir(), "users.json")
	if err := WriteFile(path, &File{Users: users}); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id, ok, err := s.Authenticate(t.Context(), "JSmith", "Linac-QA-2019")
	if !ok || err != nil || id.ID != "jsmith" || id.Name != "Jane Smith" {
		t.Errorf("jsmith: %+v %v %v", id, ok, err)
	}
	if _, ok, err := s.Authenticate(t.Context(), "jsmith", "linac-qa-2019"); ok || err != nil {
		t.Errorf("jsmith with a wrong password: %v %v", ok, err)
	}
}

func TestImportDjangoErrors(t *testing.T) {
	user := func(fields string) string {
		return `{"model": "auth.user", "pk": 7, "fields": {` + fields + `}}`
	}
	ok := `"username": "a", "password": "` + djangoSHA256 + `"`
	tests := []struct {
		name, dump, want string
	}{
		{"not json", "[\n{\"model\": \n", "line 2"},
		{"not an array", `{"model": "auth.user"}`, "want a JSON array"},
		{"unknown group", "[" + user(ok+`, "groups": [9]`) + "]", `user "a": group id 9`},
		{"bad natural key", "[" + user(ok+`, "groups": [["a", "b"]]`) + "]", "group reference"},
		{"no username", "[" + user(`"password": "!"`) + "]", "user 7 has no username"},
		{"unsupported hash", "[" + user(`"username": "b", "password": "md5$x$y"`) + "]", `user "b"`},
		{"duplicate", "[" + user(ok) + "," + user(`"username": "A", "password": "!"`) + "]", `"a"`},
		{"group without name", `[{"model": "auth.group", "pk": 1, "fields": {}}]`, "group 1 has no name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ImportDjango([]byte(tt.dump))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestImportDjangoNaturalKeys(t *testing.T) {
	// dumpdata --natural-foreign names groups instead of numbering them;
	// other models in the dump are skipped; an empty password is unusable.
	dump := `[
  {"model": "contenttypes.contenttype", "pk": 1, "fields": {"app_label": "qa", "model": "test"}},
  {"model": "auth.user", "pk": 1, "fields": {"username": "Ann", "password": "", "is_active": true, "groups": [["Physics"]]}}
]`
	users, err := ImportDjango([]byte(dump))
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0].Username != "ann" || users[0].Password != "!" || users[0].Groups[0] != "Physics" {
		t.Errorf("users %+v", users)
	}
}
