// Package testenv decides whether a test that needs a real server runs, skips or fails.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireServers reports whether CI demands every real-server test to run
// (ADAUTH_REQUIRE_SERVERS=1): a missing server is then a failure, not a skip.
func RequireServers() bool { return os.Getenv("ADAUTH_REQUIRE_SERVERS") == "1" }

// NeedCommand returns the path of a command a test needs, skipping the test
// when it is absent, or failing it when RequireServers says so.
func NeedCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if RequireServers() {
			t.Fatalf("%s is required (ADAUTH_REQUIRE_SERVERS=1) but not installed: %v", name, err)
		}
		t.Skipf("%s not installed; set ADAUTH_REQUIRE_SERVERS=1 to make this a failure", name)
	}
	return p
}
