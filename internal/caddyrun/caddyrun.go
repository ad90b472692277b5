// Package caddyrun builds the Caddy binary with adauth (./cmd/caddy) once
// per test run and starts real Caddy processes from Caddyfiles, so that
// end-to-end tests exercise exactly what users run: adapt, provision,
// reload and several instances sharing one storage.
package caddyrun

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// moduleRoot finds the repository root from this file's location.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Binary builds ./cmd/caddy into a temporary directory (once per process).
// ADAUTH_CADDY_BIN points at a prebuilt binary instead.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("ADAUTH_CADDY_BIN"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "adauth-caddy-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "caddy")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/caddy")
		cmd.Dir = moduleRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Instance is one running Caddy process.
type Instance struct {
	t       testing.TB
	cmd     *exec.Cmd
	dir     string
	Admin   string // admin endpoint host:port
	log     *bytes.Buffer
	logMu   *sync.Mutex
	env     []string
	Storage string // the storage root, shareable with another instance
}

// Options for Start.
type Options struct {
	// Storage is a file_system storage root; empty makes a new one.
	Storage string
	// Env is added to the process environment (e.g. ADAUTH_KEY=...).
	Env []string
}

// Start writes caddyfile (with {ADMIN} and {STORAGE} replaced) and runs
// Caddy on it until the test ends. It waits for the admin endpoint.
func Start(t testing.TB, caddyfile string, opts Options) *Instance {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	in := &Instance{t: t, dir: dir, log: new(bytes.Buffer), logMu: new(sync.Mutex), Storage: opts.Storage}
	if in.Storage == "" {
		in.Storage = filepath.Join(dir, "storage")
	}
	in.Admin = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	in.env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	in.env = append(in.env, opts.Env...)
	path := in.write(caddyfile)
	in.cmd = exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	in.cmd.Dir = moduleRoot()
	in.cmd.Env = in.env
	w := &lockedWriter{buf: in.log, mu: in.logMu}
	in.cmd.Stdout, in.cmd.Stderr = w, w
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	in.waitAdmin()
	return in
}

func (in *Instance) write(caddyfile string) string {
	caddyfile = strings.NewReplacer("{ADMIN}", in.Admin, "{STORAGE}", in.Storage).Replace(caddyfile)
	path := filepath.Join(in.dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
		in.t.Fatal(err)
	}
	return path
}

func (in *Instance) waitAdmin() {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if in.cmd.ProcessState != nil {
			break
		}
		resp, err := http.Get("http://" + in.Admin + "/config/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	in.t.Fatalf("caddy did not start; log:\n%s", in.Log())
}

// Reload replaces the running config through `caddy reload`, as an
// administrator would.
func (in *Instance) Reload(caddyfile string) {
	in.t.Helper()
	path := in.write(caddyfile)
	cmd := exec.Command(Binary(in.t), "reload", "--config", path, "--adapter", "caddyfile", "--address", in.Admin)
	cmd.Dir = moduleRoot()
	cmd.Env = in.env
	if out, err := cmd.CombinedOutput(); err != nil {
		in.t.Fatalf("caddy reload: %v\n%s\nlog:\n%s", err, out, in.Log())
	}
}

// Log returns what the process wrote so far.
func (in *Instance) Log() string {
	in.logMu.Lock()
	defer in.logMu.Unlock()
	return in.log.String()
}

// Stop ends the process.
func (in *Instance) Stop() {
	if in.cmd == nil || in.cmd.Process == nil || in.cmd.ProcessState != nil {
		return
	}
	_ = in.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = in.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = in.cmd.Process.Kill()
		<-done
	}
}

// Adapt runs `caddy adapt` on a Caddyfile and returns the JSON or the error text.
func Adapt(ctx context.Context, t testing.TB, caddyfile string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, Binary(t), "adapt", "--config", path, "--adapter", "caddyfile")
	cmd.Dir = moduleRoot()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%v: %s", err, errb.String())
	}
	return out.String(), nil
}

type lockedWriter struct {
	buf *bytes.Buffer
	mu  *sync.Mutex
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// WaitTLS waits until the instance completes a TLS handshake for
// serverName on addr: Caddy issues its internal-CA certificate just after
// start, and a client that connects before then gets a protocol error.
func (in *Instance) WaitTLS(addr, serverName string) {
	in.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		var conn *tls.Conn
		d := &net.Dialer{Timeout: 2 * time.Second}
		conn, err = tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: serverName, InsecureSkipVerify: true}) // #nosec G402 -- test readiness probe only
		if err == nil {
			conn.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	in.t.Fatalf("no TLS on %s for %s: %v\nlog:\n%s", addr, serverName, err, in.Log())
}

// PID is the Caddy process's id (for reading its memory use).
func (in *Instance) PID() int { return in.cmd.Process.Pid }
