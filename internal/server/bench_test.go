package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/server"
	"github.com/modgate/modgate/internal/testenv"
)

// BenchmarkCacheHit measures modgate's handler on warm files against the
// floor of net/http's FileServer on the same store directory, in the same
// run. Both write into a discarding ResponseWriter, so the numbers are the
// per-request CPU cost, without the network. Compare modgate/* with
// fileserver/* for the ratio.
func BenchmarkCacheHit(b *testing.B) {
	up := testenv.NewUpstream(b, testenv.Fixtures(b))
	cfg := config.Default()
	cfg.DataDir = filepath.Join(b.TempDir(), "data")
	cfg.Upstream.GOPROXY = up.URL()
	cfg.SumDB.GOSUMDB = up.VerifierKey()
	if err := cfg.Resolve(config.GoEnv{}); err != nil {
		b.Fatal(err)
	}
	paths := map[string]string{
		"zip":  "/example.com/hello/@v/v1.0.0.zip",
		"mod":  "/example.com/hello/@v/v1.0.0.mod",
		"info": "/example.com/hello/@v/v1.0.0.info",
	}
	for _, level := range []slog.Level{slog.LevelWarn, slog.LevelInfo} {
		log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: level}))
		srv, err := server.New(cfg, log)
		if err != nil {
			b.Fatal(err)
		}
		h := srv.Handler()
		for _, p := range paths { // warm
			if rec := serveOnce(h, p); rec.Code != http.StatusOK {
				b.Fatalf("warming %s: %d %s", p, rec.Code, rec.Body)
			}
		}
		for name, p := range paths {
			b.Run("modgate/log="+level.String()+"/"+name, func(b *testing.B) {
				benchHandler(b, h, p)
			})
		}
		srv.Close()
	}
	floor := http.FileServer(http.Dir(filepath.Join(cfg.DataDir, "modules")))
	for name, p := range paths {
		b.Run("fileserver/"+name, func(b *testing.B) { benchHandler(b, floor, p) })
	}
}

func serveOnce(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func benchHandler(b *testing.B, h http.Handler, path string) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	b.ReportAllocs()
	for b.Loop() {
		w := discardWriter{h: make(http.Header)}
		h.ServeHTTP(&w, req)
		if w.status != 0 && w.status != http.StatusOK {
			b.Fatalf("%s: status %d", path, w.status)
		}
	}
}

// discardWriter is a ResponseWriter that drops the body.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
