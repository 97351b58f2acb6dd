// Package httperr is the one place that maps errors to HTTP statuses and
// writes error responses, for every route: the module protocol, the
// checksum database proxy, authentication, webhooks, the vulnerability
// database, health and policy explanations. (The token admin API answers
// JSON bodies of its own; its statuses still come from Status.)
//
// Errors are classified with errors.Is against the sentinels of the
// packages that own them (the table in Status); the first match wins. To
// add a class, add its sentinel to the table and a line to the test.
//
// Every error body is one short text/plain line starting "modgate: ",
// which the go command shows its user as "server response: ...". The
// line is the error's text, except that:
//
//   - an error with a client-safe message of its own (a PublicError method
//     anywhere in its chain, as the Git sources give) shows that message:
//     the full text, with internal URLs and command lines, stays in the
//     log (reqlog.Entry.Err);
//   - 500 and 507 show a fixed sentence with the request id.
//
// The package writes no log lines: Write stores the error in the request's
// reqlog.Entry, and the access log line carries it.
package httperr

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/modgate/modgate/internal/audit"
	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/mirror"
	"github.com/modgate/modgate/internal/policy"
	"github.com/modgate/modgate/internal/reqlog"
	"github.com/modgate/modgate/internal/state"
	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/upstream"
)

// Classes that belong to no other package: what a handler decides about
// the request itself.
var (
	// ErrBadRequest: the request is malformed (not a module path, a bad
	// parameter, a body that is not what it should be). 400.
	ErrBadRequest = errors.New("malformed request")
	// ErrMethod: the route does not take this method. 405; the handler
	// sets Allow.
	ErrMethod = errors.New("method not allowed")
	// ErrTooLarge: the request body is over the route's limit. 413.
	ErrTooLarge = errors.New("request body too large")
	// ErrNotReady: the server, or the part of it the route needs, is not
	// ready (starting, shutting down, a database not loaded yet). 503.
	ErrNotReady = errors.New("not ready")
)

// ClientClosedRequest is the status recorded when the client went away
// before the answer (nginx's 499); nobody reads it but the logs.
const ClientClosedRequest = 499

// A class maps the errors matching err to status.
type class struct {
	err    error
	status int
}

// classes is the table Status reads, in order: the first match wins. It is
// never modified.
var classes = []class{
	{ErrMethod, http.StatusMethodNotAllowed},
	{ErrBadRequest, http.StatusBadRequest},
	{ErrTooLarge, http.StatusRequestEntityTooLarge},
	{auth.ErrUnauthenticated, http.StatusUnauthorized},
	// Refusals: never 404, or a client with GOPROXY=<this>,direct would
	// go around them. (auth.ErrHidden matches fs.ErrNotExist on purpose,
	// and is not listed: a hidden module answers 404.)
	{auth.ErrForbidden, http.StatusForbidden},
	{policy.ErrBlocked, http.StatusForbidden},
	{auth.ErrRateLimited, http.StatusTooManyRequests},
	{audit.ErrUnwritable, http.StatusServiceUnavailable},
	{ErrNotReady, http.StatusServiceUnavailable},
	// The module store (an object store) cannot be reached: come back
	// later. Before fs.ErrNotExist: nothing is known to be missing.
	{storage.ErrUnavailable, http.StatusServiceUnavailable},
	{state.ErrUnavailable, http.StatusServiceUnavailable},
	// Before ErrUnavailable, which a busy error also matches: the fill
	// queue is full, so the client should come back (Retry-After).
	{mirror.ErrBusy, http.StatusServiceUnavailable},
	{mirror.ErrVerification, http.StatusBadGateway},
	// Only "does not exist" answers 404: the go command falls through to
	// its next GOPROXY entry on 404 and 410.
	{fs.ErrNotExist, http.StatusNotFound},
	{upstream.ErrTimeout, http.StatusGatewayTimeout},
	{context.DeadlineExceeded, http.StatusGatewayTimeout},
	{upstream.ErrUnavailable, http.StatusBadGateway},
	{context.Canceled, ClientClosedRequest},
	{syscall.ENOSPC, http.StatusInsufficientStorage},
}

// Status maps an error to the HTTP status the client gets; anything not in
// the table is 500.
func Status(err error) int {
	for _, c := range classes {
		if errors.Is(err, c.err) {
			return c.status
		}
	}
	return http.StatusInternalServerError
}

// A publicError knows the part of its text a client may see. Its Error
// method gives the whole, for logs.
type publicError interface {
	error
	PublicError() string
}

// Message is the one-line reason a client gets for err: see the package
// doc. id is the request id, for messages that send the reader to the log.
func Message(err error, id string) string {
	var msg string
	var pub publicError
	switch status := Status(err); {
	case status == http.StatusInternalServerError:
		msg = "internal error (request id " + id + "; details are in the server log)"
	case status == http.StatusInsufficientStorage:
		msg = "the proxy's storage is full, so it cannot fetch anything new; files already stored are still served (tell the operator, request id " + id + ")"
	case errors.As(err, &pub):
		msg = pub.PublicError()
	default:
		msg = err.Error()
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > 1000 {
		msg = msg[:1000] + "..."
	}
	return msg
}

// Write answers err: its status (Status), one text line (Message), and no
// caching. The error goes to the request's reqlog.Entry, which the access
// log and the audit record read. Headers the handler set before (Allow,
// Retry-After) are kept; validators and policy warnings are dropped. It
// returns the status written.
func Write(w http.ResponseWriter, r *http.Request, err error) int {
	status := Status(err)
	e := reqlog.From(r.Context())
	e.Err = err
	hdr := w.Header()
	hdr.Del("ETag")
	hdr.Del("Last-Modified")
	hdr.Del("Content-Encoding")
	hdr.Del("Content-Length")
	hdr.Del(policy.HeaderWarning)
	if status == http.StatusUnauthorized {
		hdr.Set("WWW-Authenticate", auth.Challenge)
	}
	var busy interface{ RetryAfter() time.Duration }
	if errors.As(err, &busy) {
		hdr.Set("Retry-After", strconv.Itoa(max(1, int((busy.RetryAfter()+time.Second-1)/time.Second))))
	}
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		io.WriteString(w, "modgate: "+Message(err, e.ID)+"\n")
	}
	return status
}
