package vulndb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/modgate/modgate/internal/upstream"
)

// DefaultInterval is the time between syncs when SyncConfig.Interval is 0.
const DefaultInterval = time.Hour

const (
	// syncTimeout bounds one sync started by Run.
	syncTimeout = 10 * time.Minute
	// fetchConcurrency is how many entries a sync fetches at once.
	fetchConcurrency = 8
	// defaultClientTimeout bounds each request of the default HTTP client.
	defaultClientTimeout = 2 * time.Minute
)

// SyncConfig configures a Syncer. Exactly one of URL and Source is set.
type SyncConfig struct {
	// URL is the root of a database in the served layout: http(s)://...
	// or file:///dir. Syncs fetch index/db.json, and when its "modified"
	// changed, index/modules.json and the entries whose "modified" changed.
	// A file:///dir without index/db.json is read like a Source: a flat
	// directory of OSV entries.
	URL string
	// Source is a local directory in the served layout or a flat directory
	// of OSV entries (see Open). Each sync reads it whole and keeps the
	// copy when anything differs.
	Source string
	// Dir is where modgate keeps its copy (see disk.go); required. It is
	// created if needed and must not be shared with another Syncer.
	Dir string
	// Interval is the time between syncs in Run (default DefaultInterval).
	Interval time.Duration
	// Client makes the HTTP requests (default: a client with a 2 minute
	// timeout per request). Whichever client is used, redirects are
	// followed only within the URL's host and port or to RedirectHosts
	// (see upstream.RedirectPolicy), so a database server cannot point the
	// sync at addresses inside modgate's network.
	Client *http.Client
	// RedirectHosts lists other hosts a redirect may lead to ("host",
	// "host:port", "*.domain"), as upstream.redirect_hosts.
	RedirectHosts []string
	// Logger receives sync results (default: discard).
	Logger *slog.Logger
	// Shared, when set, makes replicas sync one at a time and share the
	// result (see SharedCopy).
	Shared SharedCopy
}

// Status describes a Syncer's copy and its last sync, for readiness checks
// and metrics.
type Status struct {
	// Loaded reports whether a copy is in memory (read from Dir at start or
	// synced since). While it is false Affecting reports nothing: callers
	// that block vulnerable versions should treat that as not ready.
	Loaded   bool
	Modified time.Time // the copy's index/db.json "modified"
	Entries  int       // entries in the copy, withdrawn ones included
	// LastAttempt and LastSuccess are the start of the latest sync and the
	// end of the latest successful one; zero before the first.
	LastAttempt time.Time
	LastSuccess time.Time
	// LastError is the error of the latest sync or of loading Dir at start,
	// nil after a successful sync.
	LastError error
}

// A Syncer keeps a vulnerability database current on disk and in memory,
// answers Affecting from it and re-serves it (Handler). A failed or partial
// sync changes nothing: the previous copy keeps answering, and after a
// restart the copy in Dir is used without any network access. A Syncer is
// safe for concurrent use.
type Syncer struct {
	dir      string
	source   string // local Source directory, or ""
	remote   remote // nil when source is set
	what     string // the redacted URL or the source directory, for messages
	interval time.Duration
	log      *slog.Logger

	syncMu  sync.Mutex // one sync at a time
	cur     atomic.Pointer[snapshot]
	changed bool // the last sync installed a new copy; syncMu held

	shared    SharedCopy // nil: this process alone keeps the copy (shared.go)
	sharedVer int64      // the shared copy's version in use; syncMu held

	statusMu sync.Mutex
	status   Status // only the LastAttempt, LastSuccess and LastError fields
}

// A snapshot is one loaded generation of the on-disk copy.
type snapshot struct {
	db  *DB
	dir string // the generation directory
	// indexETags maps an index file name ("index/db.json") to its ETag.
	indexETags map[string]string
}

// NewSyncer checks cfg, creates cfg.Dir if needed and loads the copy already
// there, if any. It does not sync: call Sync or Run. A copy in Dir that
// cannot be loaded is not an error (the next sync replaces it); Status
// reports it.
func NewSyncer(cfg SyncConfig) (*Syncer, error) {
	s := &Syncer{
		dir:      cfg.Dir,
		interval: cfg.Interval,
		log:      cfg.Logger,
		shared:   cfg.Shared,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "vulndb")
	if s.interval == 0 {
		s.interval = DefaultInterval
	}
	if s.interval < 0 {
		return nil, fmt.Errorf("vulnerability database: interval %v is negative", cfg.Interval)
	}
	if cfg.Dir == "" {
		return nil, errors.New("vulnerability database: no directory for the local copy")
	}
	switch {
	case cfg.URL != "" && cfg.Source != "":
		return nil, errors.New("vulnerability database: both a URL and a source directory are set (want one)")
	case cfg.URL != "":
		u, err := url.Parse(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("vulnerability database: %w", err)
		}
		client := &http.Client{Timeout: defaultClientTimeout}
		if cfg.Client != nil {
			c := *cfg.Client // a copy: the caller's client keeps its own policy
			client = &c
		}
		if client.CheckRedirect, err = upstream.RedirectPolicy(cfg.RedirectHosts); err != nil {
			return nil, fmt.Errorf("vulnerability database: redirect hosts: %w", err)
		}
		if s.remote, err = newRemote(u, client); err != nil {
			return nil, fmt.Errorf("vulnerability database: %w", err)
		}
		s.what = u.Redacted()
	case cfg.Source != "":
		s.source = cfg.Source
		s.what = cfg.Source
	default:
		return nil, errors.New("vulnerability database: neither a URL nor a source directory is set")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("vulnerability database: %w", err)
	}

	gen, err := currentGeneration(cfg.Dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// First start: nothing to load.
	case err != nil:
		s.status.LastError = fmt.Errorf("loading local copy: %w", err)
	default:
		snap, err := loadSnapshot(gen)
		if err != nil {
			s.status.LastError = fmt.Errorf("loading local copy: %w", err)
			break
		}
		s.cur.Store(snap)
	}
	if s.status.LastError != nil {
		s.log.Error("vulnerability database copy unusable until the next sync", "dir", cfg.Dir, "err", s.status.LastError)
	}
	if err := removeGenerations(cfg.Dir, gen); err != nil {
		s.log.Warn("removing old vulnerability database copies", "dir", cfg.Dir, "err", err)
	}
	return s, nil
}

