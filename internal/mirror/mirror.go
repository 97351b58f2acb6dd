package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/upstream"
)

// ErrVerification reports a file from the upstream that failed verification:
// its hash differs from the checksum database, it is not a valid module zip,
// it is too large, or its .info describes another version. Such a file is
// never stored or served.
var ErrVerification = errors.New("verification failed")

// A Checker verifies downloaded files against a checksum database.
// Covers reports whether path is checked at all (false for modules the
// operator excluded or when verification is off); the Check methods return
// nil for paths not covered. Implementations must be safe for concurrent use.
type Checker interface {
	Covers(path string) bool
	CheckMod(ctx context.Context, path, version string, data []byte) error
	CheckZip(ctx context.Context, path, version, zipPath string) error
}

// An Observer is told about fills, for metrics. Every method must be cheap
// and safe for concurrent use.
type Observer interface {
	FillStarted(artifact string)
	FillDone(artifact string, err error)
	VerificationFailed(artifact string)
	// Prefetched counts a file stored by prefetch rather than for a client.
	Prefetched(artifact string)
}

// Config is what a Mirror needs. Store, Upstream and ScratchDir are required.
type Config struct {
	Store storage.Store
	// Upstream answers public modules: normally the GOPROXY chain.
	Upstream upstream.Source
	// Direct answers modules matching NoProxy (the go command's GONOPROXY):
	// they are never requested from Upstream, so private names never leak
	// to a public proxy.
	// Direct is required when NoProxy is set.
	Direct  upstream.Source
	NoProxy []string
	// Checker verifies .mod and .zip files; nil disables verification
	// (GOSUMDB=off).
	Checker Checker
	// ScratchDir holds downloads while they are verified. It should be on
	// the same file system as a disk store so a verified zip is renamed into
	// place rather than copied.
	ScratchDir  string
	ListTTL     time.Duration // freshness of list, latest and queries
	NegativeTTL time.Duration // how long "not found" is trusted (kept longer: doc.go)
	// Now is the clock the TTLs are measured with (default time.Now);
	// tests move it instead of sleeping.
	Now func() time.Time
	// RefreshWait bounds a request's wait for an expired mutable answer
	// to be refreshed when an older copy exists (see stale.go); 0 waits
	// for the refresh however long it takes.
	RefreshWait time.Duration
	// MaxFills bounds the fetches from Upstream running at once for
	// clients; more wait up to FillQueueTimeout (default 10s) for a slot
	// and then fail with ErrBusy. Background work has a separate budget
	// (see limit.go). 0 means no limit.
	MaxFills         int
	FillQueueTimeout time.Duration
	// PrefetchWorkers is how many go.mod files of requirements are fetched
	// in the background at once after a client's go.mod request (see
	// prefetch.go); 0 disables prefetching. PrefetchDepth is how many
	// levels of requirements are followed (default 1 when PrefetchWorkers
	// is set).
	PrefetchWorkers int
	PrefetchDepth   int
	// ZipAheadWorkers is how many zips are fetched in the background at
	// once after clients asked for their versions' .info files (see
	// prefetch.go); 0 disables it.
	ZipAheadWorkers int
	// MaxMutable bounds the number of mutable answers and remembered misses
	// kept in memory (default 100000).
	MaxMutable int
	Logger     *slog.Logger
	Observer   Observer // may be nil; told about the fill queue if it is a LimitObserver
	// Guard, when set, checks a stored file before it is served as a hit
	// (integrity.Guard); Tombstones, when set, refuses purged versions
	// (tombstone.Set). See guard.go.
	Guard      HitGuard
	Tombstones Tombstones
	// OnList, when set, is told every version list an upstream answered
	// (before merging with stored versions), for the policy's record of
	// when each version first appeared. It must be cheap or hand off.
	OnList func(path string, versions []string)
	// Leaser, when set, makes one replica fill each file while the
	// others sharing the Store wait for it (see lease.go). Nil: this
	// process alone fills the Store.
	Leaser Leaser
}

// Result says where an answer came from, for headers, logs and metrics.
type Result string

const (
	Hit   Result = "hit"   // served from storage or a fresh memory copy
	Miss  Result = "miss"  // fetched from an upstream for this request
	Stale Result = "stale" // every upstream failed; served an expired copy
)

