package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const infoPath = "example.com/m/@v/v1.0.0.info"

// newServer starts an httptest server on 127.0.0.1 that is closed when the
// test ends.
func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// testClient returns a client whose idle connections are closed when the
// test ends, so that httptest servers close promptly.
func testClient(t *testing.T, cfg HTTPConfig) *http.Client {
	t.Helper()
	c := NewHTTPClient(cfg)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func newTestProxy(t *testing.T, rawURL string, cfg HTTPConfig, opts ProxyOptions) *Proxy {
	t.Helper()
	p, err := NewProxy(rawURL, testClient(t, cfg), opts)
	if err != nil {
		t.Fatalf("NewProxy(%q) = %v", rawURL, err)
	}
	return p
}

// recorder collects Observe calls.
type recorder struct {
	mu      sync.Mutex
	results []string
}

func (r *recorder) observe(upstream, result string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, upstream+" "+result)
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.results...)
}

// errorClass names the sentinel an error matches, for table tests.
func errorClass(err error) string {
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, fs.ErrNotExist):
		return "not-found"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, fs.ErrInvalid):
		return "invalid"
	}
	return "other"
}

func TestProxyStatus(t *testing.T) {
	const text = "not found: unknown revision v1.0.0\nsecond line"
	tests := []struct {
		name     string
		status   int
		header   map[string]string
		body     string
		want     string // error class
		wantMsg  string // exact error message; "" to skip
		wantCode int    // StatusError.StatusCode; 0 for none
		result   string // Observe result
	}{
		{name: "200", status: 200, body: "hello", want: "nil", result: ResultOK},
		{name: "404", status: 404, body: text, want: "not-found", wantCode: 404, result: ResultNotFound,
			wantMsg: `upstream "URL" answered 404 Not Found for example.com/m/@v/v1.0.0.info: not found: unknown revision v1.0.0`},
		{name: "410", status: 410, body: text, want: "not-found", wantCode: 410, result: ResultNotFound,
			wantMsg: `upstream "URL" answered 410 Gone for example.com/m/@v/v1.0.0.info: not found: unknown revision v1.0.0`},
		{name: "403", status: 403, body: "forbidden by filter", want: "not-found", wantCode: 403, result: ResultNotFound,
			wantMsg: `upstream "URL" answered 403 Forbidden: not available from this upstream for example.com/m/@v/v1.0.0.info: forbidden by filter`},
		{name: "500", status: 500, body: "boom", want: "unavailable", wantCode: 500, result: ResultError,
			wantMsg: `upstream "URL" answered 500 Internal Server Error for example.com/m/@v/v1.0.0.info: boom`},
		{name: "502", status: 502, want: "unavailable", wantCode: 502, result: ResultError,
			wantMsg: `upstream "URL" answered 502 Bad Gateway for example.com/m/@v/v1.0.0.info`},
		{name: "503", status: 503, body: "later", want: "unavailable", wantCode: 503, result: ResultError},
		{name: "429", status: 429, body: "slow down", want: "unavailable", wantCode: 429, result: ResultError},
		{name: "401", status: 401, body: "who are you", want: "unavailable", wantCode: 401, result: ResultError},
		{name: "301 without location", status: 301, want: "unavailable", wantCode: 301, result: ResultError},
		{name: "html body not quoted", status: 404, header: map[string]string{"Content-Type": "text/html"},
			body: "<!DOCTYPE html>", want: "not-found", wantCode: 404, result: ResultNotFound,
			wantMsg: `upstream "URL" answered 404 Not Found for example.com/m/@v/v1.0.0.info`},
		{name: "long line cut at 200 bytes", status: 404, body: "a" + strings.Repeat("é", 150), want: "not-found", wantCode: 404,
			result: ResultNotFound, wantMsg: `upstream "URL" answered 404 Not Found for example.com/m/@v/v1.0.0.info: a` + strings.Repeat("é", 99)},
		{name: "control characters dropped", status: 404, body: "bad\x1b[31m\tthing\r\nmore", want: "not-found", wantCode: 404,
			result: ResultNotFound, wantMsg: `upstream "URL" answered 404 Not Found for example.com/m/@v/v1.0.0.info: bad[31m thing`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var attempts atomic.Int32
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				attempts.Add(1)
				if r.URL.Path != "/"+infoPath {
					t.Errorf("server got path %q, want %q", r.URL.Path, "/"+infoPath)
				}
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			var rec recorder
			p := newTestProxy(t, srv.URL, HTTPConfig{}, ProxyOptions{Retries: -1, Observe: rec.observe})
			resp, err := p.Fetch(t.Context(), infoPath)
			if got := errorClass(err); got != tt.want {
				t.Fatalf("Fetch(%q) error = %v (%s), want %s", infoPath, err, got, tt.want)
			}
			if n := attempts.Load(); n != 1 {
				t.Errorf("Fetch(%q) made %d attempts, want 1 (retries disabled)", infoPath, n)
			}
			if diff := cmp.Diff([]string{srv.URL + " " + tt.result}, rec.got()); diff != "" {
				t.Errorf("Observe calls (-want +got):\n%s", diff)
			}
			if err != nil {
				want := strings.ReplaceAll(tt.wantMsg, "URL", srv.URL)
				if tt.wantMsg != "" && err.Error() != want {
					t.Errorf("Fetch(%q) error =\n\t%s\nwant\n\t%s", infoPath, err, want)
				}
				var se *StatusError
				if !errors.As(err, &se) || se.StatusCode != tt.wantCode {
					t.Errorf("Fetch(%q) error %v: want a *StatusError with code %d", infoPath, err, tt.wantCode)
				}
				return
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if err != nil || string(data) != tt.body {
				t.Errorf("reading body = %q, %v; want %q, nil", data, err, tt.body)
			}
			if resp.Size != int64(len(tt.body)) || resp.Upstream != srv.URL {
				t.Errorf("Response{Size: %d, Upstream: %q}, want {%d, %q}", resp.Size, resp.Upstream, len(tt.body), srv.URL)
			}
		})
	}
}

