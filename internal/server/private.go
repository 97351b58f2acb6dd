package server

import (
	"context"
	"crypto/x509"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/reqlog"
	"github.com/modgate/modgate/internal/upstream"
	"github.com/modgate/modgate/internal/upstream/git"
	"github.com/modgate/modgate/internal/webhook"
)

// Private modules, wired here:
//
//   - git.Sources answers modules matched by private.sources[*].patterns;
//     the mirror sends it every module in upstream.noproxy plus those
//     patterns (privateRouter), so private names never reach a public
//     proxy;
//   - the checksum-database verifier skips the same patterns, and the
//     /sumdb/ proxy refuses lookups of them instead of forwarding;
//   - the ledger records the first hashes of every module the checksum
//     database does not cover, and refuses a different zip or go.mod for
//     the same version later (a moved tag);
//   - POST /webhook/{provider} refreshes the modules of a pushed
//     repository at once and fetches new versions in the background.

// webhookRefreshTimeout bounds the synchronous part of a webhook: listing
// the pushed repository's tags again.
const webhookRefreshTimeout = 20 * time.Second

// buildGitSources returns the configured Git sources, or nil when there are
// none. Secrets are read here, from the environment or files; they never
// pass through the configuration.
func buildGitSources(cfg config.Config, client *http.Client, limit *git.Limiter, log *slog.Logger) (*git.Sources, error) {
	p := cfg.Private
	if len(p.Sources) == 0 {
		return nil, nil
	}
	dir := p.GitDir
	if dir == "" {
		dir = filepath.Join(cfg.DataDir, "git")
	}
	var srcs []*git.Source
	for i, sc := range p.Sources {
		src, err := newGitSource(sc, dir, p.GitTimeout.Duration, cfg.Cache.ListTTL.Duration, limit, client, log)
		if err != nil {
			return nil, fmt.Errorf("private.sources[%d] (%s): %w", i, sc.Name, err)
		}
		srcs = append(srcs, src)
	}
	return git.NewSources(srcs...), nil
}

// newGitSource builds one Git source from its configuration.
func newGitSource(sc config.PrivateSource, dir string, timeout, refsTTL time.Duration, limit *git.Limiter, client *http.Client, log *slog.Logger) (*git.Source, error) {
	password, err := config.Secret(sc.PasswordEnv, sc.PasswordFile, nil)
	if err != nil {
		return nil, fmt.Errorf("password: %w", err)
	}
	var env []string
	if sc.CAFile != "" {
		pem, err := os.ReadFile(sc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificates in it", sc.CAFile)
		}
		client = upstream.NewHTTPClient(upstream.HTTPConfig{RootCAs: pool})
		env = append(env, "GIT_SSL_CAINFO="+sc.CAFile)
	}
	user := sc.Username
	if user == "" && password != "" {
		user = "git"
	}
	return git.New(git.Config{
		Name:        sc.Name,
		Patterns:    sc.Patterns,
		URL:         sc.URL,
		Credentials: git.Credentials{Username: user, Password: password, SSHKeyFile: sc.SSHKeyFile, SSHKnownHostsFile: sc.SSHKnownHostsFile},
		Dir:         filepath.Join(dir, sc.Name),
		Timeout:     timeout,
		RefsTTL:     refsTTL,
		Limiter:     limit,
		HTTPClient:  client,
		Env:         env,
		Logger:      log, // git adds its component and source
	})
}

// A privateRouter is the mirror's source for modules that must not go to
// a public proxy: the Git sources for the modules they match, and the
// "direct" keyword's Source for everything else (checksum-database paths,
// and upstream.noproxy modules no Git source serves, which it answers
// "not found").
type privateRouter struct {
	git    *git.Sources // may be nil
	direct upstream.Source
}

func (r privateRouter) String() string { return "private" }

func (r privateRouter) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	if r.git != nil {
		if mod, ok := moduleOf(path); ok && r.git.Matches(mod) {
			resp, err := r.git.Fetch(ctx, path)
			// Clients get the reason; URLs and git command lines stay in
			// the log.
			return resp, git.Public(err, describe(mod, path), reqlog.From(ctx).ID)
		}
	}
	if _, ok := moduleOf(path); ok && r.git == nil {
		return nil, fmt.Errorf("%s: no private source serves this module; add one under private.sources: %w", path, fs.ErrNotExist)
	}
	return r.direct.Fetch(ctx, path)
}

// describe names what a protocol path of mod asks for, for clients:
// "mod@version", or mod alone for lists and queries that are not versions.
func describe(mod, path string) string {
	_, file, ok := strings.Cut(path, "/@v/")
	if !ok {
		return mod
	}
	for _, ext := range []string{".info", ".mod", ".zip"} {
		if esc, ok := strings.CutSuffix(file, ext); ok {
			if v, err := module.UnescapeVersion(esc); err == nil {
				return mod + "@" + v
			}
		}
	}
	return mod
}

// moduleOf returns the module path of an escaped protocol path.
func moduleOf(path string) (string, bool) {
	esc, _, ok := strings.Cut(path, "/@v/")
	if !ok {
		esc, ok = strings.CutSuffix(path, "/@latest")
	}
	if !ok {
		return "", false
	}
	mod, err := module.UnescapePath(esc)
	return mod, err == nil
}

