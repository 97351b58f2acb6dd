package sumdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/singleflight"

	"github.com/modgate/modgate/internal/httperr"
	"github.com/modgate/modgate/internal/reqlog"
	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/upstream"
)

const (
	// defaultLatestTTL is how long a latest tree head (and a partial tile)
	// is served from memory before the upstream is asked again.
	defaultLatestTTL = 30 * time.Second
	// tileHeight is the only tile height served: the go command always uses 8.
	tileHeight = 8
	// immutableCacheControl is for lookups and full tiles, which never change.
	immutableCacheControl = "public, max-age=31536000, immutable"
	// staleWarning marks an answer served from memory after the upstream failed.
	staleWarning = `110 - "response is stale"`
	// maxPartialTiles bounds the partial tiles kept in memory.
	maxPartialTiles = 1024
)

// HandlerConfig configures a Handler.
type HandlerConfig struct {
	// DBs lists the names of the checksum databases served, as they appear
	// in /sumdb/{name}/ (see DB.Name). Invalid names are logged and ignored.
	DBs []string
	// Source fetches "sumdb/{name}/..." paths from upstream. Required.
	Source upstream.Source
	// Store keeps lookups and full tiles under "sumdb/{name}/...", shared
	// with the Verifier. Required.
	Store storage.Store
	// LatestTTL is how long the latest tree head and partial tiles are
	// served from memory (default 30s). It is also their max-age.
	LatestTTL time.Duration
	// Logger receives upstream failures (Warn), internal errors (Error) and
	// cache decisions (Debug). Nil discards.
	Logger *slog.Logger
	// Private lists module path patterns (GOPRIVATE syntax) of private
	// modules. Lookups of their names are answered 404 here and never
	// forwarded: asking the public database would leak the names.
	Private []string
	// RefreshWait bounds a request's wait for the latest tree head or a
	// partial tile when an older copy could answer it instead: after it,
	// the older copy is served (marked stale) and the fetch goes on in the
	// background. 0 waits for the fetch.
	RefreshWait time.Duration
}

// A Handler proxies the checksum database protocol for clients at
// /sumdb/{name}/{supported|latest|lookup/...|tile/...}, the paths the go
// command asks a GOPROXY before it goes to the database itself.
//
// Answers that never change (lookups and full tiles) are kept in the Store
// forever; the latest tree head and partial tiles are kept in memory for
// LatestTTL, and the latest tree head is served stale when the upstream
// fails. Concurrent misses for one file cause one upstream fetch.
// The Handler does not verify what it serves (the go command does, and so
// does the Verifier when it reads the shared cache); it only refuses
// answers that cannot be checksum database files.
//
// Malformed requests answer 400, unknown databases and paths 404, upstream
// failures 502 or 504, all with a one-line text/plain reason.
// A Handler is safe for concurrent use.
type Handler struct {
	dbs    []string // longest first, so "host/path" wins over "host"
	source upstream.Source
	store  storage.Store
	ttl    time.Duration
	log    *slog.Logger
	now    func() time.Time
	// private is HandlerConfig.Private joined for module.MatchPrefixPatterns.
	private string
	// refreshWait is HandlerConfig.RefreshWait (see do).
	refreshWait time.Duration

	flight singleflight.Group

	mu      sync.Mutex
	latest  map[string]cachedBody // by database name
	partial map[string]cachedBody // by upstream path

	supported supportedMarks // see filelayout.go
}

// cachedBody is an answer held in memory.
type cachedBody struct {
	data    []byte
	fetched time.Time // or, when stale, the time the upstream last failed
	stale   bool
}

// NewHandler returns a Handler for cfg.
func NewHandler(cfg HandlerConfig) *Handler {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		source:  cfg.Source,
		store:   cfg.Store,
		ttl:     cfg.LatestTTL,
		log:     logger.With("component", "sumdb"),
		now:     time.Now,
		private: strings.Join(cfg.Private, ","),
		latest:  make(map[string]cachedBody),
		partial: make(map[string]cachedBody),

		refreshWait: cfg.RefreshWait,
	}
	if h.ttl <= 0 {
		h.ttl = defaultLatestTTL
	}
	for _, name := range cfg.DBs {
		if err := checkDBName(name); err != nil {
			h.log.Error("not serving checksum database", "db", name, "err", err)
			continue
		}
		h.dbs = append(h.dbs, name)
	}
	slices.SortFunc(h.dbs, func(a, b string) int { return len(b) - len(a) })
	return h
}

