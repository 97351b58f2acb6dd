package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/modgate/modgate/internal/upstream"
)

// ErrInvalid matches every problem Load, Set and Validate report about the
// configuration's content (not I/O errors such as a missing file).
var ErrInvalid = errors.New("invalid configuration")

// A Problem is one thing wrong with a configuration.
type Problem struct {
	// Key is the key as the user wrote it, with a list index where one
	// element is wrong: "upstream.goproxy[1]". Empty for a file that is not
	// YAML at all.
	Key string
	// Pos is "file:line" when the value came from the config file.
	Pos string
	// Source is where the value came from otherwise (see Config.Sources):
	// "env MODGATE_LISTEN", "flag --listen", "go env GOPROXY".
	Source string
	// Msg says what is wrong and what to write instead.
	Msg string
}

// Error formats the problem like a compiler diagnostic when it has a file
// position ("modgate.yaml:4: upstream.retries: ...") and otherwise names the
// source at the end ("listen: ... (from env MODGATE_LISTEN)").
func (p *Problem) Error() string {
	var b strings.Builder
	if p.Pos != "" {
		b.WriteString(p.Pos + ": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Msg)
	if p.Pos == "" && p.Source != "" && p.Source != SourceDefault && p.Source != SourceFile {
		b.WriteString(" (from " + p.Source + ")")
	}
	return b.String()
}

// Is makes every Problem match ErrInvalid.
func (p *Problem) Is(target error) bool { return target == ErrInvalid }

// Validate checks a resolved configuration (see Resolve) and returns every
// problem at once, joined with errors.Join; each is a *Problem matching
// ErrInvalid that names the key as the user wrote it, where its value came
// from, and how to fix it. It returns nil when the configuration is usable.
// The problems Load found come first; a key Load already reported is not
// reported again.
func (c Config) Validate() error {
	v := validator{c: c, problems: slices.Clone(c.loadProblems)}

	v.listen()
	v.publicURL()
	if c.DataDir == "" {
		v.add("data_dir", "", "no directory; set data_dir or MODGATE_DATA_DIR (no per-user data directory was found: $XDG_DATA_HOME and $HOME are unset)")
	} else if strings.HasPrefix(c.DataDir, "~") {
		v.add("data_dir", "", "%q starts with ~, which is not expanded; write the full path", c.DataDir)
	} else if !filepath.IsAbs(c.DataDir) {
		v.add("data_dir", "", "%q is not an absolute path; write the full path", c.DataDir)
	}
	if _, err := ParseLogLevel(string(c.Log.Level)); err != nil {
		v.add("log.level", "", "%v", err)
	}
	if _, err := ParseLogFormat(string(c.Log.Format)); err != nil {
		v.add("log.format", "", "%v", err)
	}

	v.goproxy()
	v.patterns("upstream.noproxy", c.Upstream.NoProxy)
	v.positive("upstream.dial_timeout", c.Upstream.DialTimeout)
	v.positive("upstream.response_timeout", c.Upstream.ResponseTimeout)
	v.positive("upstream.idle_timeout", c.Upstream.IdleTimeout)
	if r := c.Upstream.Retries; r < 0 || r > 10 {
		v.add("upstream.retries", "", "must be between 0 and 10, got %d", r)
	}
	if n := c.Upstream.PrefetchWorkers; n < 0 || n > 64 {
		v.add("upstream.prefetch_workers", "", "must be between 0 (off) and 64, got %d", n)
	}
	if n := c.Upstream.PrefetchDepth; n < 1 || n > 8 {
		v.add("upstream.prefetch_depth", "", "must be between 1 and 8, got %d", n)
	}
	if n := c.Upstream.ZipAheadWorkers; n < 0 || n > 64 {
		v.add("upstream.zip_ahead_workers", "", "must be between 0 (off) and 64, got %d", n)
	}
	for i, h := range c.Upstream.RedirectHosts {
		if err := upstream.CheckRedirectHost(h); err != nil {
			v.add("upstream.redirect_hosts", fmt.Sprintf("[%d]", i), "%v", err)
		}
	}
	if n := c.Upstream.MaxConcurrentFills; n < 1 || n > 4096 {
		v.add("upstream.max_concurrent_fills", "", "must be between 1 and 4096, got %d", n)
	}
	v.positive("upstream.fill_queue_timeout", c.Upstream.FillQueueTimeout)
	v.positive("upstream.request_budget", c.Upstream.RequestBudget)
	v.positive("upstream.refresh_wait", c.Upstream.RefreshWait)

	v.direct(c.Upstream.Direct)

	if c.SumDB.GOSUMDB == "" {
		v.add("sumdb.gosumdb", "", `empty, and go env GOSUMDB gave nothing either; set sumdb.gosumdb (or MODGATE_GOSUMDB) to the checksum database, or "off"`)
	} else if err := checkGOSUMDB(c.SumDB.GOSUMDB); err != nil {
		v.add("sumdb.gosumdb", "", "%v", err)
	}
	v.patterns("sumdb.nosumdb", c.SumDB.NoSumDB)

	v.positive("cache.list_ttl", c.Cache.ListTTL)
	v.positive("cache.negative_ttl", c.Cache.NegativeTTL)
	v.positive("cache.sumdb_latest_ttl", c.Cache.SumDBLatestTTL)
	if c.Cache.MemoryMB < 0 || c.Cache.MemoryMB > 1<<20 {
		v.add("cache.memory_mb", "", "must be between 0 (off) and 1048576, got %d", c.Cache.MemoryMB)
	}
	v.scrub(c.Storage)
	v.positive("server.shutdown_timeout", c.Server.ShutdownTimeout)
	v.positive("server.read_header_timeout", c.Server.ReadHeaderTimeout)
	if c.Server.DrainPeriod.Duration < 0 {
		v.add("server.drain_period", "", "must not be negative, got %v", c.Server.DrainPeriod.Duration)
	}
	v.metrics()

	v.tls()
	v.private()
	v.policy()
	v.auth()
	v.audit()
	v.storage()
	v.state()
	v.replicaName()

	return errors.Join(v.problems...)
}

// ValidatePolicy checks the policy section alone, as Validate would: what
// a hot reload of the policy needs, since the other sections take effect
// only at a restart.
func (c Config) ValidatePolicy() error {
	v := validator{c: c}
	v.policy()
	return errors.Join(v.problems...)
}

type validator struct {
	c        Config
	problems []error
}

// add records a problem with key; suffix is appended to the key as shown
// ("[1]" for a list element).
func (v *validator) add(key, suffix, format string, args ...any) {
	p := &Problem{Key: key + suffix, Source: v.c.Source(key), Msg: fmt.Sprintf(format, args...)}
	for _, e := range v.c.loadProblems {
		if lp, ok := e.(*Problem); ok && lp.Key != "" && within(p.Key, lp.Key) {
			return // the value Load refused was not applied; its default is not the user's mistake
		}
	}
	if p.Source == SourceFile {
		p.Pos = v.c.posOf(key, suffix)
	}
	v.problems = append(v.problems, p)
}

// within reports whether key is parent or one of its elements or keys
// ("private.sources[1].url" is within "private.sources").
func within(key, parent string) bool {
	rest, ok := strings.CutPrefix(key, parent)
	return ok && (rest == "" || rest[0] == '.' || rest[0] == '[')
}

// posOf returns the file position of key+suffix, or of the nearest
// enclosing element of a list of sections ("private.sources[1].url", then
// "private.sources[1]"), or of key itself.
func (c Config) posOf(key, suffix string) string {
	for s := suffix; s != ""; {
		if pos := c.pos[key+s]; pos != "" {
			return pos
		}
		i := strings.LastIndexAny(s, ".[")
		if i <= 0 {
			break
		}
		s = s[:i]
	}
	return c.pos[key]
}

func (v *validator) positive(key string, d Duration) {
	if d.Duration <= 0 {
		v.add(key, "", "must be positive, got %q", d.String())
	}
}

func (v *validator) listen() {
	addr := v.c.Listen
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		msg := err.Error()
		if errors.As(err, &ae) {
			msg = ae.Err
		}
		v.add("listen", "", `%q is not host:port (%s); write for example "127.0.0.1:3000" or ":3000"`, addr, msg)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add("listen", "", "port %q in %q is not a number from 0 to 65535", port, addr)
	}
}

func (v *validator) publicURL() {
	s := v.c.PublicURL
	if s == "" {
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		v.add("public_url", "", "%q is not a URL; write it like \"https://modgate.corp.example\"", upstream.RedactURL(s))
	case u.Scheme != "http" && u.Scheme != "https":
		v.add("public_url", "", "scheme %q not supported (want https or http)", u.Scheme)
	case u.Host == "":
		v.add("public_url", "", "%q has no host; write it like \"https://modgate.corp.example\"", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		v.add("public_url", "", "%q has a query or fragment; clients append module paths to it, so leave them out", u.Redacted())
	}
}

// goproxy checks upstream.goproxy with package upstream's parser, the one
// the server builds its upstreams with. It reports the first bad entry,
// which the parser's error names. Entries that point at modgate itself are
// not a problem: the server leaves them out (see upstream.Build).
func (v *validator) goproxy() {
	list := v.c.Upstream.GOPROXY
	if list == "" {
		v.add("upstream.goproxy", "", "empty, and go env GOPROXY gave nothing either; set upstream.goproxy (or MODGATE_GOPROXY), for example \"https://proxy.corp.example\"")
		return
	}
	if _, err := upstream.ParseGOPROXY(list); err != nil {
		v.add("upstream.goproxy", "", "%v", err)
	}
}

// patterns checks a list of module path patterns (GONOPROXY syntax).
func (v *validator) patterns(key string, pats []string) {
	v.patternsAt(key, "", pats)
}

// patternsAt is patterns for a list inside a list element: at is the
// element's suffix, such as "[2].patterns".
func (v *validator) patternsAt(key, at string, pats []string) {
	for i, p := range pats {
		idx := fmt.Sprintf("%s[%d]", at, i)
		switch {
		case p == "":
			v.add(key, idx, "empty pattern; remove it")
		case strings.ContainsFunc(p, unicode.IsSpace):
			v.add(key, idx, "pattern %q contains a space; module paths never do", p)
		case strings.Contains(p, ","):
			v.add(key, idx, "pattern %q contains a comma; write one pattern per list element", p)
		default:
			if _, err := path.Match(p, ""); err != nil {
				v.add(key, idx, "pattern %q is not a valid glob (%v); see 'go help module-private'", p, err)
			}
		}
	}
}

// unwrapURLError returns the reason inside a *url.Error, whose own message
// would repeat the URL with its credentials.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// direct checks upstream.direct.
func (v *validator) direct(d UpstreamDirect) {
	if d.Proxy != "" {
		u, err := url.Parse(d.Proxy)
		switch {
		case err != nil:
			v.add("upstream.direct.proxy", "", "%q is not a URL: %v", upstream.RedactURL(d.Proxy), unwrapURLError(err))
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			v.add("upstream.direct.proxy", "", "%q: want an http or https URL with a host, such as \"http://proxy.corp.example:3128\"", upstream.RedactURL(d.Proxy))
		}
	}
	if d.CAFile != "" && !filepath.IsAbs(d.CAFile) {
		v.add("upstream.direct.ca_file", "", "%q is not an absolute path; write the full path", d.CAFile)
	}
}
