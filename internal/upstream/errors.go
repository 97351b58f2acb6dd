package upstream

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strconv"
)

// A StatusError reports that an HTTP upstream answered with a status other
// than 200 OK. It matches fs.ErrNotExist for 404 Not Found, 410 Gone and
// 403 Forbidden (some upstreams refuse, with 403, versions they will not
// serve: the module is not available from this upstream, which is not the
// same as "it does not exist anywhere", so callers should not remember it
// for long), and ErrUnavailable for every other status.
type StatusError struct {
	Upstream   string // the redacted upstream URL
	Path       string // the protocol path requested
	StatusCode int
	// Body is the first line of the upstream's text/plain body, sanitized
	// and at most maxSnippet bytes; empty when there was none.
	Body string
}

func (e *StatusError) Error() string {
	status := strconv.Itoa(e.StatusCode)
	if text := http.StatusText(e.StatusCode); text != "" {
		status += " " + text
	}
	var msg string
	if e.StatusCode == http.StatusForbidden {
		msg = fmt.Sprintf("upstream %q answered %s: not available from this upstream for %s", e.Upstream, status, e.Path)
	} else {
		msg = fmt.Sprintf("upstream %q answered %s for %s", e.Upstream, status, e.Path)
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Unwrap returns the class of the error: fs.ErrNotExist or ErrUnavailable.
func (e *StatusError) Unwrap() error {
	if notFoundStatus(e.StatusCode) {
		return fs.ErrNotExist
	}
	return ErrUnavailable
}

// notFoundStatus reports whether an HTTP status means "this upstream does
// not have it".
func notFoundStatus(code int) bool {
	return code == http.StatusNotFound || code == http.StatusGone || code == http.StatusForbidden
}

// classError attaches a class sentinel to an error without changing its
// message, so that messages read naturally ("upstream X timed out for P:
// dial tcp ...") while errors.Is still finds both the class and the cause.
type classError struct {
	class error
	err   error
}

func (e *classError) Error() string   { return e.err.Error() }
func (e *classError) Unwrap() []error { return []error{e.class, e.err} }

func classify(class, err error) error { return &classError{class: class, err: err} }

// isTimeout reports whether err is a timeout: an expired context deadline,
// an http.Client timeout, a dial, TLS handshake or response header timeout,
// or a stalled body.
func isTimeout(err error) bool {
	if errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ctxError wraps the caller's context error: context.Canceled as it is,
// an expired deadline also as ErrTimeout. cause, when not nil, is the last
// failure seen before the context ended; it is named in the message only.
func ctxError(ctx context.Context, upstream, path string, cause error) error {
	var wrapped error
	if cause != nil {
		wrapped = fmt.Errorf("upstream %q: fetching %s: %w (last error: %v)", upstream, path, ctx.Err(), cause)
	} else {
		wrapped = fmt.Errorf("upstream %q: fetching %s: %w", upstream, path, ctx.Err())
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return classify(ErrTimeout, wrapped)
	}
	return wrapped
}
