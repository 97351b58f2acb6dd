package upstream

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// ErrRedirect reports that an upstream redirected a request somewhere
// modgate does not follow. Errors matching it also match ErrUnavailable
// (the client gets 502), but they are not retried and say nothing about
// the upstream's health: the same request would be redirected again.
var ErrRedirect = errors.New("redirect refused")

// MaxRedirects is how many redirects one upstream request follows.
const MaxRedirects = 3

// A redirectPolicy decides which redirects an upstream request follows.
//
// Without it, net/http follows up to ten redirects to any URL, so an
// upstream (or anyone who can answer for it) could make modgate request
// addresses inside its own network, such as another port on 127.0.0.1,
// and the answer would be stored as a module: a blind server-side request
// forgery. A redirect is followed only when all of these hold:
//   - it is at most the MaxRedirects-th of the request;
//   - it keeps the scheme of the original request (never https to http,
//     nor http to https: a change of scheme is a change of server);
//   - it stays on the original request's host and port, or goes to a host
//     the operator listed (object stores that a proxy sends zips to).
type redirectPolicy struct {
	exact    map[string]bool // "host" (default port of the scheme) or "host:port"
	suffixes []string        // ".example.com" for "*.example.com"
}

// newRedirectPolicy parses allowed hosts: "host", "host:port", or
// "*.domain" for every subdomain of domain (on the default port). Invalid
// entries are left out (allowing nothing) and reported in err.
func newRedirectPolicy(hosts []string) (*redirectPolicy, error) {
	p := &redirectPolicy{exact: make(map[string]bool)}
	var errs []error
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
		if err := CheckRedirectHost(h); err != nil {
			errs = append(errs, err)
			continue
		}
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			p.suffixes = append(p.suffixes, "."+rest)
			continue
		}
		p.exact[h] = true
	}
	return p, errors.Join(errs...)
}

// CheckRedirectHost reports whether h is a valid entry of an allowed
// redirect host list: "host", "host:port" or "*.domain", without a scheme,
// user information or path.
func CheckRedirectHost(h string) error {
	if h == "" {
		return errors.New("empty host")
	}
	if strings.ContainsAny(h, "/@?#\\ ") {
		return fmt.Errorf("%q is not a host: write it as host, host:port or *.domain, without a scheme or path", h)
	}
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		if rest == "" || strings.ContainsAny(rest, "*:") {
			return fmt.Errorf("%q: a wildcard is written *.domain, without a port", h)
		}
		return nil
	}
	if strings.Contains(h, "*") {
		return fmt.Errorf("%q: a wildcard may only start the host (*.domain)", h)
	}
	if host, port, err := net.SplitHostPort(h); err == nil {
		if host == "" || port == "" {
			return fmt.Errorf("%q: empty host or port", h)
		}
	}
	return nil
}

// check is an http.Client CheckRedirect function.
func (p *redirectPolicy) check(req *http.Request, via []*http.Request) error {
	orig := via[0].URL
	target := redirectTarget(req.URL)
	switch {
	case len(via) > MaxRedirects:
		return classify(ErrRedirect, fmt.Errorf("refused to follow more than %d redirects (the last to %s)", MaxRedirects, target))
	case req.URL.Scheme != orig.Scheme:
		return classify(ErrRedirect, fmt.Errorf("refused to follow a redirect to %s: it changes the scheme from %s", target, orig.Scheme))
	case sameHostPort(orig, req.URL) || p.allows(req.URL):
		return nil
	}
	return classify(ErrRedirect, fmt.Errorf("refused to follow a redirect to another host (%s): modgate follows redirects only to the upstream's own host and port and to the hosts in upstream.redirect_hosts",
		target))
}

// allows reports whether u's host is one the operator listed.
func (p *redirectPolicy) allows(u *url.URL) bool {
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	port := u.Port()
	if port == "" || port == defaultPort(u.Scheme) {
		if p.exact[host] {
			return true
		}
		for _, s := range p.suffixes {
			if strings.HasSuffix(host, s) {
				return true
			}
		}
	}
	return port != "" && p.exact[net.JoinHostPort(host, port)]
}

// sameHostPort reports whether a and b name the same host and port
// (default ports applied; host names compared without case).
func sameHostPort(a, b *url.URL) bool {
	pa, pb := a.Port(), b.Port()
	if pa == "" {
		pa = defaultPort(a.Scheme)
	}
	if pb == "" {
		pb = defaultPort(b.Scheme)
	}
	return pa == pb && strings.EqualFold(strings.TrimSuffix(a.Hostname(), "."), strings.TrimSuffix(b.Hostname(), "."))
}

func defaultPort(scheme string) string {
	switch scheme {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

// redirectTarget shows where a redirect pointed without what may be
// secret: no user information, path or query (object store redirects
// carry signatures in the query).
func redirectTarget(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
}

// RedirectPolicy returns an http.Client CheckRedirect function that follows
// only safe redirects (see redirectPolicy): at most MaxRedirects, same
// scheme, to the original host and port or to one of allowed ("host",
// "host:port", "*.domain"). Refusals match ErrRedirect. Clients that fetch
// from upstreams without NewHTTPClient (the vulnerability database sync)
// use it.
func RedirectPolicy(allowed []string) (func(*http.Request, []*http.Request) error, error) {
	p, err := newRedirectPolicy(allowed)
	if err != nil {
		return nil, err
	}
	return p.check, nil
}
