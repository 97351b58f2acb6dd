package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// HTTPConfig tunes the HTTP client used to reach upstreams. Zero values
// select the defaults named on each field.
type HTTPConfig struct {
	// DialTimeout bounds establishing a TCP connection (default 10s).
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response headers after
	// the request was written (default 30s).
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout is how long an unused keep-alive connection stays in
	// the pool (default 90s).
	IdleConnTimeout time.Duration
	// MaxConnsPerHost limits connections per upstream host, 0 for no limit.
	MaxConnsPerHost int
	// IdleTimeout is how long a single read of a response body may wait
	// without receiving a byte before it fails with ErrTimeout (default 60s;
	// negative disables the guard). Time the caller spends between reads
	// does not count.
	IdleTimeout time.Duration
	// RootCAs, when set, replaces the system's certificate authorities
	// (for a Git server with a company CA).
	RootCAs *x509.CertPool
	// Proxy, when set, is the proxy every request goes through (an http
	// or https URL that accepts CONNECT); nil means the environment's
	// HTTPS_PROXY, HTTP_PROXY and NO_PROXY.
	Proxy *url.URL
	// RedirectHosts lists the hosts, besides a request's own host and
	// port, that redirects may lead to: "host", "host:port" or "*.domain"
	// (see RedirectPolicy). Invalid entries allow nothing.
	RedirectHosts []string
	// Control, when set, is the dialer's net.Dialer.Control: it sees every
	// address the client connects to, after resolution, and may refuse it.
	// Tests use it to keep every connection on loopback.
	Control func(network, address string, c syscall.RawConn) error
}

const (
	defaultDialTimeout           = 10 * time.Second
	defaultResponseHeaderTimeout = 30 * time.Second
	defaultIdleConnTimeout       = 90 * time.Second
	defaultBodyIdleTimeout       = 60 * time.Second
	tlsHandshakeTimeout          = 10 * time.Second
	// minIdleConnsPerHost keeps enough warm connections to one upstream for
	// a burst of parallel fills (the go command downloads in parallel).
	minIdleConnsPerHost = 64
)

// NewHTTPClient returns an HTTP client tuned for upstream fetches: pooled
// keep-alive connections, HTTP/2 when the server offers it, the proxy from
// the environment (HTTPS_PROXY, NO_PROXY), and bounded dial, TLS handshake
// and response header waits. Redirects are followed only to the request's
// own host and port or to cfg.RedirectHosts, keeping the scheme, at most
// MaxRedirects times (see RedirectPolicy); others fail with ErrRedirect.
// It has no overall timeout, because a zip body
// may legitimately take minutes; instead a body read that receives nothing
// for cfg.IdleTimeout fails with an error matching ErrTimeout.
//
// The client is safe for concurrent use and should be shared by every
// Source of a process.
func NewHTTPClient(cfg HTTPConfig) *http.Client {
	dial := cfg.DialTimeout
	if dial <= 0 {
		dial = defaultDialTimeout
	}
	header := cfg.ResponseHeaderTimeout
	if header <= 0 {
		header = defaultResponseHeaderTimeout
	}
	idleConn := cfg.IdleConnTimeout
	if idleConn <= 0 {
		idleConn = defaultIdleConnTimeout
	}
	idle := cfg.IdleTimeout
	if idle == 0 {
		idle = defaultBodyIdleTimeout
	}
	perHost := max(minIdleConnsPerHost, cfg.MaxConnsPerHost)

	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   dial,
			KeepAlive: 30 * time.Second,
			Control:   cfg.Control,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: header,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       idleConn,
		MaxIdleConns:          4 * perHost,
		MaxIdleConnsPerHost:   perHost,
		MaxConnsPerHost:       max(cfg.MaxConnsPerHost, 0),
	}
	if cfg.Proxy != nil {
		t.Proxy = http.ProxyURL(cfg.Proxy)
	}
	if cfg.RootCAs != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs}
	}
	var rt http.RoundTripper = t
	if idle > 0 {
		rt = &stallGuard{rt: t, idle: idle}
	}
	redirects, _ := newRedirectPolicy(cfg.RedirectHosts) // validated by config; bad entries allow nothing
	return &http.Client{Transport: rt, CheckRedirect: redirects.check}
}

// stallGuard gives every response body a watchdog: when a single Read
// receives nothing for idle, the request's context is cancelled, which
// unblocks the Read, and the body reports ErrTimeout.
type stallGuard struct {
	rt   *http.Transport
	idle time.Duration
}

func (g *stallGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	resp, err := g.rt.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	b := &guardedBody{rc: resp.Body, idle: g.idle, cancel: cancel}
	// A stopped timer, armed only while a Read is in progress. Creating it
	// here (not lazily) keeps the field immutable, so Close may run
	// concurrently with Read.
	b.timer = time.AfterFunc(time.Hour, cancel)
	b.timer.Stop()
	resp.Body = b
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport.
func (g *stallGuard) CloseIdleConnections() { g.rt.CloseIdleConnections() }

type guardedBody struct {
	rc      io.ReadCloser
	idle    time.Duration
	cancel  context.CancelFunc
	timer   *time.Timer
	stalled bool // only touched by Read
}

func (b *guardedBody) Read(p []byte) (int, error) {
	if b.stalled {
		return 0, b.stallError()
	}
	b.timer.Reset(b.idle)
	n, err := b.rc.Read(p)
	if !b.timer.Stop() && err != io.EOF {
		// The watchdog fired: the request was (or is being) cancelled,
		// whatever this Read returned.
		b.stalled = true
		return n, b.stallError()
	}
	return n, err
}

func (b *guardedBody) stallError() error {
	return fmt.Errorf("response body stalled: no data for %v: %w", b.idle, ErrTimeout)
}

func (b *guardedBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel()
	return err
}
