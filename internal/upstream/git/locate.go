package git

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/upstream"
)

// A location says where a module's code lives.
type location struct {
	root   string // import path of the repository root ("corp.example.com/platform/auth")
	url    string // clone URL
	subdir string // extra subdirectory from a go-import tag; usually ""
}

// locate finds the repository of modulePath, which Matches.
func (s *Source) locate(ctx context.Context, modulePath string) (location, error) {
	if s.direct != nil {
		return s.locateDirect(ctx, modulePath)
	}
	if s.cfg.URL != "" {
		root, ok := s.templateRoot(modulePath)
		if !ok {
			return location{}, notExist("module path %s is not matched by any pattern of the source", modulePath)
		}
		return location{root: root, url: expandTemplate(s.cfg.URL, root)}, nil
	}
	return s.discover(ctx, modulePath)
}

// templateRoot returns the repository root of modulePath in template
// mode: the leading elements matched by the first matching pattern.
func (s *Source) templateRoot(modulePath string) (string, bool) {
	elems := strings.Split(modulePath, "/")
	for _, p := range s.cfg.Patterns {
		p = strings.Trim(p, "/")
		if p == "" || !module.MatchPrefixPatterns(p, modulePath) {
			continue
		}
		n := strings.Count(p, "/") + 1
		if n > len(elems) {
			continue
		}
		return strings.Join(elems[:n], "/"), true
	}
	return "", false
}

// expandTemplate fills {root} and {path} (the root without its host).
func expandTemplate(tmpl, root string) string {
	_, rest, _ := strings.Cut(root, "/")
	return strings.NewReplacer("{root}", root, "{path}", rest).Replace(tmpl)
}

// A metaImport is one go-import meta tag.
type metaImport struct {
	prefix, vcs, repoRoot, subdir string
}

// discover finds the repository of modulePath with go-import meta tags:
// it asks https://{prefix}?go-get=1 for modulePath and then for each
// shorter prefix (as servers hosting nested groups expect) until one
// answers with a tag whose prefix contains modulePath. Results are kept
// for RefsTTL.
func (s *Source) discover(ctx context.Context, modulePath string) (location, error) {
	if loc, ok := s.cachedDiscovery(modulePath); ok {
		return loc, nil
	}
	elems := strings.Split(modulePath, "/")
	var lastErr error
	for n := len(elems); n >= 1; n-- {
		prefix := strings.Join(elems[:n], "/")
		imports, err := s.fetchMeta(ctx, prefix)
		if err != nil {
			if isNotFound(err) {
				lastErr = err
				continue
			}
			return location{}, err
		}
		var found []metaImport
		for _, mi := range imports {
			if hasPathPrefix(modulePath, mi.prefix) {
				found = append(found, mi)
			}
		}
		if len(found) == 0 {
			lastErr = notExist("https://%s?go-get=1: no go-import meta tag for %s", prefix, modulePath)
			continue
		}
		if len(found) > 1 {
			return location{}, notExist("https://%s?go-get=1: several go-import meta tags match %s", prefix, modulePath)
		}
		mi := found[0]
		if mi.vcs != "git" {
			return location{}, notExist("https://%s?go-get=1: go-import meta tag for %s names vcs %q, not git", prefix, mi.prefix, mi.vcs)
		}
		u, err := url.Parse(mi.repoRoot)
		if err != nil || u.Host == "" && !strings.Contains(mi.repoRoot, ":") {
			return location{}, notExist("https://%s?go-get=1: go-import meta tag for %s has invalid repository URL %q", prefix, mi.prefix, redactURL(mi.repoRoot))
		}
		loc := location{root: mi.prefix, url: mi.repoRoot, subdir: mi.subdir}
		s.rememberDiscovery(mi.prefix, loc)
		return loc, nil
	}
	if lastErr == nil {
		lastErr = notExist("no go-import meta tag for %s", modulePath)
	}
	return location{}, lastErr
}

