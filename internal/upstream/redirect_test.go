package upstream

import (
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRedirects: an upstream's redirects are followed only to its own host
// and port or to listed hosts, keeping the scheme, at most MaxRedirects
// times. Everything else fails at once (no retries) with ErrRedirect, and
// the refused target is never contacted.
func TestRedirects(t *testing.T) {
	var otherHits atomic.Int32
	other := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		io.WriteString(w, "from the other server")
	})
	var hits atomic.Int32
	var origin *httptest.Server
	origin = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch {
		case strings.HasPrefix(r.URL.Path, "/elsewhere/"):
			http.Redirect(w, r, other.URL+"/secret?sig=s3cr3t", http.StatusFound)
		case strings.HasPrefix(r.URL.Path, "/loop/"):
			http.Redirect(w, r, r.URL.Path+"x", http.StatusFound)
		case strings.HasPrefix(r.URL.Path, "/same/"):
			http.Redirect(w, r, origin.URL+"/ok/"+strings.TrimPrefix(r.URL.Path, "/same/"), http.StatusMovedPermanently)
		case strings.HasPrefix(r.URL.Path, "/ok/"):
			io.WriteString(w, "from the origin")
		default:
			http.NotFound(w, r)
		}
	})
	otherHost := strings.TrimPrefix(other.URL, "http://")

	tests := []struct {
		name      string
		allowed   []string
		path      string
		want      string // body, or "" for a refusal
		wantInErr string
		hits      int32 // requests to the origin
		otherHits int32
	}{
		{name: "same host and port", path: "same/x.info", want: "from the origin", hits: 2},
		{name: "other port refused", path: "elsewhere/x.info", wantInErr: "refused to follow a redirect to another host (" + other.URL + ")", hits: 1},
		{name: "other port listed", allowed: []string{otherHost}, path: "elsewhere/x.info", want: "from the other server", hits: 1, otherHits: 1},
		{name: "host listed without the port", allowed: []string{"127.0.0.1"}, path: "elsewhere/x.info", wantInErr: "refused", hits: 1},
		{name: "wildcard does not match an IP", allowed: []string{"*.0.0.1"}, path: "elsewhere/x.info", wantInErr: "refused", hits: 1},
		{name: "too many", path: "loop/x", wantInErr: "more than 3 redirects", hits: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits.Store(0)
			otherHits.Store(0)
			p := newTestProxy(t, origin.URL, HTTPConfig{RedirectHosts: tt.allowed}, ProxyOptions{Retries: 2})
			resp, err := p.Fetch(t.Context(), tt.path)
			if tt.wantInErr == "" {
				if err != nil {
					t.Fatalf("Fetch(%q) = %v, want success", tt.path, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != tt.want {
					t.Errorf("Fetch(%q) body = %q, want %q", tt.path, body, tt.want)
				}
			} else {
				if !errors.Is(err, ErrRedirect) || !errors.Is(err, ErrUnavailable) {
					t.Fatalf("Fetch(%q) = %v, want ErrRedirect and ErrUnavailable", tt.path, err)
				}
				if !strings.Contains(err.Error(), tt.wantInErr) {
					t.Errorf("Fetch(%q) = %q, want it to contain %q", tt.path, err, tt.wantInErr)
				}
				if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "/secret") {
					t.Errorf("error %q shows the redirect's path or query", err)
				}
			}
			if got := hits.Load(); got != tt.hits {
				t.Errorf("origin got %d requests, want %d (refusals are not retried)", got, tt.hits)
			}
			if got := otherHits.Load(); got != tt.otherHits {
				t.Errorf("other server got %d requests, want %d", got, tt.otherHits)
			}
		})
	}
}

// TestRedirectSchemeChange: https never redirects to http, even to a listed
// host.
func TestRedirectSchemeChange(t *testing.T) {
	var plainHits atomic.Int32
	plain := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		io.WriteString(w, "plain")
	})
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/x", http.StatusFound)
	}))
	t.Cleanup(tlsSrv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(tlsSrv.Certificate())
	p := newTestProxy(t, tlsSrv.URL, HTTPConfig{RootCAs: pool, RedirectHosts: []string{strings.TrimPrefix(plain.URL, "http://")}}, ProxyOptions{})
	_, err := p.Fetch(t.Context(), "m/@v/list")
	if !errors.Is(err, ErrRedirect) || !strings.Contains(err.Error(), "changes the scheme") {
		t.Fatalf("Fetch with an https to http redirect = %v, want ErrRedirect naming the scheme change", err)
	}
	if plainHits.Load() != 0 {
		t.Error("the http server was contacted")
	}
}

func TestRedirectPolicyHosts(t *testing.T) {
	check, err := RedirectPolicy([]string{"Storage.Example.com", "*.blobs.example", "x.example:9000"})
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := http.NewRequest("GET", "https://proxy.example/m/@v/v1.0.0.zip", nil)
	for target, ok := range map[string]bool{
		"https://proxy.example:443/other":       true,
		"https://PROXY.example/other":           true,
		"https://proxy.example:8443/other":      false,
		"https://storage.example.com/b/k":       true,
		"https://storage.example.com:444/b/k":   false,
		"https://a.blobs.example/k":             true,
		"https://blobs.example/k":               false,
		"https://evilblobs.example/k":           false,
		"https://x.example:9000/k":              true,
		"https://x.example/k":                   false,
		"https://127.0.0.1/k":                   false,
		"https://storage.example.com.evil.io/k": false,
	} {
		req, _ := http.NewRequest("GET", target, nil)
		err := check(req, []*http.Request{orig})
		if (err == nil) != ok {
			t.Errorf("redirect to %s: err = %v, want allowed %v", target, err, ok)
		}
	}
	if _, err := RedirectPolicy([]string{"https://x"}); err == nil {
		t.Error("RedirectPolicy accepted a URL as a host")
	}
}
