//go:build linux || darwin || freebsd || netbsd || openbsd

package disk

import (
	"fmt"
	"syscall"
)

// Space reports the bytes available to an unprivileged writer (free) and
// the size of the file system that holds dir. It costs one statfs(2).
func Space(dir string) (free, size uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("reading free space of %s: %w", dir, err)
	}
	// Field types differ between systems (int64 on some BSDs).
	bsize := uint64(st.Bsize)
	return uint64(st.Bavail) * bsize, uint64(st.Blocks) * bsize, nil
}
