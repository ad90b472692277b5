//go:build unix

package localauth

import (
	"os"
	"syscall"
)

// keepOwner gives the new file the old one's owner and group, when the
// caller may (root may; others may keep their own group).
func keepOwner(f *os.File, old os.FileInfo) {
	if st, ok := old.Sys().(*syscall.Stat_t); ok {
		_ = f.Chown(int(st.Uid), int(st.Gid))
	}
}
