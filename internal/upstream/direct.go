package upstream

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
)

// DirectOptions configures Direct.
type DirectOptions struct {
	// Modules answers module paths (everything but "sumdb/..."): the
	// Source that fetches public modules from their version control
	// origin (package upstream/git's NewDirect). Nil answers every module
	// path "not found".
	Modules Source
	// SumdbURLs maps a checksum database name (e.g. "sum.example.com") to
	// the base URL that serves it, instead of https://{name}. User
	// information in the URL is sent as Basic authentication.
	SumdbURLs map[string]string
	// ProxyOptions tunes the HTTP fetches (retries, logging, Observe; the
	// upstream label given to Observe is "direct", whatever the database).
	ProxyOptions
}

// Direct is the Source for the GOPROXY keyword "direct".
//
// Module paths go to DirectOptions.Modules, which fetches them from their
// version control origin the way the go command does (package
// upstream/git); without it every module path answers an error matching
// fs.ErrNotExist, so a chain such as "https://mirror,direct" reports "not
// found". Either way what direct serves is verified by the caller exactly
// like what a proxy serves. Checksum database
// paths are served the way the go command does for "direct": a request for
// "sumdb/{name}/supported" answers 200 with an empty body, and any other
// "sumdb/{name}/{rest}" is fetched from https://{name}/{rest} (or the
// override in DirectOptions.SumdbURLs), with Proxy's status mapping.
//
// The database name comes from the request, so a caller serving untrusted
// clients must restrict names to the databases it means to proxy; Direct
// only checks that the name is a plausible host name.
//
// Direct is safe for concurrent use.
type Direct struct {
	modules   Source // nil: modules are "not found"
	get       *getter
	overrides map[string]target
}

// directName is both the GOPROXY keyword and Direct's String.
const directName = "direct"

// NewDirect returns a Direct that fetches checksum database files with
// client (nil means NewHTTPClient(HTTPConfig{})).
func NewDirect(client *http.Client, opts DirectOptions) (*Direct, error) {
	if client == nil {
		client = NewHTTPClient(HTTPConfig{})
	}
	d := &Direct{
		modules:   opts.Modules,
		get:       newGetter(client, directName, opts.ProxyOptions),
		overrides: make(map[string]target, len(opts.SumdbURLs)),
	}
	for name, raw := range opts.SumdbURLs {
		u, shown, err := parseProxyURL(raw)
		if err == nil && u.Scheme == "file" {
			err = errors.New("want an https or http URL")
		}
		if err != nil {
			return nil, fmt.Errorf("checksum database %q: URL %q: %w", name, shown, err)
		}
		base, auth := splitAuth(u)
		d.overrides[name] = target{name: redactUser(u), base: base, auth: auth}
	}
	return d, nil
}

// String returns "direct".
func (d *Direct) String() string { return directName }

// Fetch answers checksum database paths as described on Direct, and
// module paths from DirectOptions.Modules (without it, an error matching
// fs.ErrNotExist).
func (d *Direct) Fetch(ctx context.Context, path string) (*Response, error) {
	if err := checkPath(path); err != nil {
		return nil, fmt.Errorf("upstream %q: %w", directName, err)
	}
	rest, ok := strings.CutPrefix(path, "sumdb/")
	if !ok {
		if d.modules != nil {
			resp, err := d.modules.Fetch(ctx, path)
			if err != nil {
				return nil, err
			}
			resp.Upstream = directName
			return resp, nil
		}
		return nil, fmt.Errorf("upstream %q cannot fetch %s: fetching modules from version control is not configured: %w",
			directName, path, fs.ErrNotExist)
	}
	name, file, ok := strings.Cut(rest, "/")
	if !ok || !validHostName(name) {
		return nil, fmt.Errorf("upstream %q cannot fetch %s: not a checksum database path: %w", directName, path, fs.ErrNotExist)
	}
	if file == "supported" {
		return &Response{Body: http.NoBody, Size: 0, Upstream: directName}, nil
	}
	t, ok := d.overrides[name]
	if !ok {
		t = target{name: "https://" + name, base: &url.URL{Scheme: "https", Host: name}}
	}
	resp, err := d.get.fetch(ctx, t, file)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: checksum database %s: %w", directName, name, err)
	}
	resp.Upstream = directName
	return resp, nil
}

// validHostName reports whether name looks like a DNS host name: dot-separated
// labels of lower-case letters, digits and inner hyphens. No ports, no user
// information, nothing a URL would read as more than a host.
func validHostName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// Off is the Source for the GOPROXY keyword "off": every path answers an
// error matching fs.ErrNotExist. The zero value is ready to use.
type Off struct{}

// offName is both the GOPROXY keyword and Off's String.
const offName = "off"

// String returns "off".
func (Off) String() string { return offName }

// Fetch always fails with an error matching fs.ErrNotExist.
func (Off) Fetch(_ context.Context, path string) (*Response, error) {
	return nil, fmt.Errorf("upstream %q cannot fetch %s: module lookup disabled by GOPROXY=off: %w", offName, path, fs.ErrNotExist)
}
