// Package server wires modgate's components together for `modgate serve`:
// it builds storage, upstreams, the checksum-database verifier and the
// mirror from a validated configuration, mounts every route in one place
// (routes), and owns the process lifecycle: readiness, graceful shutdown,
// and background work.
//
// Data directory layout:
//
//	{data_dir}/modules/   the module store, in GOPROXY layout (usable as a file:// GOPROXY)
//	{data_dir}/tmp/       downloads being verified; emptied at start
//	{data_dir}/sumdb/     the verified checksum-database tree head, per database
//	{data_dir}/ledger/    first-seen hashes of modules no checksum database covers (private modules)
//	{data_dir}/git/       bare mirrors of private repositories, one directory per source
//	{data_dir}/git-direct/  bare mirrors of public repositories fetched for GOPROXY "direct"
//	{data_dir}/webhook/   webhook deliveries accepted recently, to ignore replays
//	{data_dir}/maintenance-*/  scratch of a running `modgate verify` or `purge` (see maintenance.go)
package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modgate/modgate/internal/audit"
	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/goproxy"
	"github.com/modgate/modgate/internal/health"
	"github.com/modgate/modgate/internal/httperr"
	"github.com/modgate/modgate/internal/ledger"
	"github.com/modgate/modgate/internal/metrics"
	"github.com/modgate/modgate/internal/mirror"
	"github.com/modgate/modgate/internal/reqlog"
	"github.com/modgate/modgate/internal/state/postgres"
	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/sumdb"
	"github.com/modgate/modgate/internal/upstream"
	"github.com/modgate/modgate/internal/upstream/git"
	"github.com/modgate/modgate/internal/webhook"
)

// maxMemoryFile is the largest file the memory cache holds: every .info and
// nearly every go.mod, but no zips, which are sent from disk with sendfile.
const maxMemoryFile = 64 << 10

// A Server is a configured modgate, ready to serve. Create it with New,
// run it with Serve, and Close it when done.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	store    storage.Store
	chain    *upstream.Chain
	verifier *sumdb.Verifier
	mirror   *mirror.Mirror
	metrics  *metrics.Metrics
	ledger   *ledger.Ledger
	git      *git.Sources // nil without private sources
	webhook  http.Handler // nil without a webhook secret
	hookRuns webhook.Coalescer[[]string]
	policy   *policyState
	gate     *gate
	authn    *auth.Authenticator
	tokens   *auth.Tokens // nil when tokens are off
	audit    *audit.Log   // nil when the audit log is off
	pg       *postgres.DB // nil: state in files (see state.go)
	tls      *tls.Config  // nil: plain HTTP
	handler  http.Handler
	ready    atomic.Bool
	health   *health.Monitor // what /readyz checks (see health.go)
	// metricsAddr is where metrics.listen was bound (a string), for tests
	// that ask for port 0.
	metricsAddr atomic.Value

	// integrity checks stored files and keeps tombstones (integrity.go).
	integrity *integrityState

	// Background work (webhook prefetches): bgCtx is cancelled by Close,
	// which then waits for bg.
	bgCtx  context.Context
	bgStop context.CancelFunc
	bg     sync.WaitGroup
}

