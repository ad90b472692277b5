// Package serverproc is what the real-server test fixtures (internal/sambadc,
// internal/slapdtest) share: a server run as a child of the test binary with
// its output in a log file, a scratch directory that a killed test binary
// does not leave behind for good, and the LDAP calls the fixtures and their
// tests make (readiness polling, dialing, binding, searching).
//
// The fixtures keep their own exported APIs; this package only holds the
// mechanics, so that a fix to (say) stopping a server reaches both.
package serverproc

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is one server process, started and stopped any number of times (a
// fixture's Stop and Restart). The zero value needs only the fields below;
// it must not be copied after first use.
type Proc struct {
	Name    string        // for error messages: "slapd", "samba on 127.0.0.2"
	LogFile string        // the server's stdout and stderr are appended here
	Timeout time.Duration // how long Start waits for ready
	Poll    time.Duration // pause between ready calls
	// Tail returns the log excerpt put into start-up errors; nil means the
	// last 30 lines of LogFile.
	Tail func() string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	logf *os.File
}

// Start runs the command newCmd builds (called only when the server is not
// running already, so that it may pick ports and the like; Start then does
// nothing) and waits until ready returns nil. When the server exits first or
// does not get ready within Timeout, it is stopped and the error carries the
// log's tail.
func (p *Proc) Start(newCmd func() (*exec.Cmd, error), ready func() error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return nil
	}
	cmd, err := newCmd()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// The server dies with the test binary even when that is killed by a
	// timeout and cannot run its cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %v", p.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done, p.logf = cmd, done, logf

	deadline := time.Now().Add(p.Timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-done:
			p.stopLocked()
			return fmt.Errorf("%s exited during start-up (%v)\n%s", p.Name, cmd.ProcessState, p.tail())
		default:
		}
		if lastErr = ready(); lastErr == nil {
			return nil
		}
		time.Sleep(p.Poll)
	}
	p.stopLocked()
	return fmt.Errorf("%s did not answer within %v: %v\n%s", p.Name, p.Timeout, lastErr, p.tail())
}

func (p *Proc) tail() string {
	if p.Tail != nil {
		return p.Tail()
	}
	return p.LogTail(30)
}

// Stop kills the server and waits (up to 10 s) for it to exit. It is
// idempotent: stopping a stopped server does nothing.
func (p *Proc) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked()
}

func (p *Proc) stopLocked() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill() // an error means it has exited already
	select {
	case <-p.done:
	case <-time.After(10 * time.Second): // stuck in the kernel; do not hang the test
	}
	p.cmd = nil
	p.logf.Close()
	p.logf = nil
}

// Running reports whether the server process is alive (it may have exited
// on its own since Start).
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// LogTail returns the last n lines of LogFile ("" when there is none).
func (p *Proc) LogTail(n int) string {
	data, _ := os.ReadFile(p.LogFile)
	return Tail(data, n)
}

// Tail returns the last n lines of b, for failure messages.
func Tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