// ServeHTTP serves one /sumdb/ request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.writeError(w, r, fmt.Errorf("method %s not allowed: use GET or HEAD: %w", r.Method, httperr.ErrMethod))
		return
	}
	if err := h.serve(w, r); err != nil {
		h.writeError(w, r, err)
	}
}

// serve routes the request; an error is answered by writeError.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	p, ok := strings.CutPrefix(r.URL.Path, "/sumdb/")
	if !ok {
		return notFound("not a checksum database path")
	}
	name, rest, ok := h.splitName(p)
	if !ok {
		return notFound("checksum database %q is not proxied here", guessName(p))
	}
	switch {
	case rest == "supported":
		// Served names are supported by definition; the upstream is not asked.
		cacheResult(r, "hit")
		h.writeBody(w, r, "text/plain; charset=utf-8", h.shortCacheControl(), nil)
		return nil
	case rest == "latest":
		return h.serveLatest(w, r, name)
	case strings.HasPrefix(rest, "lookup/"):
		return h.serveLookup(w, r, name, rest)
	case strings.HasPrefix(rest, "tile/"):
		return h.serveTile(w, r, name, rest)
	}
	return notFound("unknown checksum database path %q", truncate(rest))
}

// splitName splits "{name}/{rest}" for a served name.
func (h *Handler) splitName(p string) (name, rest string, ok bool) {
	for _, name := range h.dbs {
		if rest, ok := strings.CutPrefix(p, name+"/"); ok {
			return name, rest, true
		}
		if p == name {
			return name, "", true
		}
	}
	return "", "", false
}

// guessName returns the database name a request for an unserved database
// probably meant, for the error message.
func guessName(p string) string {
	end := -1
	for _, route := range []string{"/supported", "/latest", "/lookup/", "/tile/"} {
		if i := strings.Index(p, route); i >= 0 && (end < 0 || i < end) {
			end = i
		}
	}
	if end < 0 {
		p = strings.TrimSuffix(p, "/")
		if end = strings.Index(p, "/"); end < 0 {
			end = len(p)
		}
	}
	return truncate(p[:end])
}

// serveLatest serves the latest signed tree head.
func (h *Handler) serveLatest(w http.ResponseWriter, r *http.Request, name string) error {
	h.mu.Lock()
	cached, haveCached := h.latest[name]
	h.mu.Unlock()
	if haveCached && h.now().Sub(cached.fetched) < h.ttl {
		h.log.Debug("checksum database latest from memory", "db", name, "stale", cached.stale)
		cacheResult(r, "hit")
		if cached.stale {
			cacheResult(r, "stale")
			w.Header().Set("Warning", staleWarning)
		}
		h.writeBody(w, r, "text/plain; charset=utf-8", h.shortCacheControl(), cached.data)
		return nil
	}

	upPath := "sumdb/" + name + "/latest"
	canFallBack := haveCached || h.stored(r.Context(), fallbackKey(name, "latest"))
	v, err := h.do(upPath, canFallBack, func() (any, error) {
		data, err := h.fetch(r.Context(), upPath, checkNote)
		if err != nil {
			return nil, err
		}
		h.mu.Lock()
		h.latest[name] = cachedBody{data: data, fetched: h.now()}
		h.mu.Unlock()
		h.keep(r.Context(), fallbackKey(name, "latest"), data)
		return data, nil
	})
	if err != nil {
		if !haveCached && !isNotExist(err) {
			// After a restart with the upstream down: the last tree head
			// this server saw is still a valid (older) tree head.
			if data, serr := h.readStore(r.Context(), fallbackKey(name, "latest")); serr == nil {
				h.log.Warn("serving stored checksum database latest", "db", name, "err", err)
				cacheResult(r, "stale")
				w.Header().Set("Warning", staleWarning)
				h.writeBody(w, r, "text/plain; charset=utf-8", h.shortCacheControl(), data)
				return nil
			}
		}
		if !haveCached || isNotExist(err) {
			return err
		}
		h.log.Warn("serving stale checksum database latest", "db", name, "err", err)
		// Do not make every request of the next LatestTTL wait for the
		// failing upstream: serve the stale copy without asking until then.
		h.mu.Lock()
		if c := h.latest[name]; c.fetched.Equal(cached.fetched) { // not refreshed meanwhile
			h.latest[name] = cachedBody{data: cached.data, fetched: h.now(), stale: true}
		}
		h.mu.Unlock()
		cacheResult(r, "stale")
		w.Header().Set("Warning", staleWarning)
		h.writeBody(w, r, "text/plain; charset=utf-8", h.shortCacheControl(), cached.data)
		return nil
	}
	cacheResult(r, "miss")
	h.writeBody(w, r, "text/plain; charset=utf-8", h.shortCacheControl(), v.([]byte))
	return nil
}

