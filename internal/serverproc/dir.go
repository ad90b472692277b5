package serverproc

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// ownerFile names the file holding the pid of the test process that owns a
// server directory, so that directories left by a killed test binary are
// swept by the next run.
const ownerFile = "owner.pid"

var (
	sweepMu sync.Mutex
	swept   = map[string]bool{} // prefixes swept by this process
)

// TempDir creates a fresh os.TempDir()/PREFIXxxxx directory owned by this
// process. The first call for a prefix first removes the PREFIX* directories
// whose owning process is gone (a test binary killed by a timeout cannot run
// its cleanups). Keep the prefix short where unix sockets live below it
// (108-byte limit).
func TempDir(prefix string) (string, error) {
	sweepStale(prefix)
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

func sweepStale(prefix string) {
	sweepMu.Lock()
	defer sweepMu.Unlock()
	if swept[prefix] {
		return
	}
	swept[prefix] = true
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue // being created, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}