// New builds a Server from cfg, which must have been resolved and validated.
// It creates the data directory; it does not listen. When it fails, what
// it had already started (workers, open files, the audit log) is closed.
// opts are for tests (see Option).
func New(cfg config.Config, log *slog.Logger, opts ...Option) (_ *Server, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{cfg: cfg, log: log, metrics: metrics.New()}
	s.bgCtx, s.bgStop = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			s.Close() // err is what the caller needs; Close's own is secondary
		}
	}()

	store, err := OpenStore(s.bgCtx, cfg, log) // storage.go
	if err != nil {
		return nil, err
	}
	s.store = store
	cleanInterruptedWrites(store, log)
	if err := s.openState(); err != nil {
		return nil, err
	}
	// Small files (.info, .mod) are most requests; keep them in memory.
	cached := storage.NewCache(store, int64(cfg.Cache.MemoryMB)<<20, maxMemoryFile)

	db, err := sumdb.ParseGOSUMDB(cfg.SumDB.GOSUMDB)
	if err != nil {
		return nil, fmt.Errorf("sumdb.gosumdb: %w", err)
	}
	var sumdbURLs map[string]string
	if db.URL != "" {
		sumdbURLs = map[string]string{db.Name: db.URL}
	}
	client := upstream.NewHTTPClient(upstream.HTTPConfig{
		DialTimeout:           cfg.Upstream.DialTimeout.Duration,
		ResponseHeaderTimeout: cfg.Upstream.ResponseTimeout.Duration,
		IdleTimeout:           cfg.Upstream.IdleTimeout.Duration,
		RedirectHosts:         cfg.Upstream.RedirectHosts,
		MaxConnsPerHost:       mirror.UpstreamConns(cfg.Upstream.MaxConcurrentFills, cfg.Upstream.PrefetchWorkers+cfg.Upstream.ZipAheadWorkers),
		Control:               o.dialControl,
	})
	retries := cfg.Upstream.Retries
	if retries == 0 {
		retries = -1 // upstream treats 0 as "default"; the config's 0 means none
	}
	// One bound on git processes for the private sources and direct.
	gitLimit := git.NewLimiter(cfg.Private.MaxConcurrentGit)
	directModules, err := buildDirect(cfg, gitLimit, log)
	if err != nil {
		return nil, err
	}
	var directSource upstream.Source // a nil *git.Source must stay a nil interface
	if directModules != nil {
		directSource = directModules
	}
	s.chain, err = upstream.Build(cfg.Upstream.GOPROXY, upstream.BuildOptions{
		Self:          []string{cfg.Listen, cfg.PublicURL},
		Client:        client,
		Proxy:         upstream.ProxyOptions{Retries: retries, Logger: log /* upstream adds its component */, Observe: s.metrics.ObserveUpstream, ObserveBytes: s.metrics.ObserveUpstreamBytes},
		SumdbURLs:     sumdbURLs,
		DirectModules: directSource,
		Health: &upstream.HealthOptions{
			Budget:   cfg.Upstream.RequestBudget.Duration,
			OnChange: s.metrics.UpstreamHealth,
			Logger:   log,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("upstream.goproxy: %w", err)
	}
	for _, e := range s.chain.Excluded() {
		log.Info("left modgate itself out of its upstreams", "upstream", e)
	}
	if !hasProxy(s.chain) && directModules == nil {
		log.Warn("no proxy and no direct among the upstreams, so public modules are served only from what is stored (private.sources still serve private modules); set upstream.goproxy",
			"upstreams", s.chain.String())
	}
	direct, err := upstream.NewDirect(client, upstream.DirectOptions{SumdbURLs: sumdbURLs})
	if err != nil {
		return nil, err
	}
	s.git, err = buildGitSources(cfg, client, gitLimit, log)
	if err != nil {
		return nil, err
	}
	// Private modules go to the Git sources and skip the public checksum
	// database, whatever go env said.
	private := cfg.Private.Patterns()
	noProxy := append(slices.Clone(cfg.Upstream.NoProxy), private...)
	noSumDB := append(slices.Clone(cfg.SumDB.NoSumDB), private...)

	s.verifier, err = sumdb.NewVerifier(sumdb.VerifierConfig{
		DB:              db,
		NoSumDB:         noSumDB,
		Source:          s.chain,
		Store:           store,
		StateDir:        filepath.Join(cfg.DataDir, "sumdb"),
		HeadStore:       s.headStore(),
		Logger:          log, // sumdb adds its component
		OnSecurityEvent: s.metrics.SecurityEvent,
		Heads:           auditHeads{s}, // a copy of the verified tree head in the audit log
		// Set before any request can start a lookup.
		LastActive: func() time.Time { return s.mirror.LastActive() },
	})
	if err != nil {
		return nil, fmt.Errorf("checksum database: %w", err)
	}
	var verifier mirror.Checker = s.verifier
	if db.Off() {
		verifier = nil
		log.Warn("checksum database verification is off (sumdb.gosumdb=off): modules are checked only against the hashes first seen for them")
	}
	// Whatever the checksum database does not cover (private modules,
	// sumdb.nosumdb) is held to the hashes first seen for it.
	s.ledger, err = ledger.Open(ledger.Config{
		Dir:      filepath.Join(cfg.DataDir, "ledger"),
		Patterns: []string{"*"},
		Backend:  s.ledgerBackend(),
		Logger:   log, // ledger adds its component
		OnMoved: func(mod, version, file, recorded, got string) {
			s.metrics.MovedVersion(file)
			log.Error("refused a different copy of a recorded version: a Git tag was moved",
				"module", mod, "version", version, "file", file, "recorded", recorded, "got", got)
			s.auditAdmin(context.Background(), "tag.moved", fmt.Sprintf(
				"%s@%s: %s hash %s differs from %s recorded first; the new copy was refused and the recorded one is still served",
				mod, version, file, got, recorded))
		},
	})
	if err != nil {
		return nil, fmt.Errorf("opening the ledger of private module hashes: %w", err)
	}
	checker := mirror.CheckFirst(verifier, s.ledger)
	if db.Off() {
		s.buildIntegrity(store, cached, nil)
	} else {
		s.buildIntegrity(store, cached, sumdbSource{s.verifier})
	}

	if err := s.buildPolicy(); err != nil {
		return nil, err
	}
	s.mirror, err = mirror.New(mirror.Config{
		Store:           cached,
		Upstream:        s.chain,
		Direct:          privateRouter{git: s.git, direct: direct},
		NoProxy:         noProxy,
		Checker:         checker,
		ScratchDir:      filepath.Join(cfg.DataDir, "tmp"),
		ListTTL:         cfg.Cache.ListTTL.Duration,
		NegativeTTL:     cfg.Cache.NegativeTTL.Duration,
		PrefetchWorkers: cfg.Upstream.PrefetchWorkers,
		PrefetchDepth:   cfg.Upstream.PrefetchDepth,
		ZipAheadWorkers: cfg.Upstream.ZipAheadWorkers,
		Logger:          log,
		Observer:        s.metrics,
		OnList:          s.observeList,
		Guard:           s.integrity.guard,
		Tombstones:      s.integrity.tombs,

		MaxFills:         cfg.Upstream.MaxConcurrentFills,
		FillQueueTimeout: cfg.Upstream.FillQueueTimeout.Duration,
		RefreshWait:      cfg.Upstream.RefreshWait.Duration,
		Leaser:           s.leaser(),
	})
	if err != nil {
		return nil, err
	}

	var sumdbNames []string
	if !db.Off() {
		sumdbNames = []string{db.Name}
	}
	sumdbHandler := sumdb.NewHandler(sumdb.HandlerConfig{
		DBs:       sumdbNames,
		Source:    s.chain,
		Store:     store,
		LatestTTL: cfg.Cache.SumDBLatestTTL.Duration,
		Logger:    log,
		Private:   append(noProxy, cfg.SumDB.NoSumDB...),

		RefreshWait: cfg.Upstream.RefreshWait.Duration,
	})
	if err := s.buildWebhook(); err != nil {
		return nil, err
	}
	if err := s.buildAccess(); err != nil {
		return nil, err
	}
	s.buildHealth(o)
	s.gate = &gate{next: s.mirror, authn: s.authn, policy: &s.policy.engine, observe: s.observeDecision}
	s.handler = s.routes(goproxy.NewHandler(s.gate, cfg.Cache.ListTTL.Duration, log), sumdbHandler)
	s.metrics.Readiness(func() bool { return s.health.Check(s.bgCtx).Ready() })
	return s, nil
}

// hasProxy reports whether the chain has an upstream that can serve
// modules today (a proxy URL, not "direct" or "off").
func hasProxy(c *upstream.Chain) bool {
	for _, l := range c.Links() {
		if strings.Contains(l.URL, "://") {
			return true
		}
	}
	return false
}

// routes mounts every route; this is the one place to read them all.
func (s *Server) routes(modules, sumdbHandler http.Handler) http.Handler {
	mux := http.NewServeMux()
	// Liveness: the process answers.
	mux.HandleFunc("GET /healthz", s.tag("health", func(w http.ResponseWriter, r *http.Request) {
		writeText(w, http.StatusOK, "ok")
	}))
	// Readiness: started, not shutting down (503 through the drain
	// period, so load balancers stop sending work before the listener
	// closes), what is configured is loaded (the vulnerability
	// database), and every dependency answers; one line each.
	mux.HandleFunc("GET /readyz", s.tag("health", s.serveReady))
	// Prometheus metrics, unless metrics.listen serves them elsewhere;
	// behind the metrics scope as metrics.access says.
	if s.cfg.Metrics.Listen == "" {
		mux.Handle("GET /metrics", s.tag("metrics", s.serveMetrics))
	}
	// The checksum database proxy: /sumdb/{name}/supported|latest|lookup/...|tile/...
	// Its data is public; any identity that may read some module may read it.
	mux.Handle("/sumdb/", s.tag("sumdb", func(w http.ResponseWriter, r *http.Request) {
		if err := s.authn.AuthorizeAny(auth.FromContext(r.Context()), auth.Read); err != nil {
			httperr.Write(w, r, err)
			return
		}
		sumdbHandler.ServeHTTP(w, r)
	}))
	// Why a module version is allowed, warned about or blocked: every rule.
	mux.HandleFunc("GET /policy/explain", s.tag("explain", s.serveExplain))
	// The vulnerability database copy, for govulncheck -db <this>/vulndb.
	// Public data, and govulncheck sends no credentials: no authorisation.
	if s.policy.vulns != nil {
		mux.Handle("/vulndb/", s.tag("vulndb", http.StripPrefix("/vulndb", s.policy.vulns.Handler()).ServeHTTP))
	}
	// Token administration (admin scope): GET/POST /admin/tokens,
	// DELETE /admin/tokens/{id}.
	if s.tokens != nil {
		admin := s.authn.AdminHandler(s.tokens)
		mux.Handle("/admin/tokens", s.tag("admin", admin.ServeHTTP))
		mux.Handle("/admin/tokens/", s.tag("admin", admin.ServeHTTP))
	}
	// Push events from Git servers: refresh private modules at once.
	if s.webhook != nil {
		mux.Handle("POST /webhook/{provider}", s.tag("webhook", s.webhook.ServeHTTP))
	}
	// Purges (admin scope): DELETE /admin/modules/{module}[@{version}].
	mux.Handle("DELETE /admin/modules/{module...}", s.tag("admin", s.servePurge))
	// A one-line hint for people who open the root in a browser.
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		writeText(w, http.StatusOK, "modgate: a Go module proxy. Use it with: go env -w GOPROXY=<this URL>")
	})
	// The module proxy protocol: /{module}/@v/... and /{module}/@latest.
	// A module path's first element always contains a dot, so the fixed
	// routes above never collide with a module.
	mux.Handle("/", modules)

	// Module requests are nearly all the traffic: send them straight to the
	// protocol handler instead of through the mux's pattern matching.
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isModuleRequest(r.URL.Path) {
			modules.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	h = s.withAccess(h)
	h = reqlog.Middleware(s.log, s.metrics, s.auditRequest)(h)
	h = recoverPanics(s.log)(h)
	return h
}

