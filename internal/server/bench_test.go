package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

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
	// Variants: the default (audit log on, no policy), the audit log off,
	// and a policy of four rules that all have to be evaluated for the
	// module (deny of another module, a pin, a cooldown and a
	// vulnerability rule against a small database), so the ratio between
	// them is the price of each feature on the hot path.
	vulnDir := b.TempDir()
	if err := os.WriteFile(filepath.Join(vulnDir, "GO-2099-0001.json"), []byte(benchOSV), 0o644); err != nil {
		b.Fatal(err)
	}
	variants := []struct {
		name string
		edit func(*config.Config)
	}{
		{"default", func(*config.Config) {}},
		{"audit=off", func(c *config.Config) { c.Audit.Enabled = false }},
		{"policy", func(c *config.Config) {
			c.Policy.VulnDB.Dir = vulnDir
			c.Policy.Rules = []config.PolicyRule{
				{Name: "no-evil", Deny: config.PolicyModules{Modules: []string{"example.com/evil"}, Present: true}},
				{Name: "pin", Pin: config.PolicyModules{Modules: []string{"example.com/hello"}, Versions: []string{">=v1.0.0"}, Present: true}},
				{Name: "cooldown", Cooldown: config.PolicyCooldown{MinAge: config.Duration{Duration: time.Hour}, Present: true}},
				{Name: "vulns", Vulnerabilities: config.PolicyVulns{Present: true}},
			}
		}},
	}
	for _, level := range []slog.Level{slog.LevelWarn, slog.LevelInfo} {
		for _, v := range variants {
			if level == slog.LevelInfo && v.name != "default" {
				continue
			}
			c := cfg.Clone()
			c.DataDir = filepath.Join(b.TempDir(), "data")
			v.edit(&c)
			log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: level}))
			srv, err := server.New(c, log, server.WithDialControl(testenv.LoopbackOnly))
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
				b.Run("modgate/"+v.name+"/log="+level.String()+"/"+name, func(b *testing.B) {
					benchHandler(b, h, p)
				})
			}
			srv.Close()
		}
	}
	floor := http.FileServer(http.Dir(filepath.Join(floorDir(b, cfg, paths), "modules")))
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

// floorDir fills a data directory for the file server floor.
func floorDir(b *testing.B, cfg config.Config, paths map[string]string) string {
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler), server.WithDialControl(testenv.LoopbackOnly))
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	for _, p := range paths {
		if rec := serveOnce(srv.Handler(), p); rec.Code != http.StatusOK {
			b.Fatalf("warming %s: %d %s", p, rec.Code, rec.Body)
		}
	}
	return cfg.DataDir
}

// benchOSV is a vulnerability of example.com/hello before v0.9.0: the
// benchmark's versions are looked up and found unaffected.
const benchOSV = `{"schema_version":"1.3.1","id":"GO-2099-0001","modified":"2099-01-01T00:00:00Z","published":"2099-01-01T00:00:00Z",
"summary":"benchmark entry","affected":[{"package":{"name":"example.com/hello","ecosystem":"Go"},
"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.9.0"}]}]}]}`
