package deploy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/server"
	"github.com/modgate/modgate/internal/testenv"
)

// startModgate starts an in-process modgate on 127.0.0.1 in front of a
// fake upstream serving the fixtures and extra, loaded from configYAML
// (upstream.goproxy and sumdb.gosumdb are set to the fake's), and returns
// its URL and the upstream. It is stopped when the test ends.
func startModgate(t *testing.T, configYAML string, extra ...*testenv.Module) (string, *testenv.Upstream) {
	t.Helper()
	up := testenv.NewUpstream(t, append(testenv.Fixtures(t), extra...))
	file := filepath.Join(t.TempDir(), "modgate.yaml")
	if err := os.WriteFile(file, []byte(configYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file, func(string) string { return "" })
	if err != nil {
		t.Fatalf("loading the test config: %v", err)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Upstream.GOPROXY = up.URL()
	cfg.SumDB.GOSUMDB = up.VerifierKey()
	cfg.Upstream.Retries = 0
	cfg.Server.DrainPeriod = config.Duration{}
	if err := cfg.Resolve(config.GoEnv{}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("invalid test configuration: %v", err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(cfg, log, server.WithDialControl(testenv.LoopbackOnly))
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("modgate did not shut down within 30s")
		}
		srv.Close()
	})
	return "http://" + ln.Addr().String(), up
}

// get fetches url and returns the status and body.
func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// tool returns the path of an external program the test needs, or ends
// the test through testenv.Unavailable with how to install it.
func tool(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testenv.Unavailable(t, "%s is not installed (%s)", name, install)
	}
	return p
}