// isModuleRequest reports whether path is shaped like a module protocol
// request, whose first element (a module path's) contains a dot and so is
// never one of the fixed routes. The protocol handler validates the rest.
func isModuleRequest(path string) bool {
	first, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return strings.Contains(first, ".") && (strings.Contains(path, "/@v/") || strings.HasSuffix(path, "/@latest"))
}

// tag records the artifact name of a fixed route for the access log and
// metrics.
func (s *Server) tag(artifact string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		reqlog.From(r.Context()).Artifact = artifact
		h(w, r)
	}
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// Handler returns the server's HTTP handler, for tests that serve it
// themselves.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers requests on ln until ctx is done, then shuts down
// gracefully: readiness turns false at once, requests are still accepted
// and served for server.drain_period (so that a load balancer polling
// /readyz stops sending work first), then new connections are refused and
// in-flight requests get server.shutdown_timeout to finish before they
// are cut off. With metrics.listen, /metrics is served there too. It
// returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := s.httpServer(s.handler)
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(s.tlsListener(ln)) }()
	servers := []*http.Server{srv}
	if addr := s.cfg.Metrics.Listen; addr != "" {
		mln, err := net.Listen("tcp", addr)
		if err != nil {
			srv.Close()
			<-errc
			return fmt.Errorf("metrics.listen: %w", err)
		}
		s.metricsAddr.Store(mln.Addr().String())
		msrv := s.httpServer(s.metricsHandler())
		go func() { errc <- msrv.Serve(mln) }()
		servers = append(servers, msrv)
		s.log.Info("serving metrics", "addr", mln.Addr().String())
	}
	s.background(s.watchPolicy)
	s.background(s.watchTokens)
	s.background(s.watchStorage)
	if s.cfg.Storage.ScrubInterval.Duration > 0 {
		s.background(s.runScrub)
	}
	s.background(s.watchTombstones)
	s.background(s.listenState)
	if v := s.policy.vulns; v != nil {
		s.background(v.Run)
		s.background(s.watchVulnDB)
	}
	s.ready.Store(true)
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	s.log.Info("serving", "addr", ln.Addr().String(), "url", scheme+"://"+ln.Addr().String(), "upstreams", s.chain.String(), "sumdb", s.verifier.DB().String(), "data_dir", s.cfg.DataDir)

	var serveErr error
	select {
	case serveErr = <-errc:
		s.ready.Store(false)
	case <-ctx.Done():
		s.ready.Store(false)
		if d := s.cfg.Server.DrainPeriod.Duration; d > 0 {
			s.log.Info("draining: /readyz answers 503, requests are still served", "drain_period", d)
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case serveErr = <-errc:
				t.Stop()
			}
		}
	}
	s.log.Info("shutting down", "timeout", s.cfg.Server.ShutdownTimeout.Duration)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Server.ShutdownTimeout.Duration)
	defer cancel()
	var err error
	for _, hs := range servers {
		serr := hs.Shutdown(sctx)
		if errors.Is(serr, context.DeadlineExceeded) {
			s.log.Warn("shutdown timeout reached; closing remaining connections")
			serr = hs.Close()
		}
		err = cmp.Or(err, serr)
	}
	// Every server's Serve returns; the one that failed already did.
	pending := len(servers)
	if serveErr != nil {
		pending--
	}
	for range pending {
		if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
			err = cmp.Or(err, e)
		}
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", serveErr)
	}
	return err
}

