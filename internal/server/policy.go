package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/httperr"
	"github.com/modgate/modgate/internal/mirror"
	"github.com/modgate/modgate/internal/policy"
	"github.com/modgate/modgate/internal/vulndb"
)

// The policy at run time, wired here:
//
//   - the Engine in force sits in an atomic pointer; a reload (SIGHUP, or
//     the config file changing on disk) builds a new one from the file's
//     policy section and swaps it in only when the whole file is valid, so
//     a broken edit keeps the old policy running and says why (log, audit);
//   - the mirror tells Ages every version list it fetches, which dates new
//     versions for cooldown rules;
//   - the vulnerability database is kept by a vulndb.Syncer in
//     {data_dir}/vulndb (or policy.vulndb.dir) and served again at /vulndb/
//     for govulncheck -db;
//   - licences are detected from stored zips, once per version, cached in
//     {data_dir}/policy/licenses;
//   - pseudo-versions are mapped to the tags at their commit by a
//     policy.TagIndex that reads the tags' .info files through the mirror
//     (stored ones, else fetched and stored as a client's request would),
//     so the mapping is rebuilt from storage after a restart.

// policyPollInterval is how often the config file is checked for changes.
const policyPollInterval = 2 * time.Second

// policyState is everything the policy needs besides its rules.
type policyState struct {
	engine   atomic.Pointer[policy.Engine]
	ages     *policy.Ages
	vulns    *vulndb.Syncer // nil without a vulnerability database
	licenses *policy.LicenseDetector
	tags     *policy.TagIndex
	file     string // the config file to reload from; "" when none
	modTime  time.Time
}

// buildPolicy prepares the policy state and compiles the configured rules.
func (s *Server) buildPolicy() error {
	p := &policyState{file: s.cfg.File}
	if p.file != "" {
		if fi, err := os.Stat(p.file); err == nil {
			p.modTime = fi.ModTime()
		}
	}
	dir := filepath.Join(s.cfg.DataDir, "policy")
	var err error
	p.ages, err = s.openAges(dir)
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	s.policy = p // from here on, Close closes the ages file
	p.licenses = s.licenseDetector(filepath.Join(dir, "licenses"))
	p.tags = policy.NewTagIndex(mirrorInfos{s})
	if vc := s.cfg.Policy.VulnDB; vc.URL != "" || vc.Dir != "" {
		sc := vulndb.SyncConfig{
			URL:      vc.URL,
			Dir:      filepath.Join(s.cfg.DataDir, "vulndb"),
			Interval: vc.SyncInterval.Duration,
			Logger:   s.log, // vulndb adds its component
			Shared:   s.vulnShared(),

			RedirectHosts: s.cfg.Upstream.RedirectHosts,
		}
		if vc.URL == "" {
			sc.Source = vc.Dir // read a local copy, as it is
		} else if vc.Dir != "" {
			sc.Dir = vc.Dir
		}
		p.vulns, err = vulndb.NewSyncer(sc)
		if err != nil {
			return fmt.Errorf("policy.vulndb: %w", err)
		}
	}
	e, err := s.compilePolicy(s.cfg.Policy)
	if err != nil {
		return err
	}
	p.engine.Store(e)
	return nil
}

// compilePolicy builds an Engine from a policy section; nil when it has no
// rules (every request is allowed without evaluating anything).
func (s *Server) compilePolicy(pc config.Policy) (*policy.Engine, error) {
	if len(pc.Rules) == 0 {
		return nil, nil
	}
	c, err := pc.Engine()
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	deps := policy.Deps{Ages: s.policy.ages, Licenses: s.policy.licenses, Tags: s.policy.tags}
	if s.policy.vulns != nil {
		deps.Vulns = syncerVulns{s.policy.vulns}
	}
	e, err := policy.New(c, deps)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	names := make([]string, len(pc.Rules))
	for i, r := range pc.Rules {
		names[i] = r.Name
	}
	s.metrics.PolicyRules(names)
	return e, nil
}

// syncerVulns adapts the vulnerability database to the policy.
type syncerVulns struct{ s *vulndb.Syncer }

func (v syncerVulns) Affecting(module, version string) []policy.Vuln {
	found := v.s.Affecting(module, version)
	if len(found) == 0 {
		return nil
	}
	out := make([]policy.Vuln, len(found))
	for i, f := range found {
		out[i] = policy.Vuln(f)
	}
	return out
}

// tagLookupTimeout bounds one list or .info read of a tag lookup (the
// policy engine decides without a request context).
const tagLookupTimeout = 30 * time.Second

// mirrorInfos gives the policy's TagIndex the mirror's version lists and
// .info files. It asks the mirror itself, not the gate: the tags it reads
// are looked at, not served.
type mirrorInfos struct{ s *Server }

func (m mirrorInfos) Versions(path string) ([]string, error) {
	esc, err := module.EscapePath(path)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), tagLookupTimeout)
	defer cancel()
	a, err := m.s.mirror.List(ctx, path, esc, mirror.Options{})
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(a.Data)), nil
}