// loadSnapshot loads a generation written by writeGeneration.
func loadSnapshot(gen string) (*snapshot, error) {
	db, err := Open(gen)
	if err != nil {
		return nil, err
	}
	index := make(map[string][]byte)
	for _, name := range []string{dbEndpoint, modulesEndpoint, vulnsEndpoint} {
		data, err := readFileLimit(filepath.Join(gen, filepath.FromSlash(name)+".json"), maxIndexSize)
		if err != nil {
			return nil, err
		}
		index[name] = data
	}
	return newSnapshot(db, gen, index), nil
}

func newSnapshot(db *DB, dir string, index map[string][]byte) *snapshot {
	s := &snapshot{db: db, dir: dir, indexETags: make(map[string]string, len(index))}
	for name, data := range index {
		sum := sha256.Sum256(data)
		s.indexETags[name+".json"] = `"` + hex.EncodeToString(sum[:16]) + `"`
	}
	return s
}

// Affecting answers DB.Affecting from the current copy; nil when there is
// none yet (see Status.Loaded).
func (s *Syncer) Affecting(module, version string) []Vuln {
	return s.DB().Affecting(module, version)
}

// DB returns the current copy, nil when there is none yet. The DB is
// immutable; a later sync replaces it rather than changing it.
func (s *Syncer) DB() *DB {
	if snap := s.cur.Load(); snap != nil {
		return snap.db
	}
	return nil
}

// Status returns the state of the copy and of the latest sync.
func (s *Syncer) Status() Status {
	s.statusMu.Lock()
	st := s.status
	s.statusMu.Unlock()
	if snap := s.cur.Load(); snap != nil {
		st.Loaded = true
		st.Modified = snap.db.modified
		st.Entries = len(snap.db.entries)
	}
	return st
}

