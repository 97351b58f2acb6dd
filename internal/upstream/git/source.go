package git

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/modgate/modgate/internal/upstream"
)

// Credentials are the secrets a Source presents to its Git server, already
// read from wherever the configuration keeps them. They are never printed.
type Credentials struct {
	// Username and Password (or token) are sent as HTTP Basic
	// authentication to http(s) repositories; Username defaults to "git"
	// when only a Password is set.
	Username, Password string
	// SSHKeyFile is the private key for ssh repositories.
	SSHKeyFile string
	// SSHKnownHostsFile lists the host keys ssh repositories may present
	// (known_hosts format). Set, ssh checks the server against it and
	// nothing else; empty, ssh uses the user's own known_hosts. Either
	// way an unknown host key fails the connection: there is nobody to
	// ask.
	SSHKnownHostsFile string
}

func (c Credentials) username() string {
	if c.Username == "" {
		return "git"
	}
	return c.Username
}

// Config configures a Source.
type Config struct {
	Name     string   // for logs, errors and metrics, e.g. "corp-gitlab"
	Patterns []string // module path patterns, GOPRIVATE glob syntax
	// URL is the repository URL template, e.g.
	// "https://git.corp.example/{path}.git": {root} is the repository
	// root, the leading elements of the module path that a pattern
	// matches ("corp.example.com/platform/auth" for the pattern
	// "corp.example.com/*/*"), {path} the root without its first element
	// ("platform/auth"). Empty means discovery through go-import meta tags
	// at https://{module path}?go-get=1.
	URL         string
	Credentials Credentials
	// Dir holds one bare mirror per repository, reused across requests
	// and restarts. Required.
	Dir string
	// Timeout bounds each git operation (default 2m); listing refs and
	// discovery are bounded by the smaller of Timeout and 30s.
	Timeout time.Duration
	// RefsTTL is how long a repository's ref list is reused before the
	// server is asked again (default 30s). Forget drops it at once.
	RefsTTL time.Duration
	// Limiter bounds concurrent git processes; pass one Limiter to every
	// Source of a configuration. Nil means a Limiter of its own with
	// MaxConcurrent slots (default DefaultMaxConcurrent).
	Limiter       *Limiter
	MaxConcurrent int
	// Env is added to the environment of git processes (for example
	// GIT_SSL_CAINFO or HTTPS_PROXY).
	Env []string
	// HTTPClient lists refs over smart HTTP and fetches go-import tags
	// (nil means upstream.NewHTTPClient with its defaults).
	HTTPClient *http.Client
	Logger     *slog.Logger // nil means no logging
}

// Defaults of Config.
const (
	DefaultTimeout = 2 * time.Minute
	DefaultRefsTTL = 30 * time.Second
	maxRefsTimeout = 30 * time.Second
)

// A Source serves modules from Git repositories as an upstream.Source:
// tags become versions, branches and commits pseudo-versions, with the go
// command's rules (see the package comment). It is safe for concurrent use.
type Source struct {
	cfg    Config
	run    *runner
	client *http.Client
	log    *slog.Logger
	tmp    string // temporary files (zips being built)

	fetches atomic.Int64 // git fetches run, for tests and metrics

	mu         sync.Mutex
	repos      map[string]*repo // by clone URL
	discovered map[string]discovery

	loadRepos sync.Once // loads the repositories earlier processes served from

	direct *hostGuard // set by NewDirect: public modules from their origin (direct.go)
}

