package testenv_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/testenv"
)

func TestLoopbackOnly(t *testing.T) {
	for _, tt := range []struct {
		network, address string
		ok               bool
	}{
		{"tcp", "127.0.0.1:80", true},
		{"tcp4", "127.3.2.1:1", true},
		{"tcp6", "[::1]:443", true},
		{"tcp", "[::ffff:127.0.0.1]:80", true},
		{"unix", "/run/x.sock", true},
		{"tcp", "0.0.0.0:80", false}, // reaches the local host, but no test means it
		{"tcp6", "[::]:80", false},
		{"tcp", "10.0.0.1:443", false},
		{"udp", "10.255.255.53:53", false},
		{"tcp", "192.0.2.1:80", false},
		{"tcp6", "[fe80::1%eth0]:80", false},
		{"tcp6", "[2001:db8::1]:443", false},
		{"tcp", "localhost:80", false}, // Control sees resolved addresses only
		{"tcp", "garbage", false},
	} {
		err := testenv.LoopbackOnly(tt.network, tt.address, nil)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, testenv.ErrNonLoopback)) {
			t.Errorf("LoopbackOnly(%q, %q) = %v, want ok %v", tt.network, tt.address, err, tt.ok)
		}
	}
}

// TestGuardNetwork: TestMain called GuardNetwork, so http.Get reaches a
// server on 127.0.0.1 but not the same server through 0.0.0.0 (which
// Linux delivers locally, so the check itself sends nothing anywhere),
// and names outside /etc/hosts do not resolve.
func TestGuardNetwork(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET %s (loopback): %v", srv.URL, err)
	}
	resp.Body.Close()

	other := strings.Replace(srv.URL, "127.0.0.1", "0.0.0.0", 1)
	if resp, err := http.Get(other); !errors.Is(err, testenv.ErrNonLoopback) {
		if err == nil {
			resp.Body.Close()
		}
		t.Errorf("GET %s = %v, want ErrNonLoopback", other, err)
	}
	var dnsErr *net.DNSError
	if resp, err := http.Get("http://modgate-guard.example.com/"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		if err == nil {
			resp.Body.Close()
		}
		t.Errorf("GET of a name outside /etc/hosts = %v, want \"no such host\" from the in-process resolver", err)
	}
	for _, network := range []string{"udp", "tcp"} {
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return net.DefaultResolver.Dial(ctx, network, addr)
		}}
		if _, err := r.LookupHost(t.Context(), "modgate-guard.example.com"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
			t.Errorf("LookupHost over %s = %v, want no such host", network, err)
		}
	}
}
