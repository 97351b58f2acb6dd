package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

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
