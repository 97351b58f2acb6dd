// Package upstream fetches files from the places modgate mirrors: other
// GOPROXY servers, the checksum database, and (through the "direct"
// keyword and package upstream/git) version control.
//
// Every request is an escaped protocol path relative to a proxy root:
// "{module}/@v/list", "{module}/@v/{version}.info|.mod|.zip", "{module}/@latest",
// or "sumdb/{name}/{supported|latest|lookup/...|tile/...}". A Source answers
// one such path; a Chain tries an ordered list of Sources with the go
// command's own GOPROXY fallback rules (see ParseGOPROXY).
//
// Errors are classified with sentinels so callers never look at text:
// an error matching fs.ErrNotExist means "this upstream does not have it"
// (404, 410, and 403 from upstreams that refuse versions they will not serve);
// ErrTimeout means the upstream did not answer in time; ErrUnavailable means
// any other failure (network errors, 5xx, unexpected statuses). A caller's
// own context cancellation is returned wrapped (context.Canceled), and a
// caller's expired deadline matches both ErrTimeout and
// context.DeadlineExceeded. Paths that are not clean relative paths match
// fs.ErrInvalid.
//
// The pieces:
//   - Proxy (proxy.go) fetches from another GOPROXY server over http(s) or
//     from a file:// directory, with retries for idempotent failures;
//   - NewHTTPClient (client.go) is the tuned, shared HTTP client, including
//     a guard against response bodies that stall forever;
//   - Direct and Off (direct.go) stand for the "direct" and "off" keywords;
//     Direct hands module paths to the Source given as
//     DirectOptions.Modules (git.NewDirect), which this package cannot
//     import;
//   - Guard (health.go) tracks an upstream's health: after repeated
//     failures it stops waiting on it (fetches fail at once, so callers
//     serve stored copies or move on down the chain) and lets one trial
//     through now and then until it answers; it also bounds each fetch's
//     wait for an answer (the request budget);
//   - redirects (redirect.go) are followed only to the upstream's own host
//     and port or to hosts the operator lists (ErrRedirect otherwise);
//   - ParseGOPROXY (list.go) reads the go command's GOPROXY syntax, Chain
//     (chain.go) applies its fallback rules, and Build (build.go) turns a
//     GOPROXY list into a Chain, leaving out entries that point at modgate
//     itself.
//
// The package deliberately knows nothing about caching, verification or
// policy (see package mirror), and nothing about Prometheus: metrics arrive
// as an Observe function.
package upstream

import (
	"context"
	"errors"
	"io"
)

// A Source fetches one protocol path from one upstream.
// Fetch returns the response body on success; the caller closes it.
// Errors are classified as described in the package comment and name the
// source (its String), so that a Chain can join them as they are.
// Implementations must be safe for concurrent use.
type Source interface {
	Fetch(ctx context.Context, path string) (*Response, error)
	// String names the source for logs, metrics and error messages,
	// with any credentials redacted.
	String() string
}

// A Response is a successful answer from an upstream.
type Response struct {
	Body     io.ReadCloser
	Size     int64  // Content-Length, or -1 when unknown
	Upstream string // the String of the Source that answered
}

var (
	// ErrUnavailable reports that an upstream failed: a network error, a 5xx
	// status, or an answer that could not be used.
	ErrUnavailable = errors.New("upstream unavailable")
	// ErrTimeout reports that an upstream did not answer in time.
	ErrTimeout = errors.New("upstream timed out")
)