// New returns a Source for cfg. It creates cfg.Dir if needed and removes
// temporary files a previous process left there for this source. Sources
// may share one Dir (mirrors are named by repository URL) but not one
// Name.
func New(cfg Config) (*Source, error) {
	var problems []error
	if cfg.Name == "" {
		problems = append(problems, errors.New("name is required"))
	}
	if len(cfg.Patterns) == 0 {
		problems = append(problems, errors.New("at least one pattern is required"))
	}
	for _, p := range cfg.Patterns {
		if _, err := path.Match(p, ""); err != nil || strings.Contains(p, ",") || strings.Trim(p, "/") == "" {
			problems = append(problems, fmt.Errorf("pattern %q is not a valid glob", p))
		}
	}
	if cfg.URL != "" {
		if err := checkTemplate(cfg.URL); err != nil {
			problems = append(problems, err)
		}
	}
	if cfg.Dir == "" {
		problems = append(problems, errors.New("dir is required"))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("git source %q: %w", cfg.Name, errors.Join(problems...))
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RefsTTL <= 0 {
		cfg.RefsTTL = DefaultRefsTTL
	}
	if cfg.Limiter == nil {
		cfg.Limiter = NewLimiter(cfg.MaxConcurrent)
	}
	s := &Source{
		cfg:        cfg,
		client:     cfg.HTTPClient,
		log:        cfg.Logger,
		tmp:        filepath.Join(cfg.Dir, ".tmp-"+cfg.Name), // per source: sources may share Dir
		repos:      make(map[string]*repo),
		discovered: make(map[string]discovery),
	}
	if s.client == nil {
		s.client = upstream.NewHTTPClient(upstream.HTTPConfig{})
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "git", "upstream", cfg.Name)
	s.run = &runner{
		limit:   cfg.Limiter,
		timeout: cfg.Timeout,
		env:     baseEnv(cfg.Credentials, cfg.Env),
		secrets: []string{cfg.Credentials.Password, basicToken(cfg.Credentials)},
	}
	if err := os.RemoveAll(s.tmp); err != nil {
		return nil, fmt.Errorf("git source %q: %w", cfg.Name, err)
	}
	if err := os.MkdirAll(s.tmp, 0o777); err != nil {
		return nil, fmt.Errorf("git source %q: %w", cfg.Name, err)
	}
	return s, nil
}

// checkTemplate checks that a URL template expands to a usable URL.
func checkTemplate(tmpl string) error {
	sample := expandTemplate(tmpl, "example.com/group/repo")
	if u, err := url.Parse(sample); err == nil && u.Scheme != "" && (u.Host != "" || u.Scheme == "file") {
		if _, hasPassword := u.User.Password(); hasPassword || u.User != nil && u.Scheme != "ssh" {
			return fmt.Errorf("url %q: credentials belong in the source's credentials, not in the URL", redactURL(tmpl))
		}
		switch u.Scheme {
		case "https", "http", "ssh", "git", "file":
			return nil
		}
		return fmt.Errorf("url %q: scheme %q not supported (want https, http, ssh, git or file)", redactURL(tmpl), u.Scheme)
	}
	if at, rest, ok := strings.Cut(sample, "@"); ok && !strings.Contains(at, "/") && strings.Contains(rest, ":") {
		return nil // scp-like ssh: git@host:path
	}
	return fmt.Errorf("url %q: not a URL (want e.g. https://git.corp.example/{path}.git)", tmpl)
}

// String returns the source's name.
func (s *Source) String() string { return s.cfg.Name }

// Matches reports whether modulePath is served by this source.
func (s *Source) Matches(modulePath string) bool {
	if s.direct != nil {
		return module.CheckPath(modulePath) == nil
	}
	return module.MatchPrefixPatterns(strings.Join(s.cfg.Patterns, ","), modulePath)
}

// Fetches returns how many git fetches the source has run, for tests and
// metrics.
func (s *Source) Fetches() int64 { return s.fetches.Load() }

// refsTimeout bounds a ref listing or a discovery request.
func (s *Source) refsTimeout() time.Duration { return min(s.cfg.Timeout, maxRefsTimeout) }

// credentialsFor reports whether the source's HTTP credentials may be sent
// to cloneURL: always for template URLs (the operator wrote them), and for
// discovered URLs only on a host the source's patterns name, so that a
// go-import tag cannot send them elsewhere.
func (s *Source) credentialsFor(cloneURL string) bool {
	if s.direct != nil {
		return false
	}
	if s.cfg.URL != "" {
		return true
	}
	u, err := url.Parse(cloneURL)
	if err != nil || u.Host == "" {
		return false
	}
	for _, p := range s.cfg.Patterns {
		first, _, _ := strings.Cut(strings.Trim(p, "/"), "/")
		if ok, _ := path.Match(first, u.Hostname()); ok {
			return true
		}
	}
	return false
}

// repoFor returns the repository at cloneURL, creating its state once.
func (s *Source) repoFor(cloneURL string) *repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[cloneURL]
	if r == nil {
		r = newRepo(s, cloneURL)
		s.repos[cloneURL] = r
	}
	return r
}