// Run syncs now and then every interval until ctx is done. Failures are
// logged and leave the current copy in use.
func (s *Syncer) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, syncTimeout)
		err := s.Sync(sctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			if s.cur.Load() == nil {
				s.log.Error("vulnerability database sync failed and there is no local copy", "source", s.what, "err", err)
			} else {
				s.log.Warn("vulnerability database sync failed, keeping the local copy", "source", s.what, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sync brings the copy up to date now. On error the previous copy (on disk
// and in memory) is unchanged. Concurrent calls run one after the other.
func (s *Syncer) Sync(ctx context.Context) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	start := time.Now()
	s.statusMu.Lock()
	s.status.LastAttempt = start
	s.statusMu.Unlock()

	var err error
	if s.shared != nil {
		err = s.syncShared(ctx, start)
	} else {
		err = s.sync(ctx, start)
	}

	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	if err != nil {
		err = fmt.Errorf("syncing vulnerability database from %s: %w", s.what, err)
		s.status.LastError = err
		return err
	}
	s.status.LastError = nil
	s.status.LastSuccess = time.Now()
	return nil
}

func (s *Syncer) sync(ctx context.Context, start time.Time) error {
	old := s.cur.Load()
	var (
		db      *DB
		fresh   map[string][]byte
		changed bool
		err     error
	)
	if dir, ok := s.localDir(); ok {
		db, fresh, changed, err = s.readSource(ctx, old, dir)
	} else {
		db, fresh, changed, err = s.fetchRemote(ctx, old)
	}
	if err != nil {
		return err
	}
	if !changed {
		s.log.Debug("vulnerability database unchanged", "source", s.what, "modified", old.db.modified)
		return nil
	}
	if err := s.install(ctx, old, db, fresh, start); err != nil {
		return err
	}
	s.changed = true
	return nil
}

// install writes db (with the entries in fresh, the others linked from
// old) as a new generation and puts it in use.
func (s *Syncer) install(ctx context.Context, old *snapshot, db *DB, fresh map[string][]byte, start time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var prev string
	if old != nil {
		prev = old.dir
	}
	gen, index, err := writeGeneration(s.dir, db, fresh, prev)
	if err != nil {
		return err
	}
	if err := activate(s.dir, gen); err != nil {
		os.RemoveAll(gen)
		return fmt.Errorf("switching to the new copy: %w", err)
	}
	s.cur.Store(newSnapshot(db, gen, index))
	if err := removeGenerations(s.dir, gen, prev); err != nil {
		s.log.Warn("removing old vulnerability database copies", "dir", s.dir, "err", err)
	}
	s.log.Info("vulnerability database updated", "source", s.what, "modified", db.modified,
		"entries", len(db.entries), "fetched", len(fresh), "duration", time.Since(start))
	return nil
}

// fetchRemote reads the remote index and the entries that differ from old
// (nil for the first sync). It returns the new DB and the bytes of every
// entry it fetched, or changed == false when the remote's index/db.json has
// the "modified" of old.
func (s *Syncer) fetchRemote(ctx context.Context, old *snapshot) (db *DB, fresh map[string][]byte, changed bool, err error) {
	data, err := s.remote.fetch(ctx, dbEndpoint+".json", maxDBMetaSize)
	if err != nil {
		return nil, nil, false, err
	}
	var meta dbMeta
	if err := json.Unmarshal(data, &meta); err != nil {
		return nil, nil, false, fmt.Errorf("%s.json: %w: %v", dbEndpoint, ErrCorrupt, err)
	}
	if old != nil && old.db.modified.Equal(meta.Modified) {
		return nil, nil, false, nil
	}

	data, err = s.remote.fetch(ctx, modulesEndpoint+".json", maxIndexSize)
	if err != nil {
		return nil, nil, false, err
	}
	var modules []moduleMeta
	if err := json.Unmarshal(data, &modules); err != nil {
		return nil, nil, false, fmt.Errorf("%s.json: %w: %v", modulesEndpoint, ErrCorrupt, err)
	}
	want := make(map[string]time.Time) // id -> modified
	for _, m := range modules {
		for _, v := range m.Vulns {
			if !validID(v.ID) {
				return nil, nil, false, fmt.Errorf("%s.json: module %q: %w: entry id %q", modulesEndpoint, m.Path, ErrCorrupt, v.ID)
			}
			if t, ok := want[v.ID]; !ok || v.Modified.After(t) {
				want[v.ID] = v.Modified
			}
		}
	}
	if len(want) == 0 {
		// Refuse rather than replace a database with nothing, which would
		// silently stop every vulnerability rule.
		return nil, nil, false, fmt.Errorf("%s.json: %w: lists no entries", modulesEndpoint, ErrCorrupt)
	}

	entries := make([]*entry, 0, len(want))
	var todo []string
	for id, modified := range want {
		if old != nil {
			if e := old.db.byID[id]; e != nil && e.modified.Equal(modified) {
				entries = append(entries, e)
				continue
			}
		}
		todo = append(todo, id)
	}
	fetched := make([]*entry, len(todo))
	raw := make([][]byte, len(todo))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(fetchConcurrency)
	for i, id := range todo {
		g.Go(func() error {
			data, err := s.remote.fetch(gctx, "ID/"+id+".json", maxEntrySize)
			if err != nil {
				return err
			}
			e, err := parseEntry(data, id)
			if err != nil {
				return err
			}
			fetched[i], raw[i] = e, data
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, false, err
	}
	fresh = make(map[string][]byte, len(todo))
	for i, e := range fetched {
		entries = append(entries, e)
		fresh[e.id] = raw[i]
	}
	return newDB(meta.Modified, entries), fresh, true, nil
}

// localDir returns the directory a sync reads whole (readSource): the
// Source directory, or the directory of a file:// URL that is a flat
// directory of OSV entries (it has no index/db.json), which fetchRemote
// cannot read but a Source of the same directory can. A file:// URL in
// the served layout is fetched like any URL: only changed entries.
func (s *Syncer) localDir() (string, bool) {
	if s.remote == nil {
		return s.source, true
	}
	dir, ok := s.remote.(fileRemote)
	if !ok {
		return "", false
	}
	_, err := os.Stat(filepath.Join(string(dir), filepath.FromSlash(dbEndpoint)+".json"))
	return string(dir), errors.Is(err, fs.ErrNotExist)
}

// readSource loads the local directory dir. fresh holds the bytes of the
// entries that differ from old; changed is false when nothing differs.
func (s *Syncer) readSource(ctx context.Context, old *snapshot, dir string) (db *DB, fresh map[string][]byte, changed bool, err error) {
	db, raw, err := load(dir, true)
	if err != nil {
		return nil, nil, false, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, false, err
	}
	if old == nil {
		return db, raw, true, nil
	}
	changed = !old.db.modified.Equal(db.modified) || len(old.db.entries) != len(db.entries)
	for id := range raw {
		if e := old.db.byID[id]; e != nil && e.etag == db.byID[id].etag {
			delete(raw, id) // same bytes: link from the current copy
			continue
		}
		changed = true
	}
	return db, raw, changed, nil
}
