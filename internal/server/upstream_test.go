package server_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/testenv"
)

// redirectingUpstream puts a front in front of up that answers zip
// requests with a 302 to target and passes everything else to up.
func redirectingUpstream(t *testing.T, up *testenv.Upstream, target string) *httptest.Server {
	t.Helper()
	u, err := url.Parse(up.URL())
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".zip") {
			http.Redirect(w, r, target+r.URL.Path+"?X-Signature=s3cr3t", http.StatusFound)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	return front
}

// TestUpstreamRedirectRefused: an upstream's redirect to another port on
// the loopback interface is not followed (a blind request forgery into
// modgate's network); the go command shows why, without the target's
// path or query (the log line carries the same message). A host the
// operator lists is followed.
func TestUpstreamRedirectRefused(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	var internalHits atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		io.WriteString(w, "internal admin page")
	}))
	t.Cleanup(internal.Close)
	front := redirectingUpstream(t, up, internal.URL)

	in := startModgate(t, up, func(c *config.Config) { c.Upstream.GOPROXY = front.URL })
	stderr := failGo(t, t.TempDir(), goEnv(t, in, up), "mod", "download", "example.com/hello@v1.0.0")
	if !strings.Contains(stderr, "502 Bad Gateway") || !strings.Contains(stderr, "refused to follow a redirect to another host") {
		t.Errorf("go mod download through a redirecting upstream: want a 502 naming the refused redirect:\n%s", stderr)
	}
	if strings.Contains(stderr, "s3cr3t") {
		t.Errorf("the client was shown the redirect's query:\n%s", stderr)
	}
	if n := internalHits.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests, want none", n)
	}
	if in.stored("example.com/hello/@v/v1.0.0.zip") {
		t.Error("a zip was stored")
	}

	// The same redirect to a listed host (the fake upstream, standing in
	// for an object store) is followed.
	in2 := startModgate(t, up, func(c *config.Config) {
		c.Upstream.GOPROXY = redirectingUpstream(t, up, up.URL()).URL
		c.Upstream.RedirectHosts = []string{strings.TrimPrefix(up.URL(), "http://")}
	})
	goDownload(t, goEnv(t, in2, up), "example.com/hello@v1.0.0")
}

// blockingFront passes requests to up, holding every module request
// (not the checksum database's) until release is closed, and counts how
// many it holds at once.
type blockingFront struct {
	*httptest.Server
	release       chan struct{}
	running, peak atomic.Int32
}

