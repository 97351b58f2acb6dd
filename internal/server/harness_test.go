package server_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/server"
	"github.com/modgate/modgate/internal/testenv"
)

// instance is a modgate serving on 127.0.0.1 for one test.
type instance struct {
	URL     string
	DataDir string
	srv     *server.Server
	stop    context.CancelFunc
	done    chan error
}

// startModgate starts an in-process modgate in front of up, configured the
// way an operator would: upstream.goproxy is the fake upstream, and
// sumdb.gosumdb its test checksum database. edit may change the
// configuration before it is validated.
func startModgate(t *testing.T, up *testenv.Upstream, edit func(*config.Config)) *instance {
	t.Helper()
	return startWith(t, config.Default(), up, edit)
}

// startWith points cfg at up (see startModgate) on a free port with a
// fresh data directory, applies edit and starts it.
func startWith(t *testing.T, cfg config.Config, up *testenv.Upstream, edit func(*config.Config), opts ...server.Option) *instance {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Upstream.GOPROXY = up.URL()
	cfg.SumDB.GOSUMDB = up.VerifierKey()
	cfg.Upstream.Retries = 0
	cfg.Log.Level = config.LogLevelWarn
	// Tests stop servers often; the drain test sets its own period.
	cfg.Server.DrainPeriod = config.Duration{}
	if edit != nil {
		edit(&cfg)
	}
	return startConfig(t, cfg, opts...)
}

func startConfig(t *testing.T, cfg config.Config, opts ...server.Option) *instance {
	t.Helper()
	if err := cfg.Resolve(config.GoEnv{}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("invalid test configuration: %v", err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: cfg.Log.SlogLevel()}))
	srv, err := server.New(cfg, log, append([]server.Option{server.WithDialControl(testenv.LoopbackOnly)}, opts...)...)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	in := &instance{URL: "http://" + ln.Addr().String(), DataDir: cfg.DataDir, srv: srv, stop: stop, done: make(chan error, 1)}
	go func() { in.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { in.shutdown(t) })
	return in
}

// shutdown stops the server gracefully and waits for it; safe to call twice.
func (in *instance) shutdown(t *testing.T) {
	t.Helper()
	if in.stop == nil {
		return
	}
	in.stop()
	in.stop = nil
	select {
	case err := <-in.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("server did not shut down within 30s")
	}
	in.srv.Close()
}

// stored reports whether key exists in the module store.
func (in *instance) stored(key string) bool {
	_, err := os.Stat(filepath.Join(in.DataDir, "modules", filepath.FromSlash(key)))
	return err == nil
}

// get fetches path from the instance and returns status and body.
func (in *instance) get(t *testing.T, path string, header ...string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, in.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", path, err)
	}
	return resp.StatusCode, body, resp.Header
}

// goEnv is the clean go command environment for in, verifying against up's
// checksum database through modgate's /sumdb/.
func goEnv(t *testing.T, in *instance, up *testenv.Upstream, overrides ...string) []string {
	return testenv.GoEnv(t, in.URL, up.VerifierKey(), overrides...)
}

// mustGo runs the go command and fails the test if it fails.
func mustGo(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	stdout, stderr, err := testenv.RunGo(t, dir, env, args...)
	if err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, stderr)
	}
	return stdout
}

// failGo runs the go command, fails the test if it succeeds, and returns
// its stderr.
func failGo(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	_, stderr, err := testenv.RunGo(t, dir, env, args...)
	var exit interface{ ExitCode() int }
	if err == nil || !errors.As(err, &exit) {
		t.Fatalf("go %v: err = %v, want a failing exit status\n%s", args, err, stderr)
	}
	return stderr
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// pollUntil polls cond until it returns "" (success) or the deadline
// passes, then fails the test with cond's last complaint.
func pollUntil(t *testing.T, d time.Duration, cond func() string) {
	t.Helper()
	var why string
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if why = cond(); why == "" {
			return
		}
	}
	t.Fatalf("not within %v: %s", d, why)
}
