package serverproc

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func newProc(t *testing.T) *Proc {
	return &Proc{Name: "sh", LogFile: filepath.Join(t.TempDir(), "log"), Timeout: 2 * time.Second,
		Poll: 10 * time.Millisecond}
}

func TestStartStopRestart(t *testing.T) {
	p := newProc(t)
	builds := 0
	sh := func() (*exec.Cmd, error) { builds++; return exec.Command("sh", "-c", "echo up; exec sleep 60"), nil }
	ready := func() error {
		if strings.Count(p.LogTail(10), "up") < builds { // this run's line, not an earlier one's
			return errors.New("not yet")
		}
		return nil
	}
	if err := p.Start(sh, ready); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(sh, ready); err != nil || builds != 1 {
		t.Fatalf("second Start: %v, %d commands built; want a no-op", err, builds)
	}
	if !p.Running() {
		t.Fatal("not running after Start")
	}
	p.Stop()
	p.Stop() // idempotent
	if p.Running() {
		t.Fatal("running after Stop")
	}
	if err := p.Start(sh, ready); err != nil || !p.Running() {
		t.Fatalf("restart: %v", err)
	}
	p.Stop()
	if got := p.LogTail(5); got != "up\nup" {
		t.Errorf("log %q, want both runs appended", got)
	}
}

func TestStartFailures(t *testing.T) {
	p := newProc(t)
	err := p.Start(func() (*exec.Cmd, error) { return exec.Command("sh", "-c", "echo broken config; exit 3"), nil },
		func() error { return errors.New("no answer") })
	if err == nil || !strings.Contains(err.Error(), "exited during start-up") || !strings.Contains(err.Error(), "broken config") {
		t.Errorf("early exit: %v", err)
	}
	p.Timeout = 100 * time.Millisecond
	err = p.Start(func() (*exec.Cmd, error) { return exec.Command("sleep", "60"), nil },
		func() error { return errors.New("no answer") })
	if err == nil || !strings.Contains(err.Error(), "did not answer") || p.Running() {
		t.Errorf("timeout: %v (running %v)", err, p.Running())
	}
}

func TestTail(t *testing.T) {
	for in, want := range map[string]string{"": "", "a\n": "a", "a\nb\nc\n": "b\nc", "a\nb": "a\nb"} {
		if got := Tail([]byte(in), 2); got != want {
			t.Errorf("Tail(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTempDir(t *testing.T) {
	// TempDir sweeps a prefix once per process: a new prefix for each run.
	prefix := "adauth-serverproc-test-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	stale, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	// A pid far above pid_max on Linux (4194304) belongs to no process.
	if err := os.WriteFile(filepath.Join(stale, ownerFile), []byte("2147483600"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir, err := TempDir(prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		os.RemoveAll(stale)
		t.Errorf("stale directory kept: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, ownerFile)); err != nil || string(b) != strconv.Itoa(os.Getpid()) {
		t.Errorf("owner file %q, %v", b, err)
	}
}