// onWebhook handles a verified push event: every module modgate has served
// from the pushed repository is refreshed now, so a new tag is listed by
// the next request; new versions are fetched, and a pushed tag that names
// a stored version is checked again (a moved tag is refused and reported),
// in the background. Refreshes of one repository are coalesced (at most
// one running and one queued, see webhook.Coalescer): a burst of pushes
// or deliveries costs two refreshes, not one each.
func (s *Server) onWebhook(ctx context.Context, ev webhook.Event) error {
	if s.git == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, webhookRefreshTimeout)
	defer cancel()
	mods, shared, err := s.hookRuns.Do(ctx, repoKey(ev), func(ctx context.Context) ([]string, error) {
		ctx, cancel := context.WithTimeout(ctx, webhookRefreshTimeout)
		defer cancel()
		return s.refreshRepo(ctx, ev), nil
	})
	if err != nil {
		return err
	}
	s.log.Info("webhook", "provider", ev.Provider, "ref", ev.Ref, "modules", len(mods), "coalesced", shared)
	if ev.Tag != "" && !ev.Deleted {
		for _, mod := range mods {
			s.background(func(bg context.Context) { s.recheckTag(bg, mod, ev.Tag) })
		}
	}
	return nil
}

// repoKey names the repository of ev for coalescing.
func repoKey(ev webhook.Event) string {
	for _, u := range ev.RepoURLs {
		if k, err := webhook.RepoKey(u); err == nil {
			return k
		}
	}
	return ev.RepoURLs[0]
}

// refreshRepo forgets what the Git sources know about the pushed
// repository, refreshes every module modgate has served from it and
// prefetches new versions in the background. It returns the modules.
func (s *Server) refreshRepo(ctx context.Context, ev webhook.Event) []string {
	var mods []string
	for _, u := range ev.RepoURLs {
		mods = append(mods, s.git.Forget(u)...)
	}
	mods = uniq(mods)
	for _, mod := range mods {
		added, err := s.mirror.Refresh(ctx, mod)
		if err != nil {
			s.log.Warn("webhook refresh failed", "module", mod, "err", err)
			continue
		}
		if len(added) == 0 {
			continue
		}
		s.background(func(bg context.Context) {
			for _, v := range added {
				if err := s.mirror.Prefetch(bg, mod, v); err != nil {
					s.log.Warn("webhook prefetch failed", "module", mod, "version", v, "err", err)
				}
			}
		})
	}
	return mods
}

// recheckTag checks again the version a pushed tag names, when that
// version is already stored: a tag pushed again over an existing version
// is a moved tag.
func (s *Server) recheckTag(ctx context.Context, mod, tag string) {
	version := tagVersion(mod, tag)
	if version == "" {
		return
	}
	if err := s.mirror.Recheck(ctx, mod, version); err != nil {
		s.log.Warn("pushed tag refused", "module", mod, "version", version, "err", err)
	}
}

// tagVersion returns the version of mod that tag names, or "" when the tag
// is not a version of that module: "v1.2.0" for a module at the
// repository root, "sub/dir/v1.2.0" for one in sub/dir.
func tagVersion(mod, tag string) string {
	i := strings.LastIndex(tag, "/")
	v := tag[i+1:]
	if module.CanonicalVersion(v) != v || module.Check(mod, v) != nil {
		return ""
	}
	if i >= 0 && !strings.HasSuffix(strings.TrimSuffix(mod, "/"+modulePathMajor(mod)), "/"+tag[:i]) {
		return ""
	}
	return v
}

// modulePathMajor returns the /vN element of a module path, without the
// slash, or "".
func modulePathMajor(mod string) string {
	_, major, ok := module.SplitPathVersion(mod)
	if !ok || major == "" {
		return ""
	}
	return strings.TrimPrefix(major, "/")
}

func uniq(ss []string) []string {
	seen := make(map[string]bool, len(ss))
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// buildWebhook prepares POST /webhook/{provider} when a secret is
// configured.
func (s *Server) buildWebhook() error {
	w := s.cfg.Private.Webhook
	secret, err := config.Secret(w.SecretEnv, w.SecretFile, nil)
	if err != nil {
		return fmt.Errorf("private.webhook: %w", err)
	}
	if secret == "" {
		return nil
	}
	h, err := webhook.NewHandler(webhook.Config{
		Secret:         []byte(secret),
		Logger:         s.log,
		DeliveriesFile: filepath.Join(s.cfg.DataDir, "webhook", "deliveries"),
		Deliveries:     s.deliveryStore(),
	}, s.webhookReceived)
	if err != nil {
		return fmt.Errorf("private.webhook: %w", err)
	}
	s.webhook = h
	return nil
}

// GitSource builds the private source named name from cfg alone, for
// `modgate source test`.
func GitSource(cfg config.Config, name string, log *slog.Logger) (*git.Source, error) {
	for _, sc := range cfg.Private.Sources {
		if sc.Name != name {
			continue
		}
		dir := cfg.Private.GitDir
		if dir == "" {
			dir = filepath.Join(cfg.DataDir, "git")
		}
		client := upstream.NewHTTPClient(upstream.HTTPConfig{
			DialTimeout:           cfg.Upstream.DialTimeout.Duration,
			ResponseHeaderTimeout: cfg.Upstream.ResponseTimeout.Duration,
		})
		return newGitSource(sc, dir, cfg.Private.GitTimeout.Duration, cfg.Cache.ListTTL.Duration, git.NewLimiter(cfg.Private.MaxConcurrentGit), client, log)
	}
	var names []string
	for _, sc := range cfg.Private.Sources {
		names = append(names, sc.Name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no private source %q: private.sources is empty", name)
	}
	return nil, fmt.Errorf("no private source %q (configured: %s)", name, strings.Join(names, ", "))
}