func (m mirrorInfos) Info(path, version string) ([]byte, error) {
	esc, err := module.EscapePath(path)
	if err != nil {
		return nil, err
	}
	escVer, err := module.EscapeVersion(version)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), tagLookupTimeout)
	defer cancel()
	f, err := m.s.mirror.File(ctx, path, version, esc+"/@v/"+escVer+".info", mirror.Options{})
	if err != nil {
		return nil, err
	}
	defer f.Body.Close()
	return io.ReadAll(io.LimitReader(f.Body, 1<<20))
}

// openZip opens a stored zip for licence detection; fs.ErrNotExist when it
// is not stored yet.
func (s *Server) openZip(m module.Version) (io.ReadCloser, error) {
	esc, err := module.EscapePath(m.Path)
	if err != nil {
		return nil, err
	}
	escVer, err := module.EscapeVersion(m.Version)
	if err != nil {
		return nil, err
	}
	return s.store.Get(context.Background(), esc+"/@v/"+escVer+".zip")
}

// observeList records a version list fetched from an upstream, for ages.
func (s *Server) observeList(path string, versions []string) {
	if err := s.policy.ages.ObserveList(path, versions, time.Now()); err != nil {
		s.log.Warn("recording version ages failed", "module", path, "err", err)
	}
}

// observeDecision counts the rules that matched a decision.
func (s *Server) observeDecision(d policy.Decision) {
	for _, m := range d.Matches {
		verdict := string(m.Action)
		if m.DryRun {
			verdict = "dry-run"
		}
		s.metrics.PolicyDecision(m.Rule, verdict)
	}
}

// reloadPolicy reads the config file again and puts its policy in force
// when the whole file is valid; otherwise the old policy stays and the
// reason is logged and audited.
func (s *Server) reloadPolicy(why string) error {
	p := s.policy
	if p.file == "" {
		return errors.New("no config file to reload the policy from (start with -config FILE)")
	}
	e, n, err := s.loadPolicy(p.file)
	if err != nil {
		s.log.Error("policy reload refused; the previous policy stays in force", "trigger", why, "err", err)
		s.auditAdmin(context.Background(), "policy.reload", "refused ("+why+"): "+err.Error())
		return err
	}
	p.engine.Store(e)
	s.policyReloaded(why)
	s.log.Info("policy reloaded", "trigger", why, "rules", n)
	s.auditAdmin(context.Background(), "policy.reload", fmt.Sprintf("%d rules (%s)", n, why))
	return nil
}

// loadPolicy loads and validates file and compiles its policy.
func (s *Server) loadPolicy(file string) (*policy.Engine, int, error) {
	cfg, err := config.Load(file, nil)
	if err == nil {
		// Validate the policy alone: other sections take effect only at
		// a restart and must not block a policy change.
		err = cfg.ValidatePolicy()
	}
	if err != nil {
		return nil, 0, err
	}
	e, err := s.compilePolicy(cfg.Policy)
	return e, len(cfg.Policy.Rules), err
}

// watchPolicy reloads the policy on SIGHUP and when the config file's
// modification time changes, until ctx is done.
func (s *Server) watchPolicy(ctx context.Context) {
	if s.policy.file == "" {
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(policyPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			s.reloadPolicy("SIGHUP")
		case <-tick.C:
			fi, err := os.Stat(s.policy.file)
			if err != nil || fi.ModTime().Equal(s.policy.modTime) {
				continue
			}
			s.policy.modTime = fi.ModTime()
			s.reloadPolicy("config file changed")
		}
	}
}

// serveExplain answers GET /policy/explain?module=M&version=V with the
// JSON decision for the version's zip: every rule, whether it matched and
// why. It needs read access to the module.
func (s *Server) serveExplain(w http.ResponseWriter, r *http.Request) {
	mod, version := r.URL.Query().Get("module"), r.URL.Query().Get("version")
	if err := module.CheckPath(mod); err != nil {
		httperr.Write(w, r, fmt.Errorf("module=%q: %v: %w", mod, err, httperr.ErrBadRequest))
		return
	}
	if version != "" && module.CanonicalVersion(version) != version {
		httperr.Write(w, r, fmt.Errorf("version=%q is not a canonical version such as v1.2.3: %w", version, httperr.ErrBadRequest))
		return
	}
	if err := s.gate.authorize(r.Context(), mod); err != nil {
		httperr.Write(w, r, err)
		return
	}
	kind := policy.Zip
	if version == "" {
		kind = policy.List
	}
	var d policy.Decision
	if e := s.policy.engine.Load(); e != nil {
		subj := policy.Subject{Module: mod, Version: version, File: kind}
		if version != "" {
			// The .info time, when stored, as a zip request would use it
			// (explain fetches nothing for it; only mapping a
			// pseudo-version to its tags may read tags' .info files
			// through the mirror, as the zip request would).
			esc, _ := module.EscapePath(mod)
			escVer, _ := module.EscapeVersion(version)
			subj.InfoTime = s.gate.infoTime(r.Context(), mod, version, esc+"/@v/"+escVer+".zip", mirror.Options{NoFetch: true})
		}
		d = e.Decide(subj)
	} else {
		d = policy.Decision{Module: mod, Version: version, File: kind, Rules: []policy.Evaluation{}}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(d)
}
