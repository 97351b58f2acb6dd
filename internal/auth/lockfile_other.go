//go:build !unix

package auth

import (
	"io/fs"
	"os"
)

// lockFile does nothing where flock is unavailable: concurrent writers from
// two processes (the server's admin API and the token command at the same
// moment) can then lose one of the two changes. Readers are unaffected,
// since every write is an atomic rename.
func lockFile(f *os.File) error { return nil }

// fileIdentity is unknown here; size and modification time still detect
// changes.
func fileIdentity(fi fs.FileInfo) (dev, ino uint64) { return 0, 0 }