func TestProxyRequestURL(t *testing.T) {
	const path = "example.com/!foo/@v/v1.0.0+incompatible.zip"
	tests := []struct {
		name string
		base string // appended to the server URL
		want string // request URI the server sees
	}{
		{name: "root", base: "", want: "/example.com/%21foo/@v/v1.0.0+incompatible.zip"},
		{name: "base path with slash", base: "/base/", want: "/base/example.com/%21foo/@v/v1.0.0+incompatible.zip"},
		{name: "escaped base path", base: "/a%2Fb", want: "/a%2Fb/example.com/%21foo/@v/v1.0.0+incompatible.zip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotURI, gotAuth string
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				gotURI, gotAuth = r.RequestURI, r.Header.Get("Authorization")
				io.WriteString(w, "zip")
			})
			p := newTestProxy(t, srv.URL+tt.base, HTTPConfig{}, ProxyOptions{})
			resp, err := p.Fetch(t.Context(), path)
			if err != nil {
				t.Fatalf("Fetch(%q) = %v", path, err)
			}
			resp.Body.Close()
			if gotURI != tt.want {
				t.Errorf("Fetch(%q) via %q: server got %q, want %q", path, srv.URL+tt.base, gotURI, tt.want)
			}
			if gotAuth != "" {
				t.Errorf("server got Authorization %q, want none", gotAuth)
			}
		})
	}
}

func TestProxyInvalidPath(t *testing.T) {
	var attempts atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { attempts.Add(1) })
	p := newTestProxy(t, srv.URL, HTTPConfig{}, ProxyOptions{})
	for _, path := range []string{"", "/abs/@v/list", "a/../b", "..", "a//b", "a/./b", "a/", `a\b`, "a\x00b", "a\nb"} {
		if _, err := p.Fetch(t.Context(), path); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Fetch(%q) = %v, want an error matching fs.ErrInvalid", path, err)
		}
	}
	if n := attempts.Load(); n != 0 {
		t.Errorf("server got %d requests for invalid paths, want 0", n)
	}
}

