package git

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"

	"github.com/modgate/modgate/internal/upstream"
)

// classed is an error with a message of its own and one or more class
// sentinels (fs.ErrNotExist, upstream.ErrUnavailable, ErrAuthentication,
// upstream.ErrTimeout), so that messages read naturally while errors.Is
// finds the class.
type classed struct {
	class []error
	msg   string
	cause error // optional, matched by errors.Is/As but not printed twice
}

func (e *classed) Error() string { return e.msg }

func (e *classed) Unwrap() []error {
	if e.cause != nil {
		return append(append([]error(nil), e.class...), e.cause)
	}
	return e.class
}

// notExist returns an error matching fs.ErrNotExist: the module, version
// or revision does not exist in the repository (404 to the client).
func notExist(format string, args ...any) error {
	return &classed{class: []error{fs.ErrNotExist}, msg: fmt.Sprintf(format, args...)}
}

// unavailable returns an error matching upstream.ErrUnavailable.
func unavailable(format string, args ...any) error {
	return &classed{class: []error{upstream.ErrUnavailable}, msg: fmt.Sprintf(format, args...)}
}

// netError classifies an HTTP client error: timeouts match
// upstream.ErrTimeout, everything else upstream.ErrUnavailable. The
// caller's own cancellation stays context.Canceled.
func netError(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	if isTimeout(err) {
		return &classed{class: []error{upstream.ErrTimeout}, msg: err.Error(), cause: err}
	}
	return &classed{class: []error{upstream.ErrUnavailable}, msg: err.Error(), cause: err}
}

// isTimeout reports whether err is a deadline or a network timeout.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, upstream.ErrTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// wrapf prefixes err's message, keeping its classes.
func wrapf(err error, format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// isClass reports whether err matches the class sentinel.
func isClass(err, class error) bool { return errors.Is(err, class) }
