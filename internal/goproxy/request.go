package goproxy

import (
	"fmt"
	"strings"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/httperr"
)

// ErrBadRequest reports a request path that is not a valid GOPROXY request.
// The handler answers it with 400; it is never the server's fault.
// It is httperr's class, so every route answers it alike.
var ErrBadRequest = httperr.ErrBadRequest

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
	// (a branch, a commit hash, a semver prefix): its answer is mutable.
	Query bool
	// Path is the escaped request path without the leading slash; for
	// canonical files it is also the storage key.
	Path string
}

// ParseRequest parses an escaped protocol path such as
// "example.com/!corp/lib/@v/v1.2.0.zip" (without the leading slash).
// It validates the module path and version with golang.org/x/mod and returns
// an error matching ErrBadRequest for anything else.
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
	mod, err := module.UnescapePath(escMod)
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
	v, err := module.UnescapeVersion(escVer)
	if err != nil {
		return Request{}, badRequest(p, "invalid version: %v", err)
	}
	r.Version = v
	if module.CanonicalVersion(v) != v {
		if r.Kind != KindInfo {
			return Request{}, badRequest(p, "version %q is not canonical: only .info accepts a query", v)
		}
		if !isQuery(v) {
			return Request{}, badRequest(p, "invalid version query %q", v)
		}
		r.Query = true
		return r, nil
	}
	if err := module.Check(mod, v); err != nil {
		return Request{}, badRequest(p, "%v", err)
	}
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
