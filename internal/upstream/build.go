package upstream

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// BuildOptions configures Build.
type BuildOptions struct {
	// Self lists modgate's own addresses: listen addresses ("127.0.0.1:3000",
	// ":3000", "[::]:3000"), host names with or without a port
	// ("modgate.corp.example" means ports 80 and 443) and public URLs
	// ("https://modgate.corp.example"). GOPROXY entries pointing at any of
	// them are left out, so that modgate never asks itself. Loopback and
	// unspecified hosts (localhost, 127.0.0.0/8, ::1, 0.0.0.0, ::, empty)
	// count as one host. An unspecified listen address also accepts the
	// machine's other addresses, which Build cannot know: list them here
	// if GOPROXY may name them.
	Self []string
	// Client is used by every http(s) Source; nil means
	// NewHTTPClient(HTTPConfig{}).
	Client *http.Client
	// Proxy tunes every Proxy and Direct.
	Proxy ProxyOptions
	// SumdbURLs is passed to Direct (see DirectOptions).
	SumdbURLs map[string]string
	// DirectModules is passed to Direct as DirectOptions.Modules: what
	// fetches modules from version control for the "direct" keyword.
	DirectModules Source
	// Health, when set, puts every proxy URL entry behind a Guard with
	// these options (health tracking and the request budget). "direct"
	// and "off" are not guarded: direct reaches many hosts, and one of them
	// failing says nothing about the others.
	Health *HealthOptions
}

// Build parses a GOPROXY list (see ParseGOPROXY) and returns the Chain of
// its Sources: a Proxy for each URL, Direct for "direct", Off for "off".
// Entries that point at modgate itself (see BuildOptions.Self) are left
// out; Chain.Excluded lists them for the caller to log. It is an error if
// nothing else remains.
func Build(list string, opts BuildOptions) (*Chain, error) {
	entries, err := ParseGOPROXY(list)
	if err != nil {
		return nil, err
	}
	self, err := parseSelf(opts.Self)
	if err != nil {
		return nil, err
	}
	client := opts.Client
	if client == nil {
		client = NewHTTPClient(HTTPConfig{})
	}
	c := &Chain{}
	for _, e := range entries {
		var src Source
		switch e.URL {
		case directName:
			d, err := NewDirect(client, DirectOptions{Modules: opts.DirectModules, SumdbURLs: opts.SumdbURLs, ProxyOptions: opts.Proxy})
			if err != nil {
				return nil, err
			}
			src = d
		case offName:
			src = Off{}
		default:
			p, err := NewProxy(e.URL, client, opts.Proxy)
			if err != nil {
				return nil, fmt.Errorf("GOPROXY entry: %w", err)
			}
			if self.matches(p.base) {
				c.excluded = append(c.excluded, p.String())
				continue
			}
			src = p
			if opts.Health != nil {
				src = NewGuard(p, *opts.Health)
			}
		}
		c.entries = append(c.entries, ChainEntry{Source: src, FallThroughOnAnyError: e.FallThroughOnAnyError})
	}
	if len(c.entries) == 0 {
		return nil, fmt.Errorf("every GOPROXY entry points at modgate itself (%s); set upstream.goproxy to the upstream to mirror",
			strings.Join(c.excluded, ", "))
	}
	return c, nil
}

// hostPort is a normalized host and port; every loopback or unspecified
// host is loopbackHost.
type hostPort struct{ host, port string }

const loopbackHost = "loopback"

type selfSet map[hostPort]bool

// parseSelf normalizes BuildOptions.Self.
func parseSelf(addrs []string) (selfSet, error) {
	set := make(selfSet)
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if strings.Contains(a, "://") {
			u, err := url.Parse(a)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("own address %q: not a URL with a host", RedactURL(a))
			}
			hp, ok := urlHostPort(u)
			if !ok {
				return nil, fmt.Errorf("own address %q: scheme %q has no default port: give one", redactUser(u), u.Scheme)
			}
			set[hp] = true
			continue
		}
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			// A host name without a port: the default ports.
			host = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
			set[hostPort{normalizeHost(host), "80"}] = true
			set[hostPort{normalizeHost(host), "443"}] = true
			continue
		}
		set[hostPort{normalizeHost(host), port}] = true
	}
	return set, nil
}

// matches reports whether the http(s) URL u points at one of the set's
// addresses. A nil u (file://) never does.
func (s selfSet) matches(u *url.URL) bool {
	if u == nil || len(s) == 0 {
		return false
	}
	hp, ok := urlHostPort(u)
	return ok && s[hp]
}

// urlHostPort returns the normalized host and port of u, applying the
// scheme's default port.
func urlHostPort(u *url.URL) (hostPort, bool) {
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		default:
			return hostPort{}, false
		}
	}
	return hostPort{normalizeHost(u.Hostname()), port}, true
}

// normalizeHost lower-cases host, drops a trailing dot, and folds every
// loopback or unspecified address into loopbackHost.
func normalizeHost(host string) string {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return loopbackHost
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i] // IPv6 zone
	}
	if ip := net.ParseIP(host); ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		return loopbackHost
	}
	return host
}