// codeRepo finds the repository of modulePath.
func (s *Source) codeRepo(ctx context.Context, modulePath string) (*codeRepo, error) {
	loc, err := s.locate(ctx, modulePath)
	if err != nil {
		return nil, err
	}
	return newCodeRepo(s.repoFor(loc.url), loc.root, loc.subdir, modulePath)
}

// Fetch answers one GOPROXY protocol path for a module this source
// matches: "{module}/@v/list", "{module}/@latest", and
// "{module}/@v/{version}.info|.mod|.zip", where a .info version may also
// be a query (a branch, a tag, a full or abbreviated commit hash, or a
// version prefix such as v1.2), answered with the canonical version the go
// command would resolve it to.
//
// Errors name the source and the module and are classified (see package
// upstream): fs.ErrNotExist for modules, versions and revisions that do
// not exist (including a module path the source does not match, a
// repository the server does not have, and a directory without go.mod);
// upstream.ErrUnavailable for Git server failures, with ErrAuthentication
// when the server rejected the credentials; upstream.ErrTimeout when it
// did not answer in time; fs.ErrInvalid for a malformed path.
func (s *Source) Fetch(ctx context.Context, p string) (*upstream.Response, error) {
	escMod, file, err := splitProtocolPath(p)
	if err != nil {
		return nil, fmt.Errorf("git source %q: %w", s.cfg.Name, err)
	}
	modPath, err := module.UnescapePath(escMod)
	if err != nil {
		return nil, fmt.Errorf("git source %q: path %q: %v: %w", s.cfg.Name, p, err, fs.ErrInvalid)
	}
	what := modPath
	if v, _, ok := cutVersionFile(file); ok {
		if uv, err := module.UnescapeVersion(v); err == nil {
			what += "@" + uv
		}
	}
	if s.direct != nil {
		if err := module.CheckPath(modPath); err != nil {
			return nil, fmt.Errorf("git source %q: %w", s.cfg.Name, notExist("%v", err))
		}
	} else if !s.Matches(modPath) {
		return nil, fmt.Errorf("git source %q: %s: %w", s.cfg.Name, modPath,
			notExist("module path not matched by the source's patterns"))
	}
	start := time.Now()
	resp, cr, err := s.serve(ctx, modPath, file)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, upstream.ErrTimeout) {
			// The caller's deadline: the package upstream contract says
			// it matches ErrTimeout too.
			err = &classed{class: []error{upstream.ErrTimeout}, msg: err.Error(), cause: err}
		}
		where := ""
		if cr != nil {
			where = cr.repo.shown() + ": "
		}
		return nil, fmt.Errorf("git source %q: %s: %s%w", s.cfg.Name, what, where, err)
	}
	cr.repo.served(modPath)
	s.log.Debug("served from git", "module", modPath, "file", file, "duration", time.Since(start))
	resp.Upstream = s.cfg.Name
	return resp, nil
}

