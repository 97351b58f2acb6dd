package server

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/upstream"
	"github.com/modgate/modgate/internal/upstream/git"
)

// buildDirect returns the Git source behind the GOPROXY keyword "direct"
// (public modules from their origin, mirrored in {data_dir}/git-direct),
// or nil when upstream.goproxy does not name direct or git is not
// installed. It shares the git
// process limit with the private sources. What it serves goes through the
// mirror's verification like any proxy's answer: nothing here marks it
// private.
func buildDirect(cfg config.Config, limit *git.Limiter, log *slog.Logger) (*git.Source, error) {
	entries, err := upstream.ParseGOPROXY(cfg.Upstream.GOPROXY)
	if err != nil || !slices.ContainsFunc(entries, func(e upstream.Entry) bool { return e.URL == "direct" }) {
		return nil, err
	}
	if _, err := exec.LookPath("git"); err != nil {
		// Without git every module direct finds would fail with 502 where
		// it answered "not found" before; keep it "not found" and say why.
		log.Warn("git is not installed: the direct entry of upstream.goproxy answers \"not found\" for every module; install git to fetch public modules from version control",
			"err", err)
		return nil, nil
	}
	d := cfg.Upstream.Direct
	hc := upstream.HTTPConfig{
		DialTimeout:           cfg.Upstream.DialTimeout.Duration,
		ResponseHeaderTimeout: cfg.Upstream.ResponseTimeout.Duration,
		IdleTimeout:           cfg.Upstream.IdleTimeout.Duration,
	}
	var env []string
	if d.Proxy != "" {
		u, err := url.Parse(d.Proxy)
		if err != nil {
			return nil, fmt.Errorf("upstream.direct.proxy: %v", err)
		}
		hc.Proxy = u
		env = append(env, "HTTPS_PROXY="+d.Proxy, "https_proxy="+d.Proxy, "NO_PROXY=", "no_proxy=")
	}
	if d.CAFile != "" {
		pem, err := os.ReadFile(d.CAFile)
		if err != nil {
			return nil, fmt.Errorf("upstream.direct.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream.direct.ca_file %s: no PEM certificates in it", d.CAFile)
		}
		hc.RootCAs = pool
		env = append(env, "GIT_SSL_CAINFO="+d.CAFile)
	}
	src, err := git.NewDirect(git.DirectConfig{
		Dir:        filepath.Join(cfg.DataDir, "git-direct"),
		Timeout:    cfg.Private.GitTimeout.Duration,
		RefsTTL:    cfg.Cache.ListTTL.Duration,
		Limiter:    limit,
		Env:        env,
		HTTPClient: upstream.NewHTTPClient(hc),
		Logger:     log, // git adds its component and source
		// An explicit egress proxy resolves names and decides where
		// they may go; modgate checks IP literals and localhost.
		ProxyResolves: d.Proxy != "",
	})
	if err != nil {
		return nil, fmt.Errorf("upstream.goproxy: direct: %w", err)
	}
	return src, nil
}
