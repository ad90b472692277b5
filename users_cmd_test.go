package adauth

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/caddy-adauth/adauth/localauth"
)

// runCmd runs a freshly built command tree in-process with stdin and
// returns what it printed.
func runCmd(t *testing.T, newCmd func() *cobra.Command, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newCmd()
	var out bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SilenceUsage = true
	err := cmd.Execute()
	return out.String(), err
}

// signIn checks a password against the file as the local backend would.
func signIn(t *testing.T, path, user, pass string) (bool, error) {
	t.Helper()
	s, err := localauth.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, ok, err := s.Authenticate(t.Context(), user, pass)
	return ok, err
}

func TestUserCommands(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.json")

	// add creates the file.
	out, err := runCmd(t, newUserCmd, "s3cret pw\n", "add", "Alice", "--file", path,
		"--email", "alice@hospital.example", "--given-name", "Alice", "--family-name", "Liddell",
		"--group", "physics", "--group", "admin", "--password-stdin")
	if err != nil {
		t.Fatalf("add: %v\n%s", err, out)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file not created 0600: %v %v", fi, err)
	}
	f, err := localauth.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := f.Find("alice")
	if u == nil || u.Email != "alice@hospital.example" || strings.Join(u.Groups, ",") != "physics,admin" ||
		!strings.HasPrefix(u.Password, "$argon2id$v=19$m=47104,t=1,p=1$") {
		t.Fatalf("user written as %+v", u)
	}
	if ok, err := signIn(t, path, "alice", "s3cret pw"); !ok || err != nil {
		t.Errorf("sign-in after add: %v %v", ok, err)
	}

	if _, err := runCmd(t, newUserCmd, "pw\r\n", "add", "bob", "--file", path, "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := signIn(t, path, "bob", "pw"); !ok {
		t.Error("a CRLF line ending stayed in the password")
	}

	errorCases := []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"add existing", "x\n", []string{"add", "ALICE", "--file", path, "--password-stdin"}, "already exists"},
		{"add empty password", "\n", []string{"add", "carol", "--file", path, "--password-stdin"}, "empty password"},
		{"add no stdin at all", "", []string{"add", "carol", "--file", path, "--password-stdin"}, "empty password"},
		{"add not a terminal", "", []string{"add", "carol", "--file", path}, "--password-stdin"},
		{"add spaces", "x\n", []string{"add", " carol", "--file", path, "--password-stdin"}, "spaces"},
		{"add empty group", "x\n", []string{"add", "carol", "--file", path, "--group", "", "--password-stdin"}, "empty group"},
		{"add without --file", "x\n", []string{"add", "carol", "--password-stdin"}, `"file" not set`},
		{"add too long", strings.Repeat("x", 2000) + "\n", []string{"add", "carol", "--file", path, "--password-stdin"}, "longer than"},
		{"passwd unknown", "x\n", []string{"passwd", "nobody", "--file", path, "--password-stdin"}, `no user "nobody"`},
		{"disable unknown", "", []string{"disable", "nobody", "--file", path}, `no user "nobody"`},
		{"remove unknown", "", []string{"remove", "nobody", "--file", path}, `no user "nobody"`},
		{"list missing file", "", []string{"list", "--file", path + ".nope"}, "no such file"},
		{"passwd missing file", "x\n", []string{"passwd", "alice", "--file", path + ".nope", "--password-stdin"}, "no such file"},
		{"two names", "", []string{"remove", "a", "b", "--file", path}, "accepts 1 arg"},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCmd(t, newUserCmd, tt.stdin, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q (output %q)", err, tt.want, out)
			}
		})
	}
	if f, _ := localauth.ReadFile(path); len(f.Users) != 2 {
		t.Errorf("failed commands changed the file: %+v", f.Users)
	}

	// passwd
	if _, err := runCmd(t, newUserCmd, "new pw\n", "passwd", "ALICE", "--file", path, "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := signIn(t, path, "alice", "new pw"); !ok {
		t.Error("new password refused")
	}
	if ok, _ := signIn(t, path, "alice", "s3cret pw"); ok {
		t.Error("old password still works")
	}

	// disable, enable
	if out, err := runCmd(t, newUserCmd, "", "disable", "alice", "--file", path); err != nil || !strings.Contains(out, "disabled") {
		t.Fatalf("disable: %v %q", err, out)
	}
	if _, err := signIn(t, path, "alice", "new pw"); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("disabled user signed in: %v", err)
	}
	before, _ := os.ReadFile(path)
	if out, _ := runCmd(t, newUserCmd, "", "disable", "alice", "--file", path); !strings.Contains(out, "already disabled") {
		t.Errorf("second disable: %q", out)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a disable that changed nothing rewrote the file")
	}

	// list
	out, err = runCmd(t, newUserCmd, "", "list", "--file", path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || strings.Fields(lines[0])[0] != "USERNAME" ||
		!strings.Contains(lines[1], "Alice Liddell") || !strings.Contains(lines[1], "physics,admin") ||
		!strings.HasSuffix(lines[1], "yes") || !strings.HasPrefix(lines[2], "bob") || !strings.HasSuffix(lines[2], "no") {
		t.Errorf("list:\n%s", out)
	}
	if strings.Contains(out, "$argon2id") {
		t.Error("list shows hashes")
	}

	if _, err := runCmd(t, newUserCmd, "", "enable", "alice", "--file", path); err != nil {
		t.Fatal(err)
	}
	if ok, err := signIn(t, path, "alice", "new pw"); !ok || err != nil {
		t.Errorf("enabled user: %v %v", ok, err)
	}

	// remove
	if out, err := runCmd(t, newUserCmd, "", "remove", "Bob", "--file", path); err != nil || out != path+": removed user \"bob\"\n" {
		t.Fatalf("remove: %v %q", err, out)
	}
	if f, _ := localauth.ReadFile(path); f.Find("bob") != nil || f.Find("alice") == nil {
		t.Errorf("after remove: %+v", f.Users)
	}
}