// A File is a versioned module file ready to be served. The caller closes it.
// Body may also implement io.Seeker and Stat() (fs.FileInfo, error).
type File struct {
	Body   io.ReadCloser
	Result Result
	// Upstream names the upstream that sent the file when Result is Miss
	// (as in upstream.Response.Upstream), for the access log and the
	// audit record; "" otherwise.
	Upstream string
}

// An Answer is a mutable answer (list, latest, query).
type Answer struct {
	Data    []byte
	Result  Result
	Fetched time.Time // when it was last confirmed by an upstream
	// Upstream names the upstream that answered when Result is Miss and
	// this request started the fetch; "" otherwise.
	Upstream string
}

// Options modify one request.
type Options struct {
	// NoFetch answers from the cache only (the Disable-Module-Fetch header).
	NoFetch bool
}

// A Mirror is the module service. It is safe for concurrent use.
type Mirror struct {
	cfg     Config
	noProxy string // cfg.NoProxy joined for module.MatchPrefixPatterns
	log     *slog.Logger
	// upstream is cfg.Upstream behind the fill limit.
	upstream upstream.Source
	flights  flightGroup
	mutable  *ttlCache[[]byte]
	misses   *ttlCache[error]

	refreshing sync.Map         // keys with a background refresh running
	prefetchQ  chan prefetchJob // go.mod files; nil when prefetching is off
	infoQ      chan prefetchJob // .info files; nil when prefetching is off
	zipQ       chan prefetchJob // zips; nil when zip-ahead is off
	prefetched *ttlCache[bool]  // keys queued recently
	sessMu     sync.Mutex
	sessions   map[Client]*zipSession // zip-ahead, by client (prefetch.go)
	sessCount  int                    // .info files remembered in sessions
	sessInfos  atomic.Int64           // sessCount, read without sessMu

	lastActive atomic.Int64 // UnixNano of the last File call

	baseCtx context.Context // background refreshes and prefetch; cancelled by Close
	stop    context.CancelFunc
	bg      sync.WaitGroup
}

