package adauth_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-adauth/adauth"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/caddyfile_adapt")

// TestCaddyfileAdapt runs every testdata/caddyfile_adapt/*.caddyfiletest:
// a Caddyfile, a line of dashes, then either the JSON it adapts to or
// "error: <text the error must contain>". The examples' Caddyfiles are
// golden files too (examples/*.caddyfiletest name them).
func TestCaddyfileAdapt(t *testing.T) {
	files, _ := filepath.Glob("testdata/caddyfile_adapt/*.caddyfiletest")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			input, expected, ok := strings.Cut(string(raw), "\n----------\n")
			header := input
			if !ok {
				t.Fatal("no ---------- separator")
			}
			// "include <file>" as the whole input adapts a file of the repo
			// (the examples), so their golden files cannot drift from them.
			if inc, found := strings.CutPrefix(strings.TrimSpace(input), "include "); found && !strings.Contains(inc, "\n") {
				b, err := os.ReadFile(inc)
				if err != nil {
					t.Fatal(err)
				}
				input = string(b)
			}
			got, adaptErr := adapt(input)
			if want, isErr := strings.CutPrefix(strings.TrimSpace(expected), "error: "); isErr {
				if adaptErr == nil {
					t.Fatalf("adapted without the expected error %q:\n%s", want, got)
				}
				if !strings.Contains(adaptErr.Error(), want) {
					t.Fatalf("error %q does not contain %q", adaptErr, want)
				}
				return
			}
			if adaptErr != nil {
				t.Fatal(adaptErr)
			}
			if *update {
				if err := os.WriteFile(f, []byte(header+"\n----------\n"+got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if strings.TrimSpace(expected) != strings.TrimSpace(got) {
				t.Fatalf("adapted JSON differs (run go test -run TestCaddyfileAdapt -update):\n--- got\n%s\n--- want\n%s", got, expected)
			}
		})
	}
}

func adapt(input string) (string, error) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	out, warnings, err := adapter.Adapt([]byte(input), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return "", err
	}
	for _, w := range warnings {
		if strings.Contains(w.Message, "adauth") {
			return "", &adaptWarning{w.Message}
		}
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, out, "", "\t"); err != nil {
		return "", err
	}
	return buf.String(), nil
}

type adaptWarning struct{ msg string }

func (w *adaptWarning) Error() string { return "warning: " + w.msg }
