package git

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/upstream"
)

// This file is the "direct" mode of a Source: any public module path,
// fetched from its version-control origin the way "GOPROXY=direct" does,
// with no credentials. Everything after finding the repository (refs,
// mirrors, versions, zips) is the private sources' code, unchanged.

// DirectName is the name of the Source NewDirect returns, in logs, errors
// and metrics.
const DirectName = "direct"

// DirectConfig configures NewDirect.
type DirectConfig struct {
	// Dir holds one bare mirror per repository. Required.
	Dir string
	// Timeout, RefsTTL, Limiter and MaxConcurrent are as in Config.
	Timeout       time.Duration
	RefsTTL       time.Duration
	Limiter       *Limiter
	MaxConcurrent int
	// Env is added to the environment of git processes (GIT_SSL_CAINFO,
	// HTTPS_PROXY).
	Env []string
	// HTTPClient fetches go-import tags and ref advertisements; nil means
	// upstream.NewHTTPClient with its defaults. NewDirect uses a copy that
	// follows redirects only to https URLs on public hosts.
	HTTPClient *http.Client
	Logger     *slog.Logger
	// LookupHost resolves a host name for the private-address guard (see
	// NewDirect); nil means net.DefaultResolver.LookupNetIP. Tests replace
	// it.
	LookupHost func(ctx context.Context, host string) ([]netip.Addr, error)
	// ProxyResolves says that every connection goes through an egress
	// proxy that resolves host names itself: the guard then checks IP
	// literals and localhost names only, and leaves names to the proxy's
	// policy, without asking the local resolver.
	ProxyResolves bool
}

// NewDirect returns a Source that serves every module path the go command
// accepts (module.CheckPath) from its origin, as "GOPROXY=direct" does:
//
//   - the repository comes from the go command's table of well-known
//     hosting sites (github.com, bitbucket.org, ...), from a ".git"
//     element in the path, or from the go-import meta tag at
//     https://{module path}?go-get=1; a tag whose prefix is shorter than
//     the module path is checked against the tag at the prefix itself,
//     as the go command does;
//   - only Git is supported: another version control system answers
//     "not found" saying so, so that a client with its own fallback
//     (GOPROXY=modgate,direct) can still fetch the module itself;
//   - only https repositories: a meta tag naming http, ssh, git or file
//     URLs answers "not found" with the reason;
//   - no credentials are ever sent;
//   - hosts that are loopback, private, link-local or unspecified
//     addresses (IP literals, "localhost", and names resolving to such
//     addresses) are refused, so that a module path or a meta tag cannot
//     make modgate reach into its own network. Names that do not resolve
//     locally are allowed: the connection, or the egress proxy, decides
//     (with DirectConfig.ProxyResolves names are left to the proxy).
//     A name could still resolve differently when git connects; this is
//     a guard against mistakes and simple probing, not a sandbox.
//
// Repositories that do not exist, or hosts that do not exist, answer "not
// found"; hosts that fail or time out, ErrUnavailable or ErrTimeout.
func NewDirect(dc DirectConfig) (*Source, error) {
	lookup := dc.LookupHost
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	client := dc.HTTPClient
	if client == nil {
		client = upstream.NewHTTPClient(upstream.HTTPConfig{})
	}
	g := &hostGuard{lookup: lookup, names: !dc.ProxyResolves}
	guarded := *client
	guarded.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return fmt.Errorf("%w: stopped after 5 redirects", errRedirectRefused)
		}
		if req.URL.Scheme != "https" {
			return fmt.Errorf("%w: %s: direct fetches use https only", errRedirectRefused, redactURL(req.URL.String()))
		}
		if err := g.check(req.Context(), req.URL.Hostname()); err != nil {
			// Plain text, not the guard's classes: the caller decides
			// what a refused redirect means.
			return fmt.Errorf("%w: %s", errRedirectRefused, err.Error())
		}
		return nil
	}
	s, err := New(Config{
		Name:          DirectName,
		Patterns:      []string{"*"},
		Dir:           dc.Dir,
		Timeout:       dc.Timeout,
		RefsTTL:       dc.RefsTTL,
		Limiter:       dc.Limiter,
		MaxConcurrent: dc.MaxConcurrent,
		// git itself must not follow a redirect or a submodule-like URL to
		// anything but https.
		Env:        append([]string{"GIT_ALLOW_PROTOCOL=https"}, dc.Env...),
		HTTPClient: &guarded,
		Logger:     dc.Logger,
	})
	if err != nil {
		return nil, err
	}
	s.direct = g
	return s, nil
}

// locateDirect finds the repository of a public module path.
func (s *Source) locateDirect(ctx context.Context, modulePath string) (location, error) {
	if err := module.CheckPath(modulePath); err != nil {
		return location{}, notExist("%v", err)
	}
	host, _, _ := strings.Cut(modulePath, "/")
	if err := s.direct.check(ctx, host); err != nil {
		return location{}, err
	}
	loc, ok, err := staticLocation(modulePath)
	if err != nil {
		return location{}, err
	}
	if !ok {
		loc, err = s.discoverDirect(ctx, modulePath)
		if err != nil {
			return location{}, err
		}
	}
	if err := s.checkRepoURL(ctx, loc.url); err != nil {
		return location{}, err
	}
	return loc, nil
}