// serveLookup serves lookup/{escaped path}@{escaped version}.
func (h *Handler) serveLookup(w http.ResponseWriter, r *http.Request, name, rest string) error {
	escPath, escVers, ok := strings.Cut(strings.TrimPrefix(rest, "lookup/"), "@")
	if !ok {
		return badRequest("malformed lookup path %q: want lookup/{module}@{version}", rest)
	}
	modPath, err := module.UnescapePath(escPath)
	if err != nil {
		return badRequest("malformed lookup path %q: %v", rest, err)
	}
	version, err := module.UnescapeVersion(escVers)
	if err != nil {
		return badRequest("malformed lookup path %q: %v", rest, err)
	}
	if err := module.Check(modPath, version); err != nil {
		return badRequest("malformed lookup path %q: %v", rest, err)
	}
	if module.CanonicalVersion(version) != version {
		return badRequest("malformed lookup path %q: version %q is not canonical (want %q)", rest, version, module.CanonicalVersion(version))
	}
	// Unescaping accepts only the canonical escaping, so rest is already the
	// one key for this module version; check anyway, the key is shared.
	if e1, _ := module.EscapePath(modPath); e1 != escPath {
		return badRequest("malformed lookup path %q: module path is not canonically escaped", rest)
	}
	if e2, _ := module.EscapeVersion(version); e2 != escVers {
		return badRequest("malformed lookup path %q: version is not canonically escaped", rest)
	}
	// In any case: a case variant of a private path leaks the name too.
	if h.private != "" && module.MatchPrefixPatterns(strings.ToLower(h.private), strings.ToLower(modPath)) {
		return notFound(
			"%s is a private module: it is not in the public checksum database, and modgate does not ask it (the name would leak). Set GONOSUMDB=%s on clients", modPath, h.private)
	}
	data, err := h.storedOrFetched(r.Context(), "sumdb/"+name+"/"+rest, checkLookup)
	if err != nil {
		return err
	}
	h.writeBody(w, r, "text/plain; charset=utf-8", immutableCacheControl, data)
	return nil
}

// serveTile serves tile/{H}/{L}/{NNN}[.p/{W}] and tile/{H}/data/{NNN}[.p/{W}].
func (h *Handler) serveTile(w http.ResponseWriter, r *http.Request, name, rest string) error {
	t, err := tlog.ParseTilePath(rest)
	if err != nil {
		return badRequest("%v", err)
	}
	if t.H != tileHeight {
		return notFound("tile height %d not served: the go command uses %d", t.H, tileHeight)
	}
	upPath := "sumdb/" + name + "/" + rest
	check := func(data []byte) error { return checkTile(t, data) }
	if t.W == 1<<t.H {
		data, err := h.storedOrFetched(r.Context(), upPath, check)
		if err != nil {
			return err
		}
		h.writeBody(w, r, "application/octet-stream", immutableCacheControl, data)
		return nil
	}

	// A tile at a given width never changes (it is the first W hashes of
	// that tile, whatever the tree grows to). One stored under its
	// protocol path, by the Verifier or by `modgate import`, answers
	// without the upstream, which an air-gapped site does not have.
	if data, err := h.readStore(r.Context(), upPath); err == nil && check(data) == nil {
		h.writeBody(w, r, "application/octet-stream", immutableCacheControl, data)
		return nil
	}
	data, err := h.partialTile(r.Context(), upPath, check, h.hasPartialFallback(r.Context(), name, t))
	if err != nil {
		fallback, ok := h.partialFallback(r.Context(), name, t, err)
		if !ok {
			return err
		}
		cacheResult(r, "stale")
		w.Header().Set("Warning", staleWarning)
		data = fallback
	} else {
		h.keepWidest(r.Context(), name, t, data)
	}
	h.writeBody(w, r, "application/octet-stream", h.shortCacheControl(), data)
	return nil
}

// fallbackKey is where the Handler keeps its last good copy of a mutable
// answer, for serving while every upstream fails. The "fallback/" prefix is
// no checksum database path, so it never collides with a proxied file.
func fallbackKey(name, rest string) string {
	return "sumdb/" + name + "/fallback/" + rest
}

