package vulndb

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
)

// A remote reads files of a served-layout database by their path relative
// to its root ("index/db.json", "ID/GO-2024-1234.json").
type remote interface {
	fetch(ctx context.Context, name string, limit int64) ([]byte, error)
}

// newRemote returns the remote for an http, https or file URL.
func newRemote(u *url.URL, client *http.Client) (remote, error) {
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("URL %q has no host", u.Redacted())
		}
		base := *u
		base.Path = strings.TrimSuffix(base.Path, "/")
		base.RawPath = ""
		return &httpRemote{base: &base, client: client}, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("URL %q: file URLs must name a local path (file:///dir)", u.Redacted())
		}
		if u.Path == "" {
			return nil, fmt.Errorf("URL %q has no path", u.Redacted())
		}
		return fileRemote(filepath.FromSlash(u.Path)), nil
	default:
		return nil, fmt.Errorf("URL %q: scheme %q not supported (want https, http or file)", u.Redacted(), u.Scheme)
	}
}

type httpRemote struct {
	base   *url.URL
	client *http.Client
}

func (r *httpRemote) fetch(ctx context.Context, name string, limit int64) ([]byte, error) {
	u := r.base.JoinPath(name)
	what := fmt.Sprintf("%s from %q", name, r.base.Redacted())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", what, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		// The error names the URL; say it once, redacted.
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("fetching %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching %s: status %s", what, resp.Status)
	}
	data, err := readLimit(resp.Body, limit)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", what, err)
	}
	return data, nil
}

// fileRemote is a served-layout database in a local directory, named by a
// file:// URL.
type fileRemote string

func (r fileRemote) fetch(ctx context.Context, name string, limit int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Errors name the file's full path.
	return readFileLimit(filepath.Join(string(r), filepath.FromSlash(name)), limit)
}
