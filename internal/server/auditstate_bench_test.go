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

// BenchmarkCacheHitAuditPostgres is the price of the replicas' shared
// audit chain on the hot path: cache hits with the state in files and in
// PostgreSQL (state.postgres), each with the audit log off and on (files:
// the single-node default; postgres: the shared chain, batched appends),
// in one run so that the ratios compare like with like. The issue's
// target: postgres/audit=on ≥ 0.9 × postgres/audit=off in req/s. The
// database runs on the same CPUs, so its work counts too.
func BenchmarkCacheHitAuditPostgres(b *testing.B) {
	up := testenv.NewUpstream(b, testenv.Fixtures(b))
	pg := testenv.NewPostgres(b)
	b.Setenv("MODGATE_BENCH_AUDIT_DSN", pg.DSN(b))
	paths := map[string]string{
		"zip":  "/example.com/hello/@v/v1.0.0.zip",
		"info": "/example.com/hello/@v/v1.0.0.info",
	}
	variants := []struct {
		name string
		edit func(*config.Config)
	}{
		{"files/audit=off", func(c *config.Config) { c.Audit.Enabled = false }},
		{"files/audit=on", func(*config.Config) {}},
		{"postgres/audit=off", func(c *config.Config) {
			c.State.Postgres.DSNEnv = "MODGATE_BENCH_AUDIT_DSN"
			c.Audit.Enabled = false
		}},
		{"postgres/audit=on", func(c *config.Config) {
			c.State.Postgres.DSNEnv = "MODGATE_BENCH_AUDIT_DSN"
			c.Server.ReplicaName = "bench"
		}},
	}
	for _, v := range variants {
		c := config.Default()
		c.DataDir = filepath.Join(b.TempDir(), "data")
		c.Upstream.GOPROXY = up.URL()
		c.SumDB.GOSUMDB = up.VerifierKey()
		v.edit(&c)
		if err := c.Resolve(config.GoEnv{}); err != nil {
			b.Fatal(err)
		}
		log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
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
			b.Run(v.name+"/"+name, func(b *testing.B) { benchHandler(b, h, p) })
		}
		// Over loopback HTTP with 16 keep-alive clients, as a load test
		// would (the request's network and HTTP costs included).
		ts := httptest.NewServer(h)
		b.Run(v.name+"/http-info", func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(ts.URL + paths["info"])
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
		ts.Close()
		if err := srv.Close(); err != nil {
			b.Errorf("%s: close: %v", v.name, err)
		}
	}
}
