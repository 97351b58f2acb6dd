//go:build unix

package auth

import (
	"io/fs"
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on f, waiting for it. The lock
// goes with the file descriptor: closing f releases it, and so does the
// process exiting, so a crashed writer never leaves the store locked.
func lockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			return err
		}
	}
}

// fileIdentity returns the device and inode of fi, which change whenever
// the file is replaced by a rename.
func fileIdentity(fi fs.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}