func newBlockingFront(t *testing.T, up *testenv.Upstream) *blockingFront {
	t.Helper()
	u, err := url.Parse(up.URL())
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	f := &blockingFront{release: make(chan struct{})}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/sumdb/") {
			n := f.running.Add(1)
			defer f.running.Add(-1)
			for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
			}
			select {
			case <-f.release:
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// TestFillLimitBusy: more distinct cold requests than
// upstream.max_concurrent_fills never put more fetches on the upstream;
// the rest wait fill_queue_timeout and get 503 with Retry-After and a
// one-line "server busy" body, which the go command shows. The metrics
// count the refusals, and once the upstream answers everything works.
func TestFillLimitBusy(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	front := newBlockingFront(t, up)
	in := startModgate(t, up, func(c *config.Config) {
		c.Upstream.GOPROXY = front.URL
		c.Upstream.MaxConcurrentFills = 2
		c.Upstream.FillQueueTimeout = config.Duration{Duration: 300 * time.Millisecond}
		c.Upstream.PrefetchWorkers = 0
	})
	if body := upMetrics(t, in); !strings.Contains(body, "modgate_fill_refusals_total 0") || !strings.Contains(body, "modgate_fill_queue_depth 0") {
		t.Errorf("fill metrics are not initialised at zero:\n%s", upMetricLines(body, "modgate_fill_"))
	}
	paths := []string{
		"/example.com/hello/@v/v1.0.0.info",
		"/example.com/hello/@v/v1.1.0.info",
		"/example.com/hello/v2/@v/v2.0.0.info",
		"/example.com/greet/@v/v1.0.0.info",
		"/example.com/legacy/@v/v2.0.0+incompatible.info",
		"/example.com/hello/@v/v1.0.0.mod",
	}
	type answer struct {
		code       int
		body       string
		retryAfter string
	}
	answers := make(chan answer, len(paths))
	for _, p := range paths {
		go func() {
			code, body, hdr := in.get(t, p)
			answers <- answer{code, string(body), hdr.Get("Retry-After")}
		}()
	}
	busy := 0
	for range len(paths) - 2 {
		select {
		case a := <-answers:
			if a.code != http.StatusServiceUnavailable || a.retryAfter != "1" || !strings.Contains(a.body, "server busy") || strings.Count(a.body, "\n") != 1 {
				t.Errorf("request beyond the limit: %d, Retry-After %q, body %q; want 503, Retry-After 1 and one line saying the server is busy", a.code, a.retryAfter, a.body)
			}
			busy++
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d requests beyond the limit were answered", busy)
		}
	}
	if n := front.running.Load(); n != 2 {
		t.Errorf("%d fetches on the upstream, want the 2 of the limit", n)
	}
	// The go command shows the reason.
	stderr := failGo(t, t.TempDir(), goEnv(t, in, up), "mod", "download", "example.com/Upper@v1.0.0")
	if !strings.Contains(stderr, "503 Service Unavailable") || !strings.Contains(stderr, "server busy") {
		t.Errorf("go mod download while busy: want the 503 and its reason:\n%s", stderr)
	}
	body := upMetrics(t, in)
	if !strings.Contains(body, "modgate_fill_refusals_total 5") || !strings.Contains(body, "modgate_fill_queue_depth 0") {
		t.Errorf("metrics after 5 refusals:\n%s", upMetricLines(body, "modgate_fill_"))
	}

	close(front.release)
	for range 2 {
		if a := <-answers; a.code != http.StatusOK {
			t.Errorf("request within the limit: %d %q, want 200", a.code, a.body)
		}
	}
	if p := front.peak.Load(); p != 2 {
		t.Errorf("peak concurrent upstream fetches = %d, want 2", p)
	}
	goDownload(t, goEnv(t, in, up), "example.com/Upper@v1.0.0")
}

// upMetrics returns the instance's /metrics.
func upMetrics(t *testing.T, in *instance) string {
	t.Helper()
	code, body, _ := in.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	return string(body)
}

// upMetricLines returns the lines of s containing substr.
func upMetricLines(s, substr string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// hangingFront passes requests to up, or, while hang is set, accepts them
// and never answers (until the client gives up or the test ends).
type hangingFront struct {
	*httptest.Server
	hang     atomic.Bool
	requests atomic.Int32 // received while hanging
}

func newHangingFront(t *testing.T, up *testenv.Upstream) *hangingFront {
	t.Helper()
	u, err := url.Parse(up.URL())
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	testDone := t.Context().Done()
	f := &hangingFront{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.hang.Load() {
			f.requests.Add(1)
			select {
			case <-r.Context().Done():
			case <-testDone:
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// timedGo runs the go command and returns how long it took.
func timedGo(t *testing.T, env []string, args ...string) time.Duration {
	t.Helper()
	start := time.Now()
	mustGo(t, t.TempDir(), env, args...)
	d := time.Since(start)
	t.Logf("go %s: %v", strings.Join(args, " "), d.Round(time.Millisecond))
	return d
}

// TestHangingUpstream: an upstream that accepts connections and never
// answers does not hold up what modgate has stored. After warming, the
// go command downloads a stored module and lists its versions within
// seconds, the first time (the stale copy after refresh_wait, each wait
// bounded by request_budget) and at once after the upstream is marked
// down; modgate_upstream_up shows it; and when the upstream answers again,
// fresh answers come back.
func TestHangingUpstream(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	front := newHangingFront(t, up)
	in := startModgate(t, up, func(c *config.Config) {
		c.Upstream.GOPROXY = front.URL
		c.Upstream.Retries = 2
		c.Upstream.RequestBudget = config.Duration{Duration: time.Second}
		c.Upstream.RefreshWait = config.Duration{Duration: 300 * time.Millisecond}
		c.Cache.ListTTL = config.Duration{Duration: time.Millisecond} // every list is refreshed
		c.Cache.SumDBLatestTTL = config.Duration{Duration: time.Millisecond}
	})
	upLine := `modgate_upstream_up{upstream="` + front.URL + `"} `
	if m := upMetrics(t, in); !strings.Contains(m, upLine+"1") {
		t.Errorf("upstream health not exported as up at start:\n%s", upMetricLines(m, "modgate_upstream_up"))
	}
	goDownload(t, goEnv(t, in, up), "example.com/hello@v1.0.0")
	mustGo(t, t.TempDir(), goEnv(t, in, up), "list", "-m", "-versions", "example.com/hello")

	front.hang.Store(true)
	const bound = 5 * time.Second
	if d := timedGo(t, goEnv(t, in, up), "mod", "download", "example.com/hello@v1.0.0"); d > bound {
		t.Errorf("first go mod download of a stored module with a hanging upstream took %v, want < %v", d, bound)
	}
	if d := timedGo(t, goEnv(t, in, up), "list", "-m", "-versions", "example.com/hello"); d > bound {
		t.Errorf("first go list -m -versions with a hanging upstream took %v, want < %v", d, bound)
	}
	// Requests keep failing on the upstream until it is marked down.
	pollUntil(t, 30*time.Second, func() string {
		code, _, _ := in.get(t, "/example.com/hello/@v/list")
		if code != http.StatusOK {
			return fmt.Sprintf("list answered %d with the upstream hanging", code)
		}
		if m := upMetrics(t, in); !strings.Contains(m, upLine+"0") {
			return "upstream not marked down: " + upMetricLines(m, "modgate_upstream_up")
		}
		return ""
	})
	if d := timedGo(t, goEnv(t, in, up), "mod", "download", "example.com/hello@v1.0.0"); d > bound {
		t.Errorf("go mod download of a stored module with the upstream down took %v, want < %v", d, bound)
	}
	if d := timedGo(t, goEnv(t, in, up), "list", "-m", "-versions", "example.com/hello"); d > bound {
		t.Errorf("go list -m -versions with the upstream down took %v, want < %v", d, bound)
	}
	start := time.Now()
	code, body, hdr := in.get(t, "/example.com/hello/@v/list")
	if d := time.Since(start); d > time.Second || code != http.StatusOK || hdr.Get("X-Modgate-Cache") != "stale" {
		t.Errorf("list with the upstream down: %d %q (cache %q) after %v, want the stale list at once", code, body, hdr.Get("X-Modgate-Cache"), d)
	}
	// A file never stored fails fast instead of waiting for the upstream.
	start = time.Now()
	if code, body, _ := in.get(t, "/example.com/greet/@v/v1.0.0.info"); code < 500 || time.Since(start) > bound {
		t.Errorf("uncached file with the upstream down: %d %q after %v, want a 5xx within %v", code, body, time.Since(start), bound)
	}

	// The upstream answers again, with a new version: it comes back.
	newer, err := testenv.ParseModule([]byte("module example.com/hello\nversion v1.3.0\n-- go.mod --\nmodule example.com/hello\n-- hello.go --\npackage hello\n"))
	if err != nil {
		t.Fatal(err)
	}
	up.AddModule(newer)
	front.hang.Store(false)
	pollUntil(t, 60*time.Second, func() string {
		code, body, hdr := in.get(t, "/example.com/hello/@v/list")
		if code != http.StatusOK || !strings.Contains(string(body), "v1.3.0") || hdr.Get("X-Modgate-Cache") == "stale" {
			return fmt.Sprintf("list after recovery: %d %q (cache %q)", code, body, hdr.Get("X-Modgate-Cache"))
		}
		return ""
	})
	if m := upMetrics(t, in); !strings.Contains(m, upLine+"1") {
		t.Errorf("upstream not up again after answering:\n%s", upMetricLines(m, "modgate_upstream_up"))
	}
	out := mustGo(t, t.TempDir(), goEnv(t, in, up), "list", "-m", "-versions", "example.com/hello")
	if !strings.Contains(out, "v1.3.0") {
		t.Errorf("go list -m -versions after recovery = %q, want v1.3.0", out)
	}
}