func TestProxyRedaction(t *testing.T) {
	const secret = "s3cret"
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != secret {
			http.Error(w, "bad credentials", http.StatusUnauthorized)
			return
		}
		if strings.HasSuffix(r.URL.Path, ".zip") {
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	})
	raw := strings.Replace(srv.URL, "http://", "http://alice:"+secret+"@", 1)
	redacted := strings.Replace(srv.URL, "http://", "http://alice:xxxxx@", 1)
	p := newTestProxy(t, raw, HTTPConfig{}, ProxyOptions{Retries: -1})
	if got := p.String(); got != redacted {
		t.Errorf("String() = %q, want %q", got, redacted)
	}

	resp, err := p.Fetch(t.Context(), infoPath)
	if err != nil {
		t.Fatalf("Fetch(%q) with credentials = %v", infoPath, err)
	}
	resp.Body.Close()
	if resp.Upstream != redacted {
		t.Errorf("Response.Upstream = %q, want %q", resp.Upstream, redacted)
	}

	_, err = p.Fetch(t.Context(), "example.com/m/@v/v1.0.0.zip")
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), redacted) {
		t.Errorf("Fetch of a failing path: error %q, want one naming %q without the password", err, redacted)
	}

	// A network error, from a server that is gone.
	srv.Close()
	_, err = p.Fetch(t.Context(), infoPath)
	if !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), secret) {
		t.Errorf("Fetch from a closed server: error %q, want ErrUnavailable without the password", err)
	}

	// A URL that does not parse.
	bad := "https://alice:" + secret + "@[bad"
	if _, err := NewProxy(bad, nil, ProxyOptions{}); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("NewProxy(%q) error = %v, want an error without the password", bad, err)
	}
}

func TestNewProxyBadURL(t *testing.T) {
	for _, raw := range []string{"", "htps://x", "mirror.example", "https://", "file://host/x", "file:rel/x", "file:///x?q=1", "https://[::1"} {
		if _, err := NewProxy(raw, nil, ProxyOptions{}); err == nil {
			t.Errorf("NewProxy(%q) = nil error, want one", raw)
		}
	}
}

func TestProxyRetries(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int // per attempt; the last repeats
		retries  int
		want     string
		attempts int32
		results  []string
	}{
		{name: "two failures then success", statuses: []int{503, 502, 200}, want: "nil", attempts: 3,
			results: []string{ResultError, ResultError, ResultOK}},
		{name: "always failing", statuses: []int{500}, want: "unavailable", attempts: 3,
			results: []string{ResultError, ResultError, ResultError}},
		{name: "404 not retried", statuses: []int{404}, want: "not-found", attempts: 1, results: []string{ResultNotFound}},
		{name: "403 not retried", statuses: []int{403}, want: "not-found", attempts: 1, results: []string{ResultNotFound}},
		{name: "failure then 404", statuses: []int{503, 404}, want: "not-found", attempts: 2,
			results: []string{ResultError, ResultNotFound}},
		{name: "one retry", statuses: []int{503}, retries: 1, want: "unavailable", attempts: 2,
			results: []string{ResultError, ResultError}},
		{name: "retries disabled", statuses: []int{503, 200}, retries: -1, want: "unavailable", attempts: 1,
			results: []string{ResultError}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var attempts atomic.Int32
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				n := int(attempts.Add(1))
				w.WriteHeader(tt.statuses[min(n, len(tt.statuses))-1])
			})
			var rec recorder
			var logBuf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logBuf, nil))
			p := newTestProxy(t, srv.URL, HTTPConfig{}, ProxyOptions{Retries: tt.retries, Observe: rec.observe, Logger: logger})
			resp, err := p.Fetch(t.Context(), infoPath)
			if got := errorClass(err); got != tt.want {
				t.Fatalf("Fetch(%q) error = %v (%s), want %s", infoPath, err, got, tt.want)
			}
			if resp != nil {
				resp.Body.Close()
			}
			if n := attempts.Load(); n != tt.attempts {
				t.Errorf("Fetch(%q) made %d attempts, want %d", infoPath, n, tt.attempts)
			}
			var want []string
			for _, r := range tt.results {
				want = append(want, srv.URL+" "+r)
			}
			if diff := cmp.Diff(want, rec.got()); diff != "" {
				t.Errorf("Observe calls (-want +got):\n%s", diff)
			}
			logged := strings.Count(logBuf.String(), "level=WARN msg=\"retrying upstream request\" component=upstream upstream="+srv.URL)
			if logged != int(tt.attempts)-1 {
				t.Errorf("logged %d retry warnings, want %d:\n%s", logged, tt.attempts-1, logBuf.String())
			}
		})
	}
}