// keep stores a fallback copy; failing to is only worth a warning.
func (h *Handler) keep(ctx context.Context, key string, data []byte) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	if err := h.store.Put(ctx, key, bytes.NewReader(data)); err != nil {
		h.log.Warn("storing checksum database fallback copy", "key", key, "err", err)
	}
}

// keepWidest keeps the widest partial hash tile seen for each tile. A hash
// tile of width W is exactly the first W hashes of any wider version of the
// same tile, so one copy per tile answers every narrower request offline,
// while storing every width would grow without bound as the log grows.
// Data tiles have no such prefix property (and the go command does not
// read them); they get no fallback.
func (h *Handler) keepWidest(ctx context.Context, name string, t tlog.Tile, data []byte) {
	if t.L < 0 {
		return
	}
	key := fallbackKey(name, widestPath(t))
	if old, err := h.readStore(ctx, key); err == nil && len(old) >= len(data) {
		return
	}
	h.keep(ctx, key, data)
}

// widestPath names the fallback copy of t's widest partial version.
func widestPath(t tlog.Tile) string {
	full := t
	full.W = 1 << t.H
	return "widest/" + full.Path()
}

// partialFallback answers a partial hash tile from stored data when the
// upstream failed (not when it said the tile does not exist): the full
// tile if stored, else the widest partial copy if wide enough.
func (h *Handler) partialFallback(ctx context.Context, name string, t tlog.Tile, cause error) ([]byte, bool) {
	if t.L < 0 || isNotExist(cause) {
		return nil, false
	}
	want := t.W * tlog.HashSize
	full := t
	full.W = 1 << t.H
	for _, key := range []string{"sumdb/" + name + "/" + full.Path(), fallbackKey(name, widestPath(t))} {
		if data, err := h.readStore(ctx, key); err == nil && len(data) >= want {
			h.log.Warn("serving checksum database tile from stored copy", "db", name, "tile", t.Path(), "err", cause)
			return data[:want], true
		}
	}
	return nil, false
}

// partialTile returns a partial tile from memory or from upstream. When
// canFallBack says a stored copy could answer instead, it waits for the
// upstream at most RefreshWait (see do).
func (h *Handler) partialTile(ctx context.Context, upPath string, check func([]byte) error, canFallBack bool) ([]byte, error) {
	now := h.now()
	h.mu.Lock()
	cached, ok := h.partial[upPath]
	h.mu.Unlock()
	if ok && now.Sub(cached.fetched) < h.ttl {
		h.log.Debug("checksum database partial tile from memory", "path", upPath)
		setCache(ctx, "hit")
		return cached.data, nil
	}
	v, err := h.do(upPath, canFallBack, func() (any, error) {
		data, err := h.fetch(ctx, upPath, check)
		if err != nil {
			return nil, err
		}
		now := h.now()
		h.mu.Lock()
		defer h.mu.Unlock()
		for k, c := range h.partial {
			if now.Sub(c.fetched) >= h.ttl {
				delete(h.partial, k)
			}
		}
		if len(h.partial) < maxPartialTiles {
			h.partial[upPath] = cachedBody{data: data, fetched: now}
		}
		return data, nil
	})
	if err != nil {
		return nil, err
	}
	setCache(ctx, "miss")
	return v.([]byte), nil
}

// storedOrFetched returns the immutable file under key from the Store, or
// fetches it from upstream (key is also the upstream path), checks it and
// stores it. Not-found answers are not stored.
func (h *Handler) storedOrFetched(ctx context.Context, key string, check func([]byte) error) ([]byte, error) {
	data, err := h.readStore(ctx, key)
	if err == nil {
		h.log.Debug("checksum database file from store", "key", key)
		setCache(ctx, "hit")
		return data, nil
	}
	if !isNotExist(err) {
		return nil, err
	}
	v, err, _ := h.flight.Do(key, func() (any, error) {
		data, err := h.fetch(ctx, key, check)
		if err != nil {
			return nil, err
		}
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		defer cancel()
		if name, _, ok := strings.Cut(strings.TrimPrefix(key, "sumdb/"), "/lookup/"); ok {
			h.supported.mark(pctx, h.store, name, h.log)
		} else if name, _, ok := strings.Cut(strings.TrimPrefix(key, "sumdb/"), "/tile/"); ok {
			h.supported.mark(pctx, h.store, name, h.log)
		}
		if err := h.store.Put(pctx, key, bytes.NewReader(data)); err != nil {
			// The answer is still good; the next request fetches it again.
			h.log.Warn("storing checksum database file", "key", key, "err", err)
		}
		return data, nil
	})
	if err != nil {
		return nil, err
	}
	setCache(ctx, "miss")
	return v.([]byte), nil
}

