package server_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/cli"
	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/server"
	"github.com/modgate/modgate/internal/testenv"
)

// BenchmarkCacheHit measures modgate's handler on warm files against the
// floor of net/http's FileServer on the same store directory, in the same
// run. Both write into a discarding ResponseWriter, so the numbers are the
// per-request cost without the network: ns/op is the wall time of the loop,
// cpu-ns/op the whole process's CPU time (the audit writer and the log
// flusher run on other goroutines). Compare modgate/* with fileserver/* for
// the ratio.
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
	// Variants: the default (audit log on, access log at info, no
	// policy), the audit log off, the access log off (level warn), and a
	// policy of four rules that all have to be evaluated for the
	// module (deny of another module, a pin, a cooldown and a
	// vulnerability rule against a small database), so the ratio between
	// them is the price of each feature on the hot path.
	vulnDir := b.TempDir()
	if err := os.WriteFile(filepath.Join(vulnDir, "GO-2099-0001.json"), []byte(benchOSV), 0o644); err != nil {
		b.Fatal(err)
	}
	variants := []struct {
		name  string
		level config.LogLevel
		edit  func(*config.Config)
	}{
		// What a default `modgate serve` does: the audit log on and one
		// access-log line per request, through serve's own logger, to a
		// file.
		{"default", config.LogLevelInfo, func(*config.Config) {}},
		{"audit=off", config.LogLevelInfo, func(c *config.Config) { c.Audit.Enabled = false }},
		{"log=warn", config.LogLevelWarn, func(*config.Config) {}},
		{"policy", config.LogLevelInfo, func(c *config.Config) {
			c.Policy.VulnDB.Dir = vulnDir
			c.Policy.Rules = []config.PolicyRule{
				{Name: "no-evil", Deny: config.PolicyModules{Modules: []string{"example.com/evil"}, Present: true}},
				{Name: "pin", Pin: config.PolicyModules{Modules: []string{"example.com/hello"}, Versions: []string{">=v1.0.0"}, Present: true}},
				{Name: "cooldown", Cooldown: config.PolicyCooldown{MinAge: config.Duration{Duration: time.Hour}, Present: true}},
				{Name: "vulns", Vulnerabilities: config.PolicyVulns{Present: true}},
			}
		}},
	}
	for _, v := range variants {
		c := cfg.Clone()
		c.DataDir = filepath.Join(b.TempDir(), "data")
		c.Log.Level = v.level
		v.edit(&c)
		logFile, err := os.Create(filepath.Join(b.TempDir(), "modgate.log"))
		if err != nil {
			b.Fatal(err)
		}
		log, stopLog := cli.NewLogger(c.Log, logFile)
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
		for _, name := range benchKinds {
			b.Run("modgate/"+v.name+"/"+name, func(b *testing.B) {
				benchHandler(b, h, paths[name])
			})
		}
		srv.Close()
		stopLog()
		logFile.Close()
	}
	floor := http.FileServer(http.Dir(filepath.Join(floorDir(b, cfg, paths), "modules")))
	for _, name := range benchKinds {
		b.Run("fileserver/"+name, func(b *testing.B) { benchHandler(b, floor, paths[name]) })
	}
}

// benchKinds is the order in which the files are benchmarked.
var benchKinds = []string{"info", "mod", "zip"}

func serveOnce(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func benchHandler(b *testing.B, h http.Handler, path string) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for b.Loop() {
		w := discardWriter{h: make(http.Header)}
		h.ServeHTTP(&w, req)
		if w.status != 0 && w.status != http.StatusOK {
			b.Fatalf("%s: status %d", path, w.status)
		}
	}
	reportCPU(b, cpu0)
}

// processCPU is the user and system CPU time the process has used so far,
// background goroutines (the audit writer, the log flusher) included.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time per operation since cpu0
// (cpu-ns/op): the in-process counterpart of bench/run.sh's "server CPU per
// request", which ns/op (wall time of the loop) hides when work moves to
// another goroutine.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
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