func TestProxyBodyNotRetried(t *testing.T) {
	var attempts atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.Header().Set("Content-Length", "1000")
		io.WriteString(w, "0123456789")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drop the connection mid-body
	})
	p := newTestProxy(t, srv.URL, HTTPConfig{}, ProxyOptions{})
	resp, err := p.Fetch(t.Context(), "example.com/m/@v/v1.0.0.zip")
	if err != nil {
		t.Fatalf("Fetch = %v, want the 200 response", err)
	}
	defer resp.Body.Close()
	if resp.Size != 1000 {
		t.Errorf("Response.Size = %d, want 1000", resp.Size)
	}
	data, err := io.ReadAll(resp.Body)
	if string(data) != "0123456789" || !errors.Is(err, ErrUnavailable) {
		t.Errorf("reading a cut body = %q, %v; want %q and an error matching ErrUnavailable", data, err, "0123456789")
	}
	if err != nil && !strings.Contains(err.Error(), srv.URL) {
		t.Errorf("body error %q does not name the upstream %q", err, srv.URL)
	}
	if n := attempts.Load(); n != 1 {
		t.Errorf("server got %d requests, want 1: a body already handed over is never retried", n)
	}
}

func TestProxyCancelDuringRetry(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var attempts atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		cancel() // the caller gives up while modgate waits to retry
	})
	var rec recorder
	p := newTestProxy(t, srv.URL, HTTPConfig{}, ProxyOptions{Retries: 5, Observe: rec.observe})
	start := time.Now()
	_, err := p.Fetch(ctx, infoPath)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout) {
		t.Errorf("Fetch after cancel = %v, want context.Canceled only", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Fetch took %v after cancel, want it to stop at once", d)
	}
	if n := attempts.Load(); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}

func TestProxyCallerDeadline(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	p := newTestProxy(t, srv.URL, HTTPConfig{}, ProxyOptions{Retries: 100})
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	_, err := p.Fetch(ctx, infoPath)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Fetch past the caller's deadline = %v, want ErrTimeout and context.DeadlineExceeded", err)
	}
}

func TestProxyAlreadyCanceled(t *testing.T) {
	var attempts atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { attempts.Add(1) })
	var rec recorder
	p := newTestProxy(t, srv.URL, HTTPConfig{}, ProxyOptions{Observe: rec.observe})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := p.Fetch(ctx, infoPath); !errors.Is(err, context.Canceled) {
		t.Errorf("Fetch with a cancelled context = %v, want context.Canceled", err)
	}
	if n := attempts.Load(); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
	if diff := cmp.Diff([]string{srv.URL + " " + ResultCanceled}, rec.got()); diff != "" {
		t.Errorf("Observe calls (-want +got):\n%s", diff)
	}
}

func TestProxyFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "example.com/m/@v"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "example.com/m/@v/list"), []byte("v1.0.0\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	rawURL := "file://" + filepath.ToSlash(dir)
	var rec recorder
	p, err := NewProxy(rawURL, nil, ProxyOptions{Observe: rec.observe})
	if err != nil {
		t.Fatalf("NewProxy(%q) = %v", rawURL, err)
	}
	if p.String() != rawURL {
		t.Errorf("String() = %q, want %q", p.String(), rawURL)
	}

	resp, err := p.Fetch(t.Context(), "example.com/m/@v/list")
	if err != nil {
		t.Fatalf("Fetch(list) = %v", err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(data) != "v1.0.0\n" || err != nil || resp.Size != 7 || resp.Upstream != rawURL {
		t.Errorf("Fetch(list) = %q, %v, Size %d, Upstream %q; want %q, nil, 7, %q", data, err, resp.Size, resp.Upstream, "v1.0.0\n", rawURL)
	}

	for _, path := range []string{"example.com/m/@v/v1.0.0.info", "example.com/m/@v", "other.example/@v/list"} {
		if _, err := p.Fetch(t.Context(), path); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), rawURL) {
			t.Errorf("Fetch(%q) = %v, want an error naming %q and matching fs.ErrNotExist", path, err, rawURL)
		}
	}
	if _, err := p.Fetch(t.Context(), "../etc/passwd"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Fetch(../etc/passwd) = %v, want fs.ErrInvalid", err)
	}
	want := []string{rawURL + " ok", rawURL + " not_found", rawURL + " not_found", rawURL + " not_found"}
	if diff := cmp.Diff(want, rec.got()); diff != "" {
		t.Errorf("Observe calls (-want +got):\n%s", diff)
	}
}

func TestBackoff(t *testing.T) {
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 6: backoffMax, 100: backoffMax} {
		for range 20 {
			if d := backoff(attempt); d < want/2 || d > want {
				t.Errorf("backoff(%d) = %v, want within [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}
