package server

import "syscall"

// An Option changes how New builds a Server. Production passes none;
// tests use them to reach into what a configuration cannot say.
type Option func(*options)

type options struct {
	dialControl func(network, address string, c syscall.RawConn) error
}

// WithDialControl makes every connection the server opens to an upstream
// (module proxies, direct fetches, Git servers over HTTPS, checksum
// databases) call control first, as net.Dialer.Control; an error refuses
// the connection. Tests pass testenv.LoopbackOnly so that a misconfigured
// test can never reach beyond loopback.
func WithDialControl(control func(network, address string, c syscall.RawConn) error) Option {
	return func(o *options) { o.dialControl = control }
}
