package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
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
// (net.DefaultResolver asks an in-process server that knows no names, so
// only names in /etc/hosts such as localhost resolve, and any other is
// "no such host", as on a machine without outside DNS). Call it from TestMain,
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
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: dialNoSuchHost}
}

// dialNoSuchHost is the guarded resolver's connection to "its DNS server":
// an in-process one that answers every query with NXDOMAIN, so a name
// outside /etc/hosts fails as it does on a machine whose DNS knows no
// outside names ("no such host", which code under test may treat as "not
// found"), and no query leaves the process.
func dialNoSuchHost(context.Context, string, string) (net.Conn, error) {
	// The resolver frames messages by the connection's kind, not by
	// network: a net.Pipe is no PacketConn, so it is always a stream.
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		buf := make([]byte, 4096)
		for {
			msg, err := readDNS(server, buf)
			if err != nil {
				return
			}
			if err := writeDNS(server, nxdomain(msg)); err != nil {
				return
			}
		}
	}()
	return client, nil
}

// readDNS reads one length-prefixed DNS message, as on a stream.
func readDNS(c net.Conn, buf []byte) ([]byte, error) {
	if _, err := io.ReadFull(c, buf[:2]); err != nil {
		return nil, err
	}
	n := int(buf[0])<<8 | int(buf[1])
	if n > len(buf) {
		return nil, fmt.Errorf("dns message of %d bytes", n)
	}
	_, err := io.ReadFull(c, buf[:n])
	return buf[:n], err
}

func writeDNS(c net.Conn, msg []byte) error {
	msg = append([]byte{byte(len(msg) >> 8), byte(len(msg))}, msg...)
	_, err := c.Write(msg)
	return err
}

// nxdomain turns a query into its NXDOMAIN answer: the same id and
// question, the response and recursion-available bits, rcode 3, and no
// other records.
func nxdomain(q []byte) []byte {
	if len(q) < 12 {
		return q
	}
	end := 12
	for end < len(q) && q[end] != 0 { // the question's name, label by label
		end += int(q[end]) + 1
	}
	end += 1 + 4 // the root label, type and class
	if end > len(q) {
		end = len(q)
	}
	r := append([]byte(nil), q[:end]...)
	r[2] = 0x80 | q[2]&0x79 // QR, the query's opcode and RD
	r[3] = 0x80 | 3         // RA, rcode NXDOMAIN
	r[4], r[5] = 0, 1       // one question
	clear(r[6:12])          // no answer, authority or additional records
	return r
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