// A knownHost is an entry of the go command's table of hosting sites whose
// repositories are found without asking them (cmd/go/internal/vcs).
type knownHost struct {
	prefix string
	re     *regexp.Regexp // submatch "root": the repository's import path
	vcs    string
	noVCS  bool // the root must not end in ".git", ".hg", ...
}

var knownHosts = []knownHost{
	{prefix: "github.com", re: regexp.MustCompile(`^(?P<root>github\.com/[\w.\-]+/[\w.\-]+)(/[\w.\-]+)*$`), vcs: "git", noVCS: true},
	{prefix: "bitbucket.org", re: regexp.MustCompile(`^(?P<root>bitbucket\.org/[\w.\-]+/[\w.\-]+)(/[\w.\-]+)*$`), vcs: "git", noVCS: true},
	{prefix: "hub.jazz.net/git", re: regexp.MustCompile(`^(?P<root>hub\.jazz\.net/git/[a-z0-9]+/[\w.\-]+)(/[\w.\-]+)*$`), vcs: "git", noVCS: true},
	{prefix: "git.apache.org", re: regexp.MustCompile(`^(?P<root>git\.apache\.org/[a-z0-9_.\-]+\.git)(/[\w.\-]+)*$`), vcs: "git"},
	{prefix: "git.openstack.org", re: regexp.MustCompile(`^(?P<root>git\.openstack\.org/[\w.\-]+/[\w.\-]+)(\.git)?(/[\w.\-]+)*$`), vcs: "git"},
	{prefix: "chiselapp.com", re: regexp.MustCompile(`^(?P<root>chiselapp\.com/user/[A-Za-z0-9]+/repository/[\w.\-]+)$`), vcs: "fossil"},
}

// vcsSuffix is the go command's general rule: a path element ending in a
// version control suffix ("example.com/repo.git/sub") names the
// repository, which is then reached at https://{repo}.
var vcsSuffix = regexp.MustCompile(`(?P<root>(?P<repo>([a-z0-9.\-]+\.)+[a-z0-9.\-]+(:[0-9]+)?(/~?[\w.\-]+)+?)\.(?P<vcs>bzr|fossil|git|hg|svn))(/~?[\w.\-]+)*$`)

var vcsNames = []string{"bzr", "fossil", "git", "hg", "svn"}

// staticLocation applies the go command's static rules; ok is false when
// none applies and go-import discovery decides.
func staticLocation(modulePath string) (location, bool, error) {
	for _, h := range knownHosts {
		if !hasPathPrefix(modulePath, h.prefix) {
			continue
		}
		m := h.re.FindStringSubmatch(modulePath)
		if m == nil {
			return location{}, false, notExist("module path %s is not a valid %s repository path", modulePath, h.prefix)
		}
		root := m[h.re.SubexpIndex("root")]
		if h.noVCS {
			for _, v := range vcsNames {
				if strings.HasSuffix(root, "."+v) {
					return location{}, false, notExist("module path %s: invalid version control suffix in %s path", modulePath, h.prefix)
				}
			}
		}
		if h.vcs != "git" {
			return location{}, false, unsupportedVCS(modulePath, h.vcs)
		}
		return location{root: root, url: "https://" + root}, true, nil
	}
	if m := vcsSuffix.FindStringSubmatch(modulePath); m != nil {
		root, vcs := m[vcsSuffix.SubexpIndex("root")], m[vcsSuffix.SubexpIndex("vcs")]
		if !hasPathPrefix(modulePath, root) {
			return location{}, false, notExist("module path %s: invalid version control suffix", modulePath)
		}
		if vcs != "git" {
			return location{}, false, unsupportedVCS(modulePath, vcs)
		}
		// The go command clones https://{repo}, without the suffix.
		return location{root: root, url: "https://" + m[vcsSuffix.SubexpIndex("repo")]}, true, nil
	}
	return location{}, false, nil
}

// ErrUnsupportedVCS reports a module whose code lives in a version control
// system other than Git. Errors matching it also match fs.ErrNotExist:
// modgate cannot serve the module, but the client's own fallback may.
var ErrUnsupportedVCS = errors.New("version control system not supported")

func unsupportedVCS(modulePath, vcs string) error {
	return &classed{class: []error{ErrUnsupportedVCS, fs.ErrNotExist},
		msg: fmt.Sprintf("%s is in a %s repository: %s (modgate fetches only git)", modulePath, vcs, ErrUnsupportedVCS)}
}