// readStore reads key from the Store.
func (h *Handler) readStore(ctx context.Context, key string) ([]byte, error) {
	rc, err := h.store.Get(ctx, key)
	if err != nil {
		if isNotExist(err) {
			return nil, err
		}
		return nil, fmt.Errorf("reading %s from storage: %w", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s from storage: %w", key, err)
	}
	if len(data) > maxBody {
		return nil, fmt.Errorf("reading %s from storage: larger than %d bytes", key, maxBody)
	}
	return data, nil
}

// fetch fetches upPath from upstream and checks the answer. The fetch is
// shared between requests, so it is bounded by fetchTimeout rather than by
// the request that started it.
func (h *Handler) fetch(ctx context.Context, upPath string, check func([]byte) error) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	data, err := fetchAll(ctx, h.source, upPath)
	if err != nil {
		return nil, err
	}
	if err := check(data); err != nil {
		return nil, fmt.Errorf("%s from upstream %s: %w: %v", upPath, h.source, upstream.ErrUnavailable, err)
	}
	return data, nil
}

// checkNote reports whether data is a well-formed signed note (whose
// signature the Handler cannot check: it holds no keys).
func checkNote(data []byte) error {
	_, err := note.Open(data, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		return nil
	}
	if err == nil {
		return errors.New("note verified by no key") // unreachable with no verifiers
	}
	return fmt.Errorf("not a signed tree head: %w", err)
}

// checkLookup reports whether data is a well-formed lookup answer: a record
// followed by a signed tree head.
func checkLookup(data []byte) error {
	_, _, treeMsg, err := tlog.ParseRecord(data)
	if err != nil {
		return fmt.Errorf("not a lookup record: %w", err)
	}
	return checkNote(treeMsg)
}

// checkTile reports whether data has the size tile t must have.
func checkTile(t tlog.Tile, data []byte) error {
	if t.L < 0 {
		if len(data) == 0 {
			return errors.New("empty data tile")
		}
		return nil
	}
	if len(data) != t.W*tlog.HashSize {
		return fmt.Errorf("tile has %d bytes, want %d", len(data), t.W*tlog.HashSize)
	}
	return nil
}

// shortCacheControl is for answers that change: latest and partial tiles.
func (h *Handler) shortCacheControl() string {
	return "public, max-age=" + strconv.Itoa(max(1, int(h.ttl/time.Second)))
}

// writeBody writes a 200 answer.
func (h *Handler) writeBody(w http.ResponseWriter, r *http.Request, contentType, cacheControl string, data []byte) {
	hdr := w.Header()
	hdr.Set("Content-Type", contentType)
	hdr.Set("Cache-Control", cacheControl)
	hdr.Set("Content-Length", strconv.Itoa(len(data)))
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(data)
	}
}

// An answer is a refusal decided by the Handler itself: its text is the
// client's, its class (fs.ErrNotExist, httperr.ErrBadRequest) gives the
// status.
type answer struct {
	msg   string
	class error
}

func (e *answer) Error() string { return e.msg }
func (e *answer) Unwrap() error { return e.class }

// notFound returns an answer matching fs.ErrNotExist (404).
func notFound(format string, args ...any) error {
	return &answer{fmt.Sprintf(format, args...), fs.ErrNotExist}
}

// badRequest returns an answer matching httperr.ErrBadRequest (400).
func badRequest(format string, args ...any) error {
	return &answer{fmt.Sprintf(format, args...), httperr.ErrBadRequest}
}

// cacheResult records where the answer came from (hit, miss, stale) for
// the access log and modgate_requests_total.
func cacheResult(r *http.Request, result string) { setCache(r.Context(), result) }

func setCache(ctx context.Context, result string) { reqlog.From(ctx).Cache = result }

// writeError answers err through httperr, the one error writer of every
// route. The error reaches the request's access-log line there; it is not
// logged again here.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	httperr.Write(w, r, err)
}

// truncate shortens s for an error message.
func truncate(s string) string {
	const limit = 500
	if len(s) <= limit {
		return s
	}
	i := limit
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}
