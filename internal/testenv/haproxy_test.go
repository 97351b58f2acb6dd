package testenv

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestBalancer: requests through HAProxy are spread over the backends,
// one whose /readyz fails is taken out within a second and back once it
// passes again, and a backend added while it runs gets traffic.
func TestBalancer(t *testing.T) {
	var ready [3]atomic.Bool
	var servers [3]*httptest.Server
	for i := range servers {
		ready[i].Store(true)
		servers[i] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/readyz" && !ready[i].Load() {
				http.Error(w, "not ready", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintf(w, "%d", i)
		}))
		t.Cleanup(servers[i].Close)
	}
	addr := func(i int) string { return strings.TrimPrefix(servers[i].URL, "http://") }
	b := NewBalancer(t, addr(0), addr(1))
	b.WaitState(t, "b1", "UP", 5*time.Second)
	b.WaitState(t, "b2", "UP", 5*time.Second)
	seen := func(n int) map[string]int {
		t.Helper()
		got := map[string]int{}
		for range n {
			resp, err := http.Get(b.URL + "/x")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("GET through the balancer = %d %s\n%s", resp.StatusCode, body, b.Log())
			}
			got[string(body)]++
		}
		return got
	}
	if got := seen(10); got["0"] != 5 || got["1"] != 5 {
		t.Errorf("10 requests over 2 backends: %v, want 5 each (round robin)", got)
	}
	ready[0].Store(false)
	b.WaitState(t, "b1", "DOWN", 3*time.Second)
	if got := seen(6); got["1"] != 6 {
		t.Errorf("with b1 unready: %v, want every request on backend 1", got)
	}
	ready[0].Store(true)
	b.WaitState(t, "b1", "UP", 3*time.Second)

	name := b.AddBackend(t, addr(2))
	if name != "b3" {
		t.Errorf("AddBackend = %q, want b3", name)
	}
	b.WaitState(t, "b3", "UP", 5*time.Second)
	if got := seen(9); got["2"] != 3 {
		t.Errorf("9 requests over 3 backends: %v, want 3 on the added one", got)
	}

	// A backend that is gone: its requests go elsewhere, never an error.
	servers[1].Close()
	if got := seen(9); got["1"] != 0 {
		t.Errorf("after closing backend 1: %v", got)
	}
}