// discoverDirect reads the go-import meta tag of modulePath the way the
// go command does in module mode: from https://{module path}?go-get=1
// only, and when the matching tag's prefix is shorter than the module
// path, the tag at https://{prefix}?go-get=1 must say the same.
func (s *Source) discoverDirect(ctx context.Context, modulePath string) (location, error) {
	if loc, ok := s.cachedDiscovery(modulePath); ok {
		return loc, nil
	}
	mi, err := s.directMeta(ctx, modulePath, modulePath)
	if err != nil {
		return location{}, err
	}
	if mi.prefix != modulePath {
		again, err := s.directMeta(ctx, mi.prefix, modulePath)
		if err != nil {
			return location{}, err
		}
		if again != mi {
			return location{}, notExist("https://%s?go-get=1 and https://%s?go-get=1 disagree about the go-import meta tag for %s",
				modulePath, mi.prefix, mi.prefix)
		}
	}
	if mi.vcs != "git" {
		return location{}, unsupportedVCS(modulePath, mi.vcs)
	}
	if strings.HasPrefix(mi.subdir, "/") || strings.HasPrefix(mi.subdir, "-") || mi.subdir == ".." || strings.HasPrefix(mi.subdir, "../") {
		return location{}, notExist("https://%s?go-get=1: invalid subdirectory %q in the go-import meta tag", modulePath, mi.subdir)
	}
	loc := location{root: mi.prefix, url: mi.repoRoot, subdir: mi.subdir}
	s.rememberDiscovery(mi.prefix, loc)
	return loc, nil
}

// directMeta fetches https://{prefix}?go-get=1 and returns the one tag
// matching modulePath.
func (s *Source) directMeta(ctx context.Context, prefix, modulePath string) (metaImport, error) {
	imports, err := s.fetchMeta(ctx, prefix)
	if err != nil {
		return metaImport{}, hostNotFound(err)
	}
	var found []metaImport
	for _, mi := range imports {
		if hasPathPrefix(modulePath, mi.prefix) {
			found = append(found, mi)
		}
	}
	switch len(found) {
	case 0:
		return metaImport{}, notExist("https://%s?go-get=1: no go-import meta tag for %s", prefix, modulePath)
	case 1:
		return found[0], nil
	}
	return metaImport{}, notExist("https://%s?go-get=1: several go-import meta tags match %s", prefix, modulePath)
}

// errRedirectRefused reports a redirect to plain http, to a host that is
// not public, or one too many.
var errRedirectRefused = errors.New("redirect refused")

// hostNotFound turns a DNS "no such host" and a refused redirect of a
// go-import page into "not found": a module path on a host that does not
// exist does not exist, and one whose page sends modgate elsewhere cannot
// be served from here. Other failures keep their class.
func hostNotFound(err error) error {
	if errors.Is(err, errRedirectRefused) {
		return notExist("%v", err)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		// No cause: err also carries upstream.ErrUnavailable.
		return &classed{class: []error{fs.ErrNotExist}, msg: err.Error()}
	}
	return err
}

// checkRepoURL accepts only https repository URLs on public hosts.
func (s *Source) checkRepoURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return notExist("repository URL %q is not a URL", redactURL(raw))
	}
	if u.Scheme != "https" {
		return notExist("repository URL %s: scheme %q refused: modgate fetches public modules over https only", redactURL(raw), u.Scheme)
	}
	if u.Host == "" {
		return notExist("repository URL %q has no host", redactURL(raw))
	}
	if u.User != nil {
		return notExist("repository URL %s: user information refused", redactURL(raw))
	}
	return s.direct.check(ctx, u.Hostname())
}

// A hostGuard refuses hosts in loopback, private, link-local, unspecified
// or multicast address space (see NewDirect).
type hostGuard struct {
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	names  bool // resolve names and check their addresses
}

// ErrPrivateHost reports a direct fetch refused because the host is not
// public. Errors matching it also match fs.ErrNotExist.
var ErrPrivateHost = errors.New("host is not public")

func (g *hostGuard) check(ctx context.Context, host string) error {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	refuse := func(why string) error {
		return &classed{class: []error{ErrPrivateHost, fs.ErrNotExist},
			msg: fmt.Sprintf("host %q refused: %s: %v", host, why, ErrPrivateHost)}
	}
	if h == "" {
		return refuse("empty")
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return refuse("localhost")
	}
	if addr, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		if !publicAddr(addr) {
			return refuse("a " + addrKind(addr) + " address")
		}
		return nil
	}
	if !g.names {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := g.lookup(ctx, h)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		// A module on a host that does not exist does not exist: "not
		// found", so that a client's next GOPROXY entry may try, as it
		// would after the go command's own direct lookup.
		return notExist("host %q: no such host", host)
	}
	if err != nil {
		return nil // unresolvable here for now: the connection decides
	}
	for _, a := range addrs {
		if !publicAddr(a) {
			return refuse("it resolves to " + addrKind(a) + " address " + a.String())
		}
	}
	return nil
}

func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsGlobalUnicast() && !a.IsPrivate() && !cgnat.Contains(a)
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func addrKind(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate(), cgnat.Contains(a):
		return "private"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsMulticast():
		return "multicast"
	}
	return "non-public"
}
