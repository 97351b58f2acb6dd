package goproxy

import (
	"fmt"
	"io/fs"
	"strings"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/httperr"
)

// ErrBadRequest reports a request path that is not a valid GOPROXY request:
// not a module path, an unknown file, a version that is not escaped as the
// go command escapes it. The handler answers it with 400; it is never the
// server's fault.
// It is httperr's class, so every route answers it alike.
var ErrBadRequest = httperr.ErrBadRequest

// A versionError reports a well-formed request for a version that cannot
// exist for the module (v9.9.9 of a path without /v9, the .zip of a branch
// name). It matches fs.ErrNotExist, so the client gets 404 and, like the
// public proxies answer, may go on to its next GOPROXY entry: "not a
// version of this module" is "not found", not a malformed request.
type versionError struct{ msg string }

func (e *versionError) Error() string        { return e.msg }
func (e *versionError) Is(target error) bool { return target == fs.ErrNotExist }

func notFound(p, format string, args ...any) error {
	return &versionError{msg: fmt.Sprintf("/%s: not found: %s", p, fmt.Sprintf(format, args...))}
}

// A Kind is the sort of file a protocol request asks for.
type Kind int

const (
	KindList   Kind = iota + 1 // {module}/@v/list
	KindLatest                 // {module}/@latest
	KindInfo                   // {module}/@v/{version}.info
	KindMod                    // {module}/@v/{version}.mod
	KindZip                    // {module}/@v/{version}.zip
)

// String returns the artifact name used in metrics and logs.
func (k Kind) String() string {
	switch k {
	case KindList:
		return "list"
	case KindLatest:
		return "latest"
	case KindInfo:
		return "info"
	case KindMod:
		return "mod"
	case KindZip:
		return "zip"
	}
	return "unknown"
}

// A Request is a parsed and validated GOPROXY protocol request.
type Request struct {
	Kind    Kind
	Module  string // module path, unescaped ("example.com/Corp/lib")
	Version string // unescaped version; empty for KindList and KindLatest
	// Query is true for a .info request whose version is not canonical
	// for the module (a branch, a commit hash, a semver prefix, a release
	// the upstream may know as +incompatible): its answer is mutable.
	Query bool
	// Path is the escaped request path without the leading slash; for
	// canonical files it is also the storage key.
	Path string
}

// ParseRequest parses an escaped protocol path such as
// "example.com/!corp/lib/@v/v1.2.0.zip" (without the leading slash).
// It validates the module path and version with golang.org/x/mod. A request
// that is not a module request at all gets an error matching ErrBadRequest.
// A well-formed request for a version that cannot exist for the module (see
// versionError) gets an error matching fs.ErrNotExist, with the Request
// filled in as far as it was parsed, for logs.
//
// A .info request for a version that is not canonical for the path (a
// branch, a commit, a semver prefix, or v28.5.2 of a module whose tags are
// +incompatible) is a query (Request.Query).
func ParseRequest(p string) (Request, error) {
	r := Request{Path: p}
	var escMod, file string
	if m, ok := strings.CutSuffix(p, "/@latest"); ok {
		escMod, r.Kind = m, KindLatest
	} else {
		i := strings.LastIndex(p, "/@v/")
		if i < 0 {
			return Request{}, badRequest(p, "not a module request (want {module}/@v/... or {module}/@latest)")
		}
		escMod, file = p[:i], p[i+len("/@v/"):]
	}
	mod, err := unescapePath(escMod)
	if err != nil {
		return Request{}, badRequest(p, "invalid module path: %v", err)
	}
	r.Module = mod
	if r.Kind == KindLatest {
		return r, nil
	}
	if file == "list" {
		r.Kind = KindList
		return r, nil
	}
	var escVer string
	switch {
	case strings.HasSuffix(file, ".info"):
		r.Kind, escVer = KindInfo, strings.TrimSuffix(file, ".info")
	case strings.HasSuffix(file, ".mod"):
		r.Kind, escVer = KindMod, strings.TrimSuffix(file, ".mod")
	case strings.HasSuffix(file, ".zip"):
		r.Kind, escVer = KindZip, strings.TrimSuffix(file, ".zip")
	default:
		return Request{}, badRequest(p, "unknown file %q (want list, {version}.info, .mod or .zip)", file)
	}
	if escVer == "" || strings.Contains(escVer, "/") {
		return Request{}, badRequest(p, "invalid version %q", escVer)
	}
	v, err := unescapeVersion(escVer)
	if err != nil {
		return Request{}, badRequest(p, "invalid version: %v", err)
	}
	r.Version = v
	if module.CanonicalVersion(v) == v {
		err := module.Check(mod, v)
		if err == nil {
			return r, nil
		}
		// A version that is canonical but not valid for this path names
		// no file of it (v9.9.9 of a path without /v9, v2.0.0+incompatible
		// of a /v2 path). As .info it is still a query the upstream can
		// resolve: the go command asks for github.com/docker/docker's
		// v28.5.2.info and expects v28.5.2+incompatible back.
		if r.Kind == KindInfo {
			r.Query = true
			return r, nil
		}
		return r, notFound(p, "%v", err)
	}
	if r.Kind != KindInfo {
		// The go command only asks for the .mod and .zip of the versions
		// an .info answer named; a query here names no file.
		return r, notFound(p, "%s@%s: invalid version: not a canonical version (only .info resolves a query)", mod, v)
	}
	if !isQuery(v) {
		return r, notFound(p, "%s@%s: invalid version query", mod, v)
	}
	r.Query = true
	return r, nil
}

// isQuery reports whether v is a plausible non-canonical version query:
// a branch or tag name or a commit hash. The go command escapes it with
// module.EscapeVersion, so slashes never reach us; anything outside a
// conservative character set is refused rather than forwarded upstream.
func isQuery(v string) bool {
	if v == "" || len(v) > 256 || v == "latest" || v[0] == '-' || v[0] == '.' {
		return false
	}
	for _, c := range v {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.ContainsRune("-._~+", c):
		default:
			return false
		}
	}
	return true
}

func badRequest(p, format string, args ...any) error {
	return fmt.Errorf("%w: /%s: %s", ErrBadRequest, p, fmt.Sprintf(format, args...))
}

// unescapePath is module.UnescapePath without its allocations (a few per
// request, on every cache hit) in the common case: an escaped path without
// "!" names a path without upper-case letters, which is its own escaped
// form. module.EscapePath checks exactly that (CheckPath, and no
// upper-case letter) and returns its argument without allocating. Any
// other path goes through UnescapePath, which also words the error.
func unescapePath(escaped string) (string, error) {
	if !strings.Contains(escaped, "!") {
		if e, err := module.EscapePath(escaped); err == nil && e == escaped {
			return escaped, nil
		}
	}
	return module.UnescapePath(escaped)
}

// unescapeVersion is module.UnescapeVersion with the same shortcut.
func unescapeVersion(escaped string) (string, error) {
	if !strings.Contains(escaped, "!") {
		if e, err := module.EscapeVersion(escaped); err == nil && e == escaped {
			return escaped, nil
		}
	}
	return module.UnescapeVersion(escaped)
}