// serve answers file ("list", "latest" or "{escaped version}.{ext}") for
// modPath. cr is returned whenever the repository was found.
func (s *Source) serve(ctx context.Context, modPath, file string) (*upstream.Response, *codeRepo, error) {
	cr, err := s.codeRepo(ctx, modPath)
	if err != nil {
		return nil, nil, err
	}
	switch file {
	case "list":
		list, err := s.list(ctx, cr)
		if err != nil {
			return nil, cr, err
		}
		return bytesResponse([]byte(list)), cr, nil
	case "latest":
		info, err := s.latest(ctx, cr)
		if err != nil {
			return nil, cr, err
		}
		return infoResponse(cr, info)
	}
	escVersion, ext, ok := cutVersionFile(file)
	if !ok {
		return nil, cr, fmt.Errorf("file %q: %w", file, fs.ErrInvalid)
	}
	version, err := module.UnescapeVersion(escVersion)
	if err != nil {
		return nil, cr, fmt.Errorf("version %q: %v: %w", escVersion, err, fs.ErrInvalid)
	}
	if ext != ".info" {
		// Serve files only for versions whose .info resolves to
		// themselves, as the go command only downloads what it resolved.
		if version != module.CanonicalVersion(version) {
			return nil, cr, notExist("version %s is not canonical", version)
		}
		info, err := cr.stat(ctx, version)
		if err != nil {
			return nil, cr, err
		}
		if info.Version != version {
			return nil, cr, notExist("version %s resolves to %s", version, info.Version)
		}
	}
	switch ext {
	case ".info":
		info, err := s.query(ctx, cr, version)
		if err != nil {
			return nil, cr, err
		}
		return infoResponse(cr, info)
	case ".mod":
		data, err := cr.goMod(ctx, version)
		if err != nil {
			return nil, cr, err
		}
		return bytesResponse(data), cr, nil
	default: // ".zip"
		f, err := cr.zip(ctx, version, s.tmp)
		if err != nil {
			return nil, cr, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, cr, err
		}
		return &upstream.Response{Body: &removeOnClose{File: f}, Size: fi.Size()}, cr, nil
	}
}

// list returns the @v/list body: tagged versions, one a line. A module
// with no tags is "not found" unless its directory is a module at HEAD
// (so that a path inside a huge repository that is not a module answers
// 404 fast instead of an empty list).
func (s *Source) list(ctx context.Context, cr *codeRepo) (string, error) {
	versions, err := cr.versions(ctx)
	if err != nil {
		return "", err
	}
	if len(versions) == 0 {
		if _, err := cr.latest(ctx); err != nil {
			return "", err
		}
		return "", nil
	}
	return strings.Join(versions, "\n") + "\n", nil
}

// latest answers @latest: the highest release, else the highest
// pre-release, else the pseudo-version of the default branch's HEAD.
func (s *Source) latest(ctx context.Context, cr *codeRepo) (*revInfo, error) {
	versions, err := cr.versions(ctx)
	if err != nil {
		return nil, err
	}
	if v := highest(versions, ""); v != "" {
		return cr.stat(ctx, v)
	}
	return cr.latest(ctx)
}

// query resolves the version or query of a .info request.
func (s *Source) query(ctx context.Context, cr *codeRepo, q string) (*revInfo, error) {
	switch {
	case q == "latest":
		return s.latest(ctx, cr)
	case isSemverPrefix(q):
		// "v1" or "v1.2": the highest matching release, else pre-release,
		// as the go command resolves a version prefix from the list.
		versions, err := cr.versions(ctx)
		if err != nil {
			return nil, err
		}
		v := highest(versions, q+".")
		if v == "" {
			return nil, notExist("no matching versions for query %q", q)
		}
		return cr.stat(ctx, v)
	}
	return cr.stat(ctx, q)
}

// highest returns the highest release in versions that starts with
// prefix, else the highest pre-release; "" when there is none.
func highest(versions []string, prefix string) string {
	var rel, pre string
	for _, v := range versions {
		if !strings.HasPrefix(v, prefix) {
			continue
		}
		if semver.Prerelease(v) == "" {
			if rel == "" || semver.Compare(v, rel) > 0 {
				rel = v
			}
		} else if pre == "" || semver.Compare(v, pre) > 0 {
			pre = v
		}
	}
	if rel != "" {
		return rel
	}
	return pre
}

// isSemverPrefix reports whether q is "vN" or "vN.M".
func isSemverPrefix(q string) bool {
	if !semver.IsValid(q) || semver.Canonical(q) == q || semver.Prerelease(q) != "" || semver.Build(q) != "" {
		return false
	}
	return strings.Count(q, ".") < 2
}

