package vulndb

import (
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/modgate/modgate/internal/httperr"
)

// Response headers of the re-served database, set in one place (serve).
const (
	jsonContentType = "application/json"
	gzipContentType = "application/gzip"
	// cacheControl makes clients and caches revalidate (cheap, with the
	// ETag): entries and indexes change with every sync.
	cacheControl = "no-cache"
)

// Handler serves the synced copy in the layout of the Go vulnerability
// database, relative to where it is mounted (strip the prefix with
// http.StripPrefix):
//
//	index/db.json      {"modified": ...}
//	index/modules.json [{"path", "vulns": [{"id", "modified", "fixed"}]}]
//	index/vulns.json   [{"id", "modified", "aliases"}]
//	ID/<id>.json       an OSV entry, byte-for-byte as synced
//
// Each file is also served gzip-compressed under its name plus ".gz"
// (Content-Type application/gzip, no Content-Encoding): that is what
// govulncheck's HTTP client asks for, after checking that a HEAD of
// index/db.json succeeds. A ".json" request whose Accept-Encoding allows
// gzip gets the same compressed bytes with Content-Encoding: gzip. Every
// response has an ETag and honours If-None-Match, Range and HEAD.
//
// Before the first copy is loaded every request answers 503; unknown paths
// answer 404. Only GET and HEAD are allowed. Errors are written by package
// httperr, like every route's.
func (s *Syncer) Handler() http.Handler {
	return http.HandlerFunc(s.serve)
}

func (s *Syncer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httperr.Write(w, r, fmt.Errorf("method %s not allowed: use GET or HEAD: %w", r.Method, httperr.ErrMethod))
		return
	}
	snap := s.cur.Load()
	if snap == nil {
		httperr.Write(w, r, fmt.Errorf("vulnerability database not synced yet: %w", httperr.ErrNotReady))
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	gz := strings.HasSuffix(name, ".gz")
	name = strings.TrimSuffix(name, ".gz")
	etag, ok := snap.etag(name)
	if !ok {
		httperr.Write(w, r, fmt.Errorf("%s: no such file in the vulnerability database: %w", name, fs.ErrNotExist))
		return
	}

	h := w.Header()
	file := name
	switch {
	case gz:
		file += ".gz"
		etag = gzipETag(etag)
		h.Set("Content-Type", gzipContentType)
	case acceptsGzip(r.Header.Get("Accept-Encoding")):
		file += ".gz"
		etag = gzipETag(etag)
		h.Set("Content-Type", jsonContentType)
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
	default:
		h.Set("Content-Type", jsonContentType)
		h.Add("Vary", "Accept-Encoding")
	}
	f, err := os.Open(filepath.Join(snap.dir, filepath.FromSlash(file)))
	if err != nil {
		// Not fs.ErrNotExist for the client: the index named the file.
		httperr.Write(w, r, fmt.Errorf("serving vulnerability database file %s: %v", file, err))
		return
	}
	defer f.Close()
	h.Set("ETag", etag)
	h.Set("Cache-Control", cacheControl)
	http.ServeContent(w, r, "", time.Time{}, f)
}

// etag returns the ETag of the uncompressed file name ("index/db.json",
// "ID/GO-2024-1234.json"), and false when the copy has no such file.
func (s *snapshot) etag(name string) (string, bool) {
	if id, ok := strings.CutPrefix(name, "ID/"); ok {
		id, ok = strings.CutSuffix(id, ".json")
		if !ok {
			return "", false
		}
		e := s.db.byID[id]
		if e == nil {
			return "", false
		}
		return e.etag, true
	}
	etag, ok := s.indexETags[name]
	return etag, ok
}

// gzipETag derives the entity tag of a file's gzip representation from the
// tag of its JSON, so the two are never confused by a cache.
func gzipETag(etag string) string {
	return strings.TrimSuffix(etag, `"`) + `-gz"`
}

// acceptsGzip reports whether an Accept-Encoding header value allows gzip
// (explicitly, not with q=0).
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
		return !ok || strings.Trim(q, "0.") != ""
	}
	return false
}
