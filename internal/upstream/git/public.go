package git

import (
	"context"
	"errors"
	"io/fs"

	"github.com/modgate/modgate/internal/upstream"
)

// Errors of a Git source name internal things: repository URLs, the git
// command lines, what git and ssh wrote. They belong in the server log.
// Public wraps such an error for the module service with a one-line
// reason fit for the client, named by its class, which the error writer
// (package httperr) shows instead; the full text stays the error's.

// A publicError is a Git source error with the reason a client may see.
type publicError struct {
	public string
	err    error
}

func (e *publicError) Error() string       { return e.err.Error() }
func (e *publicError) Unwrap() error       { return e.err }
func (e *publicError) PublicError() string { return e.public }

// Public returns err with a client-safe reason: what (a module, or
// module@version) and the class of the failure, and for server-side
// failures where to look (the request id, id, names the log lines). A nil
// err stays nil, and a cancelled request is left as it is.
func Public(err error, what, id string) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	look := "details are in the server log"
	if id != "" {
		look += ", request id " + id
	}
	var reason string
	switch {
	case errors.Is(err, ErrAuthentication):
		reason = "the private Git server rejected the proxy's credentials (authentication rejected; " + look + ")"
	case errors.Is(err, fs.ErrNotExist):
		reason = "not found in its private Git repository"
	case errors.Is(err, upstream.ErrTimeout):
		reason = "the private Git server did not answer in time (" + look + ")"
	case errors.Is(err, upstream.ErrUnavailable):
		reason = "the private Git server failed (" + look + ")"
	default:
		reason = "serving it from its private Git repository failed (" + look + ")"
	}
	return &publicError{public: what + ": " + reason, err: err}
}