// infoJSON is a .info file, with Origin as the go command writes it into
// its module cache.
type infoJSON struct {
	Version string
	Time    time.Time
	Origin  *originJSON `json:",omitempty"`
}

type originJSON struct {
	VCS    string `json:",omitempty"`
	URL    string `json:",omitempty"`
	Subdir string `json:",omitempty"`
	Hash   string `json:",omitempty"`
	Ref    string `json:",omitempty"`
}

func infoResponse(cr *codeRepo, info *revInfo) (*upstream.Response, *codeRepo, error) {
	o := &originJSON{VCS: "git", URL: cr.repo.url, Subdir: cr.codeDir, Hash: info.Name, Ref: info.Ref}
	if module.IsPseudoVersion(info.Version) {
		o.Ref = "" // a pseudo-version names its commit; no ref to check
	}
	data, err := json.Marshal(infoJSON{Version: info.Version, Time: info.Time.UTC(), Origin: o})
	if err != nil {
		return nil, cr, err
	}
	return bytesResponse(data), cr, nil
}

func bytesResponse(data []byte) *upstream.Response {
	return &upstream.Response{Body: io.NopCloser(bytes.NewReader(data)), Size: int64(len(data))}
}

// removeOnClose removes the temporary file when the caller closes it.
type removeOnClose struct{ *os.File }

func (f *removeOnClose) Close() error {
	err := f.File.Close()
	os.Remove(f.Name())
	return err
}

// splitProtocolPath splits "{escaped module}/@v/{file}" and
// "{escaped module}/@latest"; file is "list", "latest" or
// "{version}.{info,mod,zip}".
func splitProtocolPath(p string) (escMod, file string, err error) {
	if m, ok := strings.CutSuffix(p, "/@latest"); ok && m != "" {
		return m, "latest", nil
	}
	m, f, ok := strings.Cut(p, "/@v/")
	if !ok || m == "" || f == "" || strings.Contains(f, "/") {
		return "", "", fmt.Errorf("path %q is not a module protocol path: %w", p, fs.ErrInvalid)
	}
	if f != "list" {
		if _, _, ok := cutVersionFile(f); !ok {
			return "", "", fmt.Errorf("path %q is not a module protocol path: %w", p, fs.ErrInvalid)
		}
	}
	return m, f, nil
}

// loadServedRepos makes a repo for every repository an earlier process
// served modules from (their modules files), so that Forget after a
// restart still names the modules a webhook must refresh.
func (s *Source) loadServedRepos() {
	files, _ := filepath.Glob(filepath.Join(s.cfg.Dir, "*"+modulesSuffix))
	for _, f := range files {
		if u, ok := readModulesURL(f); ok {
			s.repoFor(u)
		}
	}
}

// cutVersionFile splits "v1.2.3.zip" into "v1.2.3" and ".zip".
func cutVersionFile(file string) (version, ext string, ok bool) {
	for _, ext := range []string{".info", ".mod", ".zip"} {
		if v, ok := strings.CutSuffix(file, ext); ok && v != "" {
			return v, ext, true
		}
	}
	return "", "", false
}

// Forget drops the cached refs of the repository repoURL names (any form:
// https clone URL, web URL, ssh:// or scp-like URL, with or without
// ".git"), so that the next request sees its new tags and branches, and
// returns the module paths this source has served from it, sorted.
func (s *Source) Forget(repoURL string) []string {
	key := repoKey(repoURL)
	s.loadRepos.Do(s.loadServedRepos)
	s.mu.Lock()
	var hit []*repo
	for _, r := range s.repos {
		if r.key == key {
			hit = append(hit, r)
		}
	}
	for prefix, d := range s.discovered {
		if repoKey(d.loc.url) == key {
			delete(s.discovered, prefix)
		}
	}
	s.mu.Unlock()
	var modules []string
	for _, r := range hit {
		r.forget()
		modules = append(modules, r.servedModules()...)
	}
	slices.Sort(modules)
	return slices.Compact(modules)
}
