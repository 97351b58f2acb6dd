//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package disk

import (
	"errors"
	"fmt"
)

// Space is not implemented on this system: it returns an error matching
// errors.ErrUnsupported.
func Space(dir string) (free, size uint64, err error) {
	return 0, 0, fmt.Errorf("reading free space of %s: %w", dir, errors.ErrUnsupported)
}
