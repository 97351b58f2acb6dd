package goproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/mirror"
	"github.com/modgate/modgate/internal/upstream"
)

func TestStatus(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"bad request", fmt.Errorf("x: %w", ErrBadRequest), 400},
		{"not found", fmt.Errorf("x: %w", fs.ErrNotExist), 404},
		{"upstream not available (403 upstream)", fmt.Errorf("upstream answered 403: %w", fs.ErrNotExist), 404},
		{"upstream down", fmt.Errorf("x: %w", upstream.ErrUnavailable), 502},
		{"upstream timeout", fmt.Errorf("x: %w", upstream.ErrTimeout), 504},
		{"deadline", context.DeadlineExceeded, 504},
		{"verification", fmt.Errorf("%w: hash mismatch", mirror.ErrVerification), 502},
		// A verification failure must never read as "not found", or a
		// client with GOPROXY=modgate,direct would route around it.
		{"verification wrapping not found", fmt.Errorf("%w: %w", mirror.ErrVerification, fs.ErrNotExist), 502},
		{"method", errMethod, 405},
		{"client gone", context.Canceled, 499},
		{"disk full", fmt.Errorf("storing: %w", &fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}), 507},
		{"anything else", errors.New("disk on fire"), 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Status(tt.err); got != tt.want {
				t.Errorf("Status(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

// fakeService answers from fixed maps and records the options it got.
type fakeService struct {
	files   map[string]string
	answers map[string]*mirror.Answer
	err     error
	opts    mirror.Options
}

func (s *fakeService) File(_ context.Context, path, version, key string, opts mirror.Options) (*mirror.File, error) {
	s.opts = opts
	if s.err != nil {
		return nil, s.err
	}
	data, ok := s.files[key]
	if !ok {
		return nil, fmt.Errorf("%s@%s: %w", path, version, fs.ErrNotExist)
	}
	return &mirror.File{Body: io.NopCloser(strings.NewReader(data)), Result: mirror.Hit}, nil
}

func (s *fakeService) answer(key string, opts mirror.Options) (*mirror.Answer, error) {
	s.opts = opts
	if s.err != nil {
		return nil, s.err
	}
	if a, ok := s.answers[key]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
}

func (s *fakeService) List(_ context.Context, _, escPath string, opts mirror.Options) (*mirror.Answer, error) {
	return s.answer(escPath+"/@v/list", opts)
}

func (s *fakeService) Latest(_ context.Context, _, escPath string, opts mirror.Options) (*mirror.Answer, error) {
	return s.answer(escPath+"/@latest", opts)
}

func (s *fakeService) Query(_ context.Context, _, key string, opts mirror.Options) (*mirror.Answer, error) {
	return s.answer(key, opts)
}

func TestHandler(t *testing.T) {
	svc := &fakeService{
		files: map[string]string{"example.com/!a/@v/v1.0.0.mod": "module example.com/A\n"},
		answers: map[string]*mirror.Answer{
			"example.com/!a/@v/list":        {Data: []byte("v1.0.0\n"), Result: mirror.Hit},
			"example.com/!a/@latest":        {Data: []byte(`{"Version":"v1.0.0"}`), Result: mirror.Stale},
			"example.com/!a/@v/main.info":   {Data: []byte(`{"Version":"v0.0.0-20240101000000-abcdefabcdef"}`), Result: mirror.Miss},
			"example.com/!a/@v/v2.0.0.info": {Data: []byte(`{"Version":"v2.0.0+incompatible"}`), Result: mirror.Miss},
		},
	}
	h := NewHandler(svc, 90*time.Second, slog.New(slog.DiscardHandler))
	tests := []struct {
		method, path string
		status       int
		body         string
		header       map[string]string
	}{
		{"GET", "/example.com/!a/@v/v1.0.0.mod", 200, "module example.com/A\n", map[string]string{"Cache-Control": immutableCacheControl, "Content-Type": "text/plain; charset=utf-8", "X-Modgate-Cache": "hit"}},
		{"HEAD", "/example.com/!a/@v/v1.0.0.mod", 200, "", nil},
		{"GET", "/example.com/!a/@v/list", 200, "v1.0.0\n", map[string]string{"Cache-Control": "public, max-age=90"}},
		{"GET", "/example.com/!a/@latest", 200, `{"Version":"v1.0.0"}`, map[string]string{"Cache-Control": "no-cache", "X-Modgate-Cache": "stale"}},
		{"GET", "/example.com/!a/@v/main.info", 200, `{"Version":"v0.0.0-20240101000000-abcdefabcdef"}`, map[string]string{"Content-Type": "application/json"}},
		// A version that is not valid for the path is a query (the upstream
		// may know it as +incompatible); what it cannot name is not found.
		{"GET", "/example.com/!a/@v/v2.0.0.info", 200, `{"Version":"v2.0.0+incompatible"}`, nil},
		{"GET", "/example.com/!a/@v/v2.0.0.zip", 404, "modgate: /example.com/!a/@v/v2.0.0.zip: not found: example.com/A@v2.0.0: invalid version: should be v0 or v1, not v2\n", map[string]string{"Cache-Control": errorCacheControl}},
		{"GET", "/example.com/!a/@v/main.mod", 404, "", nil},
		{"GET", "/example.com/!a/@v/list.zip", 404, "", nil},
		{"GET", "/example.com/!a/@v/v1.0.0.tar", 400, "", nil},
		{"GET", "/localhost/a/@v/v1.0.0.info", 400, "", nil},
		{"GET", "/example.com/!a/@v/v1.1.0.mod", 404, "modgate: example.com/A@v1.1.0: file does not exist\n", map[string]string{"Cache-Control": errorCacheControl}},
		{"POST", "/example.com/!a/@v/list", 405, "", map[string]string{"Allow": "GET, HEAD"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.status {
				t.Fatalf("%s %s = %d %q, want %d", tt.method, tt.path, rec.Code, rec.Body, tt.status)
			}
			if tt.body != "" && rec.Body.String() != tt.body {
				t.Errorf("%s %s body = %q, want %q", tt.method, tt.path, rec.Body, tt.body)
			}
			if tt.method == "HEAD" && rec.Body.Len() != 0 {
				t.Errorf("HEAD wrote a body: %q", rec.Body)
			}
			for k, v := range tt.header {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s %s header %s = %q, want %q", tt.method, tt.path, k, got, v)
				}
			}
		})
	}
}

func TestHandlerDisableModuleFetch(t *testing.T) {
	svc := &fakeService{}
	h := NewHandler(svc, time.Minute, slog.New(slog.DiscardHandler))
	req := httptest.NewRequest("GET", "/example.com/a/@v/v1.0.0.zip", nil)
	req.Header.Set("Disable-Module-Fetch", "true")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if !svc.opts.NoFetch {
		t.Error("Disable-Module-Fetch: true did not reach the service as NoFetch")
	}
}

func TestHandlerInternalErrorHidesDetails(t *testing.T) {
	svc := &fakeService{err: errors.New("open /secret/path: disk on fire")}
	h := NewHandler(svc, time.Minute, slog.New(slog.DiscardHandler))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/example.com/a/@v/v1.0.0.zip", nil))
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "/secret/path") {
		t.Errorf("internal error answered %d %q; want 500 without internal details", rec.Code, rec.Body)
	}
}