func TestImportDjangoCommand(t *testing.T) {
	dump := filepath.Join("localauth", "testdata", "qatrack-dumpdata.json")
	path := filepath.Join(t.TempDir(), "users.json")
	// An existing local user that the dump also has.
	if _, err := runCmd(t, newUserCmd, "break glass\n", "add", "admin", "--file", path, "--password-stdin"); err != nil {
		t.Fatal(err)
	}

	out, err := runCmd(t, newImportDjangoCmd, "", dump, "--file", path)
	if err == nil || !strings.Contains(err.Error(), "admin") || !strings.Contains(err.Error(), "--replace") {
		t.Fatalf("import over an existing user: %v %q", err, out)
	}
	if f, _ := localauth.ReadFile(path); len(f.Users) != 1 {
		t.Fatalf("a refused import wrote the file: %+v", f.Users)
	}

	out, err = runCmd(t, newImportDjangoCmd, "", dump, "--file", path, "--replace")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "imported 4 users") || !strings.Contains(out, "1 replaced, 1 disabled, 1 without a usable password") {
		t.Errorf("output %q", out)
	}
	f, err := localauth.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Users) != 4 || !strings.HasPrefix(f.Find("admin").Password, "pbkdf2_sha256$") || !f.Find("therapist1").Disabled {
		t.Errorf("imported %+v", f.Users)
	}
	if ok, err := signIn(t, path, "jsmith", "Linac-QA-2019"); !ok || err != nil {
		t.Errorf("imported user: %v %v", ok, err)
	}

	// Into a new file.
	path2 := filepath.Join(t.TempDir(), "new.json")
	if _, err := runCmd(t, newImportDjangoCmd, "", dump, "--file", path2); err != nil {
		t.Fatal(err)
	}
	if _, err := runCmd(t, newImportDjangoCmd, "", dump+".nope", "--file", path2); err == nil {
		t.Error("missing dump accepted")
	}
}

func TestKeyCommand(t *testing.T) {
	a, err := runCmd(t, newKeyCmd, "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := runCmd(t, newKeyCmd, "")
	key, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(a))
	if err != nil || len(key) != 32 {
		t.Errorf("key %q: %v (%d bytes)", a, err, len(key))
	}
	if a == b {
		t.Error("two keys are equal")
	}
}

func TestSubcommandsRegistered(t *testing.T) {
	names := map[string]bool{}
	for _, c := range subcommands {
		names[c().Name()] = true
	}
	for _, n := range []string{"user", "import-django", "key"} {
		if !names[n] {
			t.Errorf("%s not registered (have %v)", n, names)
		}
	}
}
