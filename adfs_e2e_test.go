package adauth_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-adauth/adauth/internal/adfstest"
	"github.com/caddy-adauth/adauth/internal/caddyrun"
)

// TestEndToEndADFS runs a real Caddy against the AD FS emulator (trusted
// through ca_file), with AD FS down when Caddy starts: Caddy must start,
// the sign-in must say the service is unavailable, then work once AD FS is
// back, hand the identity to the upstream, and single logout must end the
// AD FS session.
func TestEndToEndADFS(t *testing.T) {
	up := echoUpstream(t)
	port := caddyrun.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	emu := adfstest.New(t, []adfstest.User{
		{Username: "alice", Password: "pw", GivenName: "Alice", FamilyName: "Andersen", Email: "alice@hospital.example", Groups: []string{"QA-Physicists"}},
		{Username: "bob", Password: "pw", WinAccountName: "bob", Groups: []string{"QA-Physicists", "QA-Admins"}},
	}, []adfstest.Client{{ID: "qatrackplus", Secret: "s3cret", RedirectURIs: []string{base + "/adauth/callback"}}})
	emu.SetDown(true)
	cf := fmt.Sprintf(`{
	admin {ADMIN}
	storage file_system {STORAGE}
	auto_https off
}
http://127.0.0.1:%d {
	adauth {
		adfs {
			server           %s
			client_id        qatrackplus
			client_secret    {env.ADFS_SECRET}
			relying_party_id qatrackplus
			ca_file          %s
			button           "Hospital account"
			single_logout
		}
		groups {
			map "QA-Admins" admin
			map "QA-Physicists" physics
			qualify "QA-Physicists"
		}
	}
	adauth_require /admin/* admin
	reverse_proxy %s
}
`, port, emu.Host, emu.CAFile, strings.TrimPrefix(up.URL, "http://"))
	in := caddyrun.Start(t, cf, caddyrun.Options{Env: []string{"ADFS_SECRET=s3cret"}})
	html := map[string]string{"Accept": "text/html"}
	c := client(t)

	resp, body := do(t, c, "GET", base+"/adauth/login?next=/qa/", nil, html)
	if resp.StatusCode != 200 || !strings.Contains(body, `id="sso"`) || !strings.Contains(body, "Hospital account") {
		t.Fatalf("login page: %d\n%s", resp.StatusCode, body)
	}
	resp, body = do(t, c, "GET", base+"/adauth/adfs?next=/qa/", nil, html)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "could not be reached") {
		t.Fatalf("AD FS down: %d\n%s\n%s", resp.StatusCode, body, in.Log())
	}
	emu.SetDown(false)

	signIn := func(c *http.Client, user string) *http.Response {
		t.Helper()
		var resp *http.Response
		deadline := time.Now().Add(15 * time.Second)
		for { // the failed discovery is remembered for a few seconds
			resp, _ = do(t, c, "GET", base+"/adauth/adfs?next=/qa/", nil, html)
			if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("start: %d\n%s", resp.StatusCode, in.Log())
		}
		cb, err := emu.SignIn(resp.Header.Get("Location"), user, "pw")
		if err != nil {
			t.Fatal(err)
		}
		resp, body := do(t, c, "GET", cb.String(), nil, html)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/qa/" {
			t.Fatalf("callback: %d %s\n%s", resp.StatusCode, body, in.Log())
		}
		return resp
	}
	signIn(c, "alice")
	_, body = do(t, c, "GET", base+"/qa/", nil, map[string]string{"X-Remote-User": "bob"})
	var saw upstreamSaw
	if err := json.Unmarshal([]byte(body), &saw); err != nil {
		t.Fatal(body)
	}
	want := map[string][]string{
		"X-Remote-User": {"alice"}, "X-Remote-Email": {"alice@hospital.example"},
		"X-Remote-Name": {"Alice Andersen"}, "X-Remote-Groups": {"physics"},
	}
	if got := saw.identityHeaders(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("identity at upstream = %v, want %v", got, want)
	}
	if resp, _ := do(t, c, "GET", base+"/admin/", nil, html); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("alice at /admin/: %d", resp.StatusCode)
	}
	cb := client(t)
	signIn(cb, "bob")
	if resp, _ := do(t, cb, "GET", base+"/admin/", nil, html); resp.StatusCode != http.StatusOK {
		t.Fatalf("bob at /admin/: %d", resp.StatusCode)
	}

	// Single logout: the session ends here and at AD FS.
	resp, _ = do(t, c, "POST", base+"/adauth/logout", url.Values{}, nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc.Host != emu.Host || loc.Path != "/adfs/oauth2/logout" {
		t.Fatalf("logout: %d %s", resp.StatusCode, loc)
	}
	r, err := emu.Client().Get(loc.String())
	if err == nil {
		r.Body.Close()
	}
	if len(emu.Hits("/adfs/oauth2/logout")) != 1 {
		t.Fatal("AD FS sign-out not reached")
	}
	if resp, _ := do(t, c, "GET", base+"/adauth/whoami", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("whoami after logout: %d", resp.StatusCode)
	}
	// No code or token in Caddy's log.
	if log := in.Log(); strings.Contains(log, "eyJ") || strings.Contains(log, "code=") {
		t.Fatalf("a token or code reached the log:\n%s", log)
	}
}

// TestCheckADFSCommand runs `caddy adauth check-adfs` on a Caddyfile.
func TestCheckADFSCommand(t *testing.T) {
	emu := adfstest.New(t, nil, nil)
	dir := t.TempDir()
	cf := filepath.Join(dir, "Caddyfile")
	body := fmt.Sprintf("http://127.0.0.1:1 {\n\tadauth {\n\t\tadfs {\n\t\t\tserver %s\n\t\t\tclient_id qa\n\t\t\tclient_secret {env.CHECK_ADFS_SECRET}\n\t\t\tca_file %s\n\t\t}\n\t}\n}\n", emu.Host, emu.CAFile)
	if err := os.WriteFile(cf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func() (string, error) {
		cmd := exec.Command(caddyrun.Binary(t), "adauth", "check-adfs", "--config", cf)
		cmd.Env = append(os.Environ(), "HOME="+dir, "CHECK_ADFS_SECRET=s3cret")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run()
	if err != nil || !strings.Contains(out, "ok    discovery") || !strings.Contains(out, emu.KeyID()) || !strings.Contains(out, "clock skew") {
		t.Fatalf("check-adfs: %v\n%s", err, out)
	}
	emu.SetDown(true)
	if out, err = run(); err == nil || !strings.Contains(out, "FAIL") {
		t.Fatalf("check-adfs with AD FS down: %v\n%s", err, out)
	}
}