// New returns a Mirror. It creates ScratchDir and removes stale downloads a
// crash may have left there.
func New(cfg Config) (*Mirror, error) {
	if cfg.Store == nil || cfg.Upstream == nil || cfg.ScratchDir == "" {
		return nil, errors.New("mirror: Store, Upstream and ScratchDir are required")
	}
	if cfg.Direct == nil && len(cfg.NoProxy) > 0 {
		// Falling back to Upstream would send private module paths to a proxy.
		return nil, errors.New("mirror: NoProxy patterns need a Direct source")
	}
	if cfg.ListTTL <= 0 {
		cfg.ListTTL = time.Minute
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = time.Minute
	}
	if cfg.MaxMutable <= 0 {
		cfg.MaxMutable = 100000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.RemoveAll(cfg.ScratchDir); err != nil {
		return nil, fmt.Errorf("cleaning scratch directory: %w", err)
	}
	if err := os.MkdirAll(cfg.ScratchDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating scratch directory: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	m := &Mirror{
		cfg:     cfg,
		noProxy: strings.Join(cfg.NoProxy, ","),
		log:     cfg.Logger.With("component", "mirror"),
		mutable: newTTLCache[[]byte](cfg.MaxMutable, cfg.Now),
		misses:  newTTLCache[error](cfg.MaxMutable, cfg.Now),
		baseCtx: ctx,
		stop:    stop,
	}
	lobs, _ := cfg.Observer.(LimitObserver)
	if cfg.PrefetchWorkers <= 0 {
		m.cfg.PrefetchDepth = 0
	} else if cfg.PrefetchDepth <= 0 {
		m.cfg.PrefetchDepth = 1
	}
	m.upstream = limit(cfg.Upstream, newLimiter(cfg.MaxFills, cfg.PrefetchWorkers+cfg.ZipAheadWorkers, cfg.FillQueueTimeout, lobs))
	m.startPrefetch(cfg.PrefetchWorkers, cfg.ZipAheadWorkers)
	return m, nil
}

// Close stops background refreshes and prefetching and waits for them and
// for every fill still returning.
func (m *Mirror) Close() error {
	m.stop()
	m.bg.Wait()
	// A fill whose callers have all gone (a prefetch worker that just
	// stopped) is cancelled but may still be returning: wait for it, so
	// nothing uses the store or the checkers after Close.
	m.flights.wait()
	return nil
}

// activeResolution is how precisely LastActive is kept.
const activeResolution = 5 * time.Millisecond

// LastActive returns when a client last asked for a versioned file (within
// activeResolution), for work that waits until clients are quiet.
func (m *Mirror) LastActive() time.Time { return time.Unix(0, m.lastActive.Load()) }

// FillsInFlight returns the number of upstream fetches running now.
func (m *Mirror) FillsInFlight() int { return m.flights.inFlight() }

// File returns the canonical versioned file key ("{escaped module}/@v/{escaped
// version}.info|.mod|.zip") of module path at version, fetching and verifying
// it first when it is not stored. Errors match fs.ErrNotExist,
// ErrVerification, upstream.ErrUnavailable or upstream.ErrTimeout.
func (m *Mirror) File(ctx context.Context, path, version, key string, opts Options) (*File, error) {
	// At most one store every few milliseconds: concurrent requests
	// would otherwise all write one cache line.
	if now := time.Now().UnixNano(); now-m.lastActive.Load() > int64(activeResolution) {
		m.lastActive.Store(now)
	}
	return m.file(ctx, path, version, key, opts, m.cfg.PrefetchDepth)
}

// file implements File; filling a go.mod queues its requirements reqDepth
// levels deep (the configured depth for clients, less for the prefetchers:
// prefetch.go).
func (m *Mirror) file(ctx context.Context, path, version, key string, opts Options, reqDepth int) (*File, error) {
	if err := m.purged(ctx, path, version); err != nil {
		return nil, err
	}
	body, err := m.cfg.Store.Get(ctx, key)
	if err == nil {
		if body, err = m.guard(ctx, path, version, key, body); err != nil {
			return nil, err
		}
		return &File{Body: body, Result: Hit}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading %s from storage: %w", key, err)
	}
	if opts.NoFetch {
		return nil, fmt.Errorf("%s@%s: %s is not cached and Disable-Module-Fetch is set: %w", path, version, artifact(key), fs.ErrNotExist)
	}
	if err, ok := m.misses.get(key, m.cfg.NegativeTTL); ok {
		return nil, err
	}
	src, err, _ := m.flights.do(ctx, key, func(ctx context.Context) (any, error) {
		if m.cfg.Leaser != nil {
			return m.fillShared(ctx, path, version, key, reqDepth)
		}
		return m.fill(ctx, path, version, key, reqDepth)
	})
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !errors.Is(err, ErrVerification) {
			m.misses.put(key, err)
		}
		return nil, err
	}
	body, err = m.cfg.Store.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("reading %s from storage after fetching it: %w", key, err)
	}
	upstreamName, _ := src.(string)
	if upstreamName != "" && m.cfg.Guard != nil {
		// This process verified it (another replica's fill says "").
		m.cfg.Guard.Verified(key, body)
	}
	return &File{Body: body, Result: Miss, Upstream: upstreamName}, nil
}

// source returns the upstream for a module path. NoProxy patterns match
// without regard to case: "Corp.example.com/lib" is the private
// "corp.example.com/lib" to a code host, and asking a public proxy for it
// would leak the private name.
func (m *Mirror) source(path string) upstream.Source {
	if m.noProxy != "" && module.MatchPrefixPatterns(strings.ToLower(m.noProxy), strings.ToLower(path)) {
		return m.cfg.Direct
	}
	return m.upstream
}

// artifact returns the metrics name of a key's file kind.
func artifact(key string) string {
	switch {
	case strings.HasSuffix(key, ".zip"):
		return "zip"
	case strings.HasSuffix(key, ".mod"):
		return "mod"
	case strings.HasSuffix(key, ".info"):
		return "info"
	case strings.HasSuffix(key, "/@v/list"):
		return "list"
	case strings.HasSuffix(key, "/@latest"):
		return "latest"
	}
	return "other"
}
