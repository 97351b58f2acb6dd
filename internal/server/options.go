package server

import (
	"syscall"

	"github.com/modgate/modgate/internal/health"
)

// An Option changes how New builds a Server. Production passes none;
// tests use them to reach into what a configuration cannot say.
type Option func(*options)

type options struct {
	dialControl func(network, address string, c syscall.RawConn) error
	checks      []health.Check
}

// WithDialControl makes every connection the server opens to an upstream
// (module proxies, direct fetches, Git servers over HTTPS, checksum
// databases) call control first, as net.Dialer.Control; an error refuses
// the connection. Tests pass testenv.LoopbackOnly so that a misconfigured
// test can never reach beyond loopback.
func WithDialControl(control func(network, address string, c syscall.RawConn) error) Option {
	return func(o *options) { o.dialControl = control }
}

// WithCheck adds a dependency to what /readyz checks, after the ones the
// configuration implies. Tests use it to stand in for a dependency that
// fails.
func WithCheck(c health.Check) Option {
	return func(o *options) { o.checks = append(o.checks, c) }
}