// cachedDiscovery returns the location of modulePath found by discovery
// less than RefsTTL ago.
func (s *Source) cachedDiscovery(modulePath string) (location, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for prefix, d := range s.discovered {
		if hasPathPrefix(modulePath, prefix) && time.Since(d.at) < s.cfg.RefsTTL {
			return d.loc, true
		}
	}
	return location{}, false
}

// rememberDiscovery keeps a discovered location for RefsTTL.
func (s *Source) rememberDiscovery(prefix string, loc location) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.discovered[prefix] = discovery{loc: loc, at: time.Now()}
}

// discovery is a cached go-import answer.
type discovery struct {
	loc location
	at  time.Time
}

// fetchMeta asks https://{prefix}?go-get=1 for go-import meta tags, with
// credentials (the host is one of the source's own).
func (s *Source) fetchMeta(ctx context.Context, prefix string) ([]metaImport, error) {
	ctx, cancel := context.WithTimeout(ctx, s.refsTimeout())
	defer cancel()
	u := "https://" + prefix + "?go-get=1"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, notExist("%s: %v", u, err)
	}
	if c := s.cfg.Credentials; c.Password != "" {
		req.SetBasicAuth(c.username(), c.Password)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, wrapf(netError(err), "%s", u)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, &classed{class: []error{ErrAuthentication, upstream.ErrUnavailable},
			msg: fmt.Sprintf("%s: authentication rejected (HTTP %d)", u, resp.StatusCode)}
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, notExist("%s: HTTP %d", u, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, unavailable("%s: HTTP %d %s", u, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	imports, err := parseMetaGoImports(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, unavailable("%s: reading go-import meta tags: %v", u, err)
	}
	return imports, nil
}

// parseMetaGoImports reads go-import meta tags from an HTML page the way
// the go command does: a lax XML tokenizer, stopping at <body> or </head>.
// "mod" entries are ignored (this source serves from Git).
func parseMetaGoImports(r io.Reader) ([]metaImport, error) {
	d := xml.NewDecoder(r)
	d.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		if strings.EqualFold(charset, "utf-8") || strings.EqualFold(charset, "ascii") {
			return input, nil
		}
		return nil, fmt.Errorf("can't decode XML document using charset %q", charset)
	}
	d.Strict = false
	var imports []metaImport
	for {
		t, err := d.RawToken()
		if err != nil {
			if err != io.EOF && len(imports) == 0 {
				return nil, err
			}
			break
		}
		if e, ok := t.(xml.StartElement); ok && strings.EqualFold(e.Name.Local, "body") {
			break
		}
		if e, ok := t.(xml.EndElement); ok && strings.EqualFold(e.Name.Local, "head") {
			break
		}
		e, ok := t.(xml.StartElement)
		if !ok || !strings.EqualFold(e.Name.Local, "meta") || attrValue(e.Attr, "name") != "go-import" {
			continue
		}
		if f := strings.Fields(attrValue(e.Attr, "content")); len(f) == 3 || len(f) == 4 {
			mi := metaImport{prefix: f[0], vcs: f[1], repoRoot: f[2]}
			if len(f) == 4 {
				mi.subdir = path.Clean(f[3])
			}
			if mi.vcs != "mod" {
				imports = append(imports, mi)
			}
		}
	}
	return imports, nil
}

func attrValue(attrs []xml.Attr, name string) string {
	for _, a := range attrs {
		if strings.EqualFold(a.Name.Local, name) {
			return a.Value
		}
	}
	return ""
}

// hasPathPrefix reports whether the path s begins with the elements of
// prefix.
func hasPathPrefix(s, prefix string) bool {
	return s == prefix || strings.HasPrefix(s, prefix) && (strings.HasSuffix(prefix, "/") || s[len(prefix)] == '/')
}

// isNotFound reports whether err means "not found".
func isNotFound(err error) bool { return err != nil && isClass(err, fs.ErrNotExist) }

// redactURL hides credentials in a URL that is shown.
func redactURL(raw string) string { return upstream.RedactURL(raw) }
