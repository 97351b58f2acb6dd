// Package goproxy implements the GOPROXY protocol (see `go help goproxy`):
// it parses and validates request paths, asks the module service, and writes
// responses with the status codes, content types and cache headers the go
// command and HTTP caches expect.
//
// Errors map to statuses in package httperr, shared by every route. It does not fetch,
// verify or store anything: that is package mirror's job.
package goproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/modgate/modgate/internal/httperr"
	"github.com/modgate/modgate/internal/mirror"
	"github.com/modgate/modgate/internal/policy"
	"github.com/modgate/modgate/internal/reqlog"
)

// Cache lifetimes sent to clients and HTTP caches.
const (
	// immutableCacheControl is for .info/.mod/.zip of canonical versions:
	// a version's files never change once published.
	immutableCacheControl = "public, max-age=31536000, immutable"
	// errorCacheControl keeps intermediaries from remembering failures.
	errorCacheControl = "no-store"
)

// Service is the module service the handler serves from. *mirror.Mirror
// implements it.
type Service interface {
	File(ctx context.Context, path, version, key string, opts mirror.Options) (*mirror.File, error)
	List(ctx context.Context, path, escPath string, opts mirror.Options) (*mirror.Answer, error)
	Latest(ctx context.Context, path, escPath string, opts mirror.Options) (*mirror.Answer, error)
	Query(ctx context.Context, path, key string, opts mirror.Options) (*mirror.Answer, error)
}

// A Handler serves module requests ("/{module}/@v/..." and "/{module}/@latest").
type Handler struct {
	svc Service
	log *slog.Logger
	// mutableCacheControl is sent with list, latest and query answers.
	mutableCacheControl string
	// fileHeader holds the header values of versioned files.
	fileHeader fileHeader
}

// NewHandler returns a Handler. listTTL is advertised to HTTP caches as the
// lifetime of mutable answers.
func NewHandler(svc Service, listTTL time.Duration, log *slog.Logger) *Handler {
	secs := max(int(listTTL/time.Second), 0)
	return &Handler{
		svc:                 svc,
		log:                 log,
		mutableCacheControl: "public, max-age=" + strconv.Itoa(secs),
		fileHeader:          newFileHeader(),
	}
}

// ServeHTTP answers GET and HEAD; other methods get 405.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, errMethod)
		return
	}
	if err := h.serve(w, r); err != nil {
		var stale *mirror.StaleMiss
		if errors.As(err, &stale) {
			// The upstreams are down; this is the "not found" they gave
			// before, as a list or latest answer would be served stale.
			reqlog.From(r.Context()).Cache = string(mirror.Stale)
			w.Header().Set("X-Modgate-Cache", string(mirror.Stale))
			w.Header().Set("Warning", staleWarning)
		}
		writeError(w, r, err)
	}
}

// staleWarning marks an answer (or a remembered "not found") served from
// the cache because every upstream failed.
const staleWarning = `110 - "response is stale: every upstream failed"`

var errMethod = fmt.Errorf("%w (the module proxy protocol is read-only: GET or HEAD)", httperr.ErrMethod)

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	req, err := ParseRequest(strings.TrimPrefix(r.URL.Path, "/"))
	e := reqlog.From(r.Context())
	if req.Kind != 0 {
		e.Artifact, e.Module, e.Version = req.Kind.String(), req.Module, req.Version
	}
	if err != nil {
		return err
	}
	opts := mirror.Options{NoFetch: r.Header.Get("Disable-Module-Fetch") == "true"}
	ctx := r.Context()

	var ans *mirror.Answer
	switch {
	case req.Kind == KindList:
		ans, err = h.svc.List(ctx, req.Module, escapedModule(req.Path), opts)
	case req.Kind == KindLatest:
		ans, err = h.svc.Latest(ctx, req.Module, escapedModule(req.Path), opts)
	case req.Query:
		ans, err = h.svc.Query(ctx, req.Module, req.Path, opts)
	default:
		f, err := h.svc.File(ctx, req.Module, req.Version, req.Path, opts)
		if err != nil {
			return err
		}
		defer f.Body.Close()
		e.Cache, e.Upstream = string(f.Result), f.Upstream
		// Tells `modgate prefetch` (and curious operators) whether the
		// file was stored already.
		w.Header().Set("X-Modgate-Cache", string(f.Result))
		if e.Warning != "" {
			w.Header().Set(policy.HeaderWarning, e.Warning)
		}
		h.serveFile(w, r, req.Kind, f)
		return nil
	}
	if err != nil {
		return err
	}
	e.Cache, e.Upstream = string(ans.Result), ans.Upstream
	if e.Warning != "" {
		w.Header().Set(policy.HeaderWarning, e.Warning)
	}
	h.serveAnswer(w, r, req.Kind, ans)
	return nil
}

// escapedModule returns the escaped module path of a parsed request path.
func escapedModule(p string) string {
	if m, ok := strings.CutSuffix(p, "/@latest"); ok {
		return m
	}
	return p[:strings.LastIndex(p, "/@v/")]
}

func contentType(k Kind) string {
	switch k {
	case KindInfo, KindLatest:
		return "application/json"
	case KindZip:
		return "application/zip"
	}
	return "text/plain; charset=utf-8"
}

// A statter is implemented by *os.File and by the in-memory store's readers.
type statter interface {
	Stat() (fs.FileInfo, error)
}

// serveFile writes an immutable versioned file. Files that can seek and stat
// (the disk store's *os.File) go through http.ServeContent, which handles
// HEAD, Range and conditional requests and sends the bytes with sendfile(2).
func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, k Kind, f *mirror.File) {
	hdr := w.Header()
	h.fileHeader.set(hdr, k, f.Result)
	rs, seekable := f.Body.(io.ReadSeeker)
	st, statable := f.Body.(statter)
	if seekable && statable {
		if fi, err := st.Stat(); err == nil {
			hdr.Set("ETag", etag(fi))
			http.ServeContent(w, r, "", fi.ModTime(), rs)
			return
		}
	}
	if r.Method == http.MethodHead {
		return
	}
	io.Copy(w, f.Body)
}

// etag derives a strong validator from size and modification time: the
// content under a key never changes, so these identify it.
func etag(fi fs.FileInfo) string {
	return `"` + strconv.FormatInt(fi.Size(), 36) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 36) + `"`
}

func (h *Handler) serveAnswer(w http.ResponseWriter, r *http.Request, k Kind, a *mirror.Answer) {
	hdr := w.Header()
	hdr.Set("Content-Type", contentType(k))
	hdr.Set("X-Modgate-Cache", string(a.Result))
	if a.Result == mirror.Stale {
		hdr.Set("Cache-Control", "no-cache")
		hdr.Set("Warning", staleWarning)
	} else {
		hdr.Set("Cache-Control", h.mutableCacheControl)
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.Data))
}

// Status maps an error to the HTTP status the client gets; the table is
// httperr's, shared by every route.
func Status(err error) int { return httperr.Status(err) }

// writeError answers with one short text line, which the go command shows
// its user as "server response: ..." (see package httperr).
func writeError(w http.ResponseWriter, r *http.Request, err error) { httperr.Write(w, r, err) }

// WriteError is httperr.Write, kept for the routes that called it here.
func WriteError(w http.ResponseWriter, r *http.Request, err error) { httperr.Write(w, r, err) }
