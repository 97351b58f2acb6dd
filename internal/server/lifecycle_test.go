package server_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/server"
	"github.com/modgate/modgate/internal/testenv"
)

// TestNewCleansUpAfterALateFailure: when a late step of server.New fails
// (here the TLS certificate, read after the mirror's workers, the ledger,
// the policy's files and the audit log were started), New closes what it
// started: no goroutine of modgate's and no open file is left behind. Not
// parallel: it counts the process's goroutines and files.
func TestNewCleansUpAfterALateFailure(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	garbage := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Upstream.GOPROXY = up.URL()
	cfg.SumDB.GOSUMDB = up.VerifierKey()
	cfg.Upstream.PrefetchWorkers = 4
	cfg.Audit.Enabled = true
	cfg.TLS.CertFile, cfg.TLS.KeyFile = garbage, garbage
	if err := cfg.Resolve(config.GoEnv{}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("invalid test configuration: %v", err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))

	goroutines, files := modgateGoroutines(), openFiles(t)
	for range 3 {
		if _, err := server.New(cfg, log, server.WithDialControl(testenv.LoopbackOnly)); err == nil || !strings.Contains(err.Error(), "tls") {
			t.Fatalf("server.New with a garbage certificate = %v, want a tls error", err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		g, f := modgateGoroutines(), openFiles(t)
		if g <= goroutines && f <= files {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("after 3 failed server.New: %d modgate goroutines (were %d), %d open files (were %d):\n%s",
				g, goroutines, f, files, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// modgateGoroutines counts the goroutines running modgate's code, the
// test's own left out.
func modgateGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("modgate/modgate/internal/")) && !bytes.Contains(g, []byte("_test.")) {
			count++
		}
	}
	return count
}

// openFiles counts the process's open file descriptors (0 where
// /proc/self/fd does not exist).
func openFiles(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(entries)
}

// TestUpstreamDialsAreGuarded: the harness gives modgate's upstream client
// testenv.LoopbackOnly, so an upstream outside loopback is refused before
// anything is sent. 0.0.0.0 stands for it: Linux delivers it locally, so
// without the guard the request would reach the fake upstream and pass.
func TestUpstreamDialsAreGuarded(t *testing.T) {
	t.Parallel()
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, func(c *config.Config) {
		c.Upstream.GOPROXY = strings.Replace(up.URL(), "127.0.0.1", "0.0.0.0", 1)
	})
	if code, body, _ := in.get(t, "/example.com/hello/@v/v1.0.0.info"); code < 500 {
		t.Errorf("GET through an upstream outside loopback = %d %s, want it refused (5xx)", code, body)
	}
	if n := up.Count("/example.com/hello/@v/v1.0.0.info"); n != 0 {
		t.Errorf("the upstream was reached %d times through 0.0.0.0", n)
	}
}
