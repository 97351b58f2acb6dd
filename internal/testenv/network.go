package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ErrNonLoopback is the error of a dial that GuardNetwork or LoopbackOnly
// refused.
var ErrNonLoopback = errors.New("testenv: refused a dial outside the loopback range (tests are hermetic; see testenv.GuardNetwork)")

// LoopbackOnly is a net.Dialer Control function that refuses every
// address outside 127.0.0.0/8 and ::1 (unix sockets are allowed). It runs
// after name resolution and before the connection is attempted, so a
// refused dial sends nothing. Tests hand it to modgate's upstream HTTP
// client (upstream.HTTPConfig.Control, through server.WithDialControl).
func LoopbackOnly(network, address string, _ syscall.RawConn) error {
	if strings.HasPrefix(network, "unix") {
		return nil
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrNonLoopback, network, address, err)
	}
	host, _, _ = strings.Cut(host, "%") // an IPv6 zone
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: %s %s", ErrNonLoopback, network, address)
}

// GuardNetwork makes the test process refuse dials outside the loopback
// range: through http.DefaultTransport (http.Get, http.DefaultClient and
// every client without a transport of its own) and in name resolution
// (net.DefaultResolver, whose DNS servers are not on loopback, so only
// names in /etc/hosts such as localhost resolve). Call it from TestMain,
// before m.Run, in every test package that starts servers or runs network
// code; it changes process-wide defaults, which is why only TestMain may.
//
// Clients that build their own dialer are not covered: modgate's upstream
// client takes LoopbackOnly through server.WithDialControl, and
// subprocesses (the go command, git) are kept local by their
// configuration (GOPROXY, GOSUMDB and repository URLs on 127.0.0.1). The
// one exception to the rule is RealNetworkClient.
func GuardNetwork() {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: LoopbackOnly}
	http.DefaultTransport.(*http.Transport).DialContext = d.DialContext
	net.DefaultResolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			return d.DialContext(ctx, network, address)
		},
	}
}

// RealEnv is the environment variable that enables the real-upstream
// end-to-end test (TestRealUpstream); .ci/run sets it to 1.
const RealEnv = "MODGATE_E2E_REAL"

// RealNetworkClient returns an HTTP client that may dial beyond loopback
// (with a resolver of its own), for the one test that uses the real
// upstream of `go env GOPROXY`: the explicit exception to GuardNetwork.
// Unless MODGATE_E2E_REAL=1 it skips the test, saying so, and dials
// nothing.
func RealNetworkClient(t testing.TB) *http.Client {
	t.Helper()
	if os.Getenv(RealEnv) != "1" {
		t.Skipf("SKIPPED, NOT TESTED: the real-upstream test dials beyond loopback and runs only with %s=1 (as .ci/run sets)", RealEnv)
	}
	d := &net.Dialer{Timeout: 10 * time.Second, Resolver: &net.Resolver{}}
	return &http.Client{
		Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, DialContext: d.DialContext, ForceAttemptHTTP2: true},
		Timeout:   10 * time.Second,
	}
}