// httpServer returns the http.Server for h with the configured timeouts.
func (s *Server) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.Server.ReadHeaderTimeout.Duration,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// MetricsAddr returns the address metrics.listen is bound to, once Serve
// has bound it; "" before, or without metrics.listen.
func (s *Server) MetricsAddr() string {
	a, _ := s.metricsAddr.Load().(string)
	return a
}

// Close stops background work. Call it after Serve returns. It closes only
// what was built, so New also uses it to clean up after a failed step.
func (s *Server) Close() error {
	s.bgStop()
	s.bg.Wait()
	var errs []error
	if s.mirror != nil {
		errs = append(errs, s.mirror.Close())
	}
	if s.verifier != nil {
		errs = append(errs, s.verifier.Close())
	}
	if s.ledger != nil {
		errs = append(errs, s.ledger.Close())
	}
	if s.policy != nil && s.policy.ages != nil {
		errs = append(errs, s.policy.ages.Close())
	}
	if s.audit != nil {
		errs = append(errs, s.audit.Close())
	}
	s.closeState()
	return errors.Join(errs...)
}

// watchVulnDB publishes the vulnerability database's state as metrics.
func (s *Server) watchVulnDB(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		st := s.policy.vulns.Status()
		s.metrics.VulnDB(st.Entries, st.LastSuccess)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// background runs f in a goroutine that Close cancels and waits for.
func (s *Server) background(f func(ctx context.Context)) {
	if s.bgCtx.Err() != nil {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f(s.bgCtx)
	}()
}
