package upstream

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// blockUntilDone blocks a handler until the request ends or the test does.
func blockUntilDone(t *testing.T, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-t.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

func TestResponseHeaderTimeout(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		blockUntilDone(t, r)
	})
	var rec recorder
	p := newTestProxy(t, srv.URL, HTTPConfig{ResponseHeaderTimeout: 50 * time.Millisecond}, ProxyOptions{Retries: -1, Observe: rec.observe})
	_, err := p.Fetch(t.Context(), infoPath)
	if !errors.Is(err, ErrTimeout) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Fetch from a server that never answers = %v, want ErrTimeout", err)
	}
	want := `upstream "` + srv.URL + `" timed out for ` + infoPath
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %q, want it to start with %q", err, want)
	}
	if diff := cmp.Diff([]string{srv.URL + " " + ResultTimeout}, rec.got()); diff != "" {
		t.Errorf("Observe calls (-want +got):\n%s", diff)
	}
}

func TestResponseHeaderTimeoutRetried(t *testing.T) {
	var n atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			blockUntilDone(t, r)
			return
		}
		io.WriteString(w, "late but fine")
	})
	p := newTestProxy(t, srv.URL, HTTPConfig{ResponseHeaderTimeout: 50 * time.Millisecond}, ProxyOptions{})
	resp, err := p.Fetch(t.Context(), infoPath)
	if err != nil {
		t.Fatalf("Fetch with one slow attempt = %v, want success on retry", err)
	}
	resp.Body.Close()
}

func TestStalledBody(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "abc")
		w.(http.Flusher).Flush()
		blockUntilDone(t, r)
	})
	p := newTestProxy(t, srv.URL, HTTPConfig{IdleTimeout: 100 * time.Millisecond}, ProxyOptions{})
	resp, err := p.Fetch(t.Context(), "example.com/m/@v/v1.0.0.zip")
	if err != nil {
		t.Fatalf("Fetch = %v, want the 200 response", err)
	}
	defer resp.Body.Close()
	start := time.Now()
	data, err := io.ReadAll(resp.Body)
	if string(data) != "abc" || !errors.Is(err, ErrTimeout) {
		t.Errorf("reading a stalled body = %q, %v; want %q and an error matching ErrTimeout", data, err, "abc")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stalled read took %v, want about the idle timeout", d)
	}
	// Further reads keep failing the same way.
	if _, err := resp.Body.Read(make([]byte, 1)); !errors.Is(err, ErrTimeout) {
		t.Errorf("Read after a stall = %v, want ErrTimeout", err)
	}
}

func TestSlowBodyIsNotStalled(t *testing.T) {
	const idle = 600 * time.Millisecond // wide margin: CI machines are busy
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		for i := range 5 {
			io.WriteString(w, string(rune('a'+i)))
			w.(http.Flusher).Flush()
			time.Sleep(idle / 6) // slow, but always making progress
		}
	})
	p := newTestProxy(t, srv.URL, HTTPConfig{IdleTimeout: idle}, ProxyOptions{})
	resp, err := p.Fetch(t.Context(), "example.com/m/@v/v1.0.0.zip")
	if err != nil {
		t.Fatalf("Fetch = %v", err)
	}
	defer resp.Body.Close()
	var got []byte
	buf := make([]byte, 1)
	for {
		n, err := resp.Body.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read after %q = %v, want a slow body to complete", got, err)
		}
		if len(got) == 1 {
			// The caller's own pauses between reads do not count as a stall.
			time.Sleep(2 * idle)
		}
	}
	if string(got) != "abcde" {
		t.Errorf("body = %q, want %q", got, "abcde")
	}
}

func TestStallGuardDisabled(t *testing.T) {
	c := NewHTTPClient(HTTPConfig{IdleTimeout: -1})
	if _, ok := c.Transport.(*http.Transport); !ok {
		t.Errorf("NewHTTPClient(IdleTimeout: -1).Transport is %T, want a plain *http.Transport", c.Transport)
	}
	c = NewHTTPClient(HTTPConfig{})
	g, ok := c.Transport.(*stallGuard)
	if !ok {
		t.Fatalf("NewHTTPClient(HTTPConfig{}).Transport is %T, want *stallGuard", c.Transport)
	}
	tr := g.rt
	if g.idle != defaultBodyIdleTimeout || tr.ResponseHeaderTimeout != defaultResponseHeaderTimeout ||
		tr.TLSHandshakeTimeout != tlsHandshakeTimeout || tr.MaxIdleConnsPerHost < 64 || !tr.ForceAttemptHTTP2 || tr.Proxy == nil || c.Timeout != 0 {
		t.Errorf("NewHTTPClient(HTTPConfig{}) defaults: idle %v, header timeout %v, TLS %v, idle per host %d, HTTP/2 %v, proxy set %v, client timeout %v",
			g.idle, tr.ResponseHeaderTimeout, tr.TLSHandshakeTimeout, tr.MaxIdleConnsPerHost, tr.ForceAttemptHTTP2, tr.Proxy != nil, c.Timeout)
	}
}

// TestObserveBytes: the body bytes of each answer are reported once, when
// its body is closed, under the upstream's name.
func TestObserveBytes(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 1000)))
	})
	var mu sync.Mutex
	var got []string
	observe := func(upstream string, n int64) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprintf("%s %d", upstream, n))
	}
	p := newTestProxy(t, srv.URL, HTTPConfig{}, ProxyOptions{ObserveBytes: observe})
	for _, read := range []int64{1000, 10} {
		resp, err := p.Fetch(t.Context(), infoPath)
		if err != nil {
			t.Fatal(err)
		}
		io.CopyN(io.Discard, resp.Body, read)
		resp.Body.Close()
		resp.Body.Close()
	}
	want := []string{srv.URL + " 1000", srv.URL + " 10"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ObserveBytes calls (-want +got):\n%s", diff)
	}
}
