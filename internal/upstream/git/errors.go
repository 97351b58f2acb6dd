package git

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"

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

// remoteError classifies a failed git command that talked to the server
// (ls-remote or fetch, over ssh, git:// or a path) by what git or ssh
// wrote: a rejected key matches ErrAuthentication, an unknown or changed
// host key says how to trust it, and a missing repository matches
// fs.ErrNotExist. Anything else stays an upstream.ErrUnavailable
// *GitError. The GitError stays in the chain for errors.As.
func remoteError(err error) error {
	var ge *GitError
	if !errors.As(err, &ge) || ge.timedOut || ge.ExitCode <= 0 {
		return err
	}
	stderr := ge.Stderr
	has := func(s ...string) bool {
		for _, x := range s {
			if strings.Contains(stderr, x) {
				return true
			}
		}
		return false
	}
	switch {
	case has("Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED", "No ED25519 host key is known",
		"No RSA host key is known", "No ECDSA host key is known", "host key is known for"):
		return &classed{class: []error{upstream.ErrUnavailable}, cause: ge,
			msg: "ssh: the server's host key is not trusted: add it to the source's ssh_known_hosts_file (ssh-keyscan prints it; check it out of band): " + stderr}
	case has("Permission denied (", "Authentication failed", "Permission to ", "access denied", "Access denied"):
		return &classed{class: []error{ErrAuthentication, upstream.ErrUnavailable}, cause: ge,
			msg: "authentication rejected: " + stderr}
	case has("does not appear to be a git repository", "Repository not found", "repository not found",
		"could not be found", "No such repository", "not a git repository"):
		return &classed{class: []error{fs.ErrNotExist}, cause: ge, msg: "no such repository: " + stderr}
	}
	return err
}
