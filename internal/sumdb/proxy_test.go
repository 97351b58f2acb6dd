package sumdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/upstream"
)

// serve runs one request through h.
func serve(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, "/", nil)
	req.URL.Path = path
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// handlerEnv is a Handler in front of a test database.
type handlerEnv struct {
	db     *testDB
	source *httpSource
	store  storage.Store
	clock  *fakeClock
	h      *Handler
}

// newHandlerEnv starts a database whose first record (example.com/m@v1.0.0)
// is in full tile 8/0/000 and whose last tile is partial: 8/0/001.p/45.
func newHandlerEnv(t *testing.T) *handlerEnv {
	t.Helper()
	skey, vkey := newTestKey(t)
	db := newTestDB(t, skey, vkey, testModules(t), append([]string{"example.com/m@v1.0.0"}, fillers(300)...)...)
	e := &handlerEnv{db: db, source: newHTTPSource(db.url), store: storage.NewMemory(), clock: &fakeClock{now: time.Unix(1e9, 0)}}
	e.h = NewHandler(HandlerConfig{
		DBs:       []string{testDBName, "other.test/db"},
		Source:    e.source,
		Store:     e.store,
		LatestTTL: time.Minute,
	})
	e.h.now = e.clock.Now
	return e
}

func TestHandlerRoutes(t *testing.T) {
	e := newHandlerEnv(t)
	const (
		text   = "text/plain; charset=utf-8"
		octets = "application/octet-stream"
		short  = "public, max-age=60"
	)
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantType   string
		wantCache  string
		wantBody   string // substring
	}{
		{name: "supported", path: "/sumdb/sum.test/supported", wantStatus: 200, wantType: text, wantCache: short},
		{name: "supported with slash in name", path: "/sumdb/other.test/db/supported", wantStatus: 200, wantType: text},
		{name: "unknown database", path: "/sumdb/other.test/supported", wantStatus: 404, wantType: text,
			wantBody: `checksum database "other.test" is not proxied here`},
		{name: "unknown database lookup", path: "/sumdb/evil.test/lookup/example.com/m@v1.0.0", wantStatus: 404,
			wantBody: `checksum database "evil.test" is not proxied here`},
		{name: "latest", path: "/sumdb/sum.test/latest", wantStatus: 200, wantType: text, wantCache: short,
			wantBody: "go.sum database tree\n301\n"},
		{name: "lookup", path: "/sumdb/sum.test/lookup/example.com/m@v1.0.0", wantStatus: 200, wantType: text,
			wantCache: immutableCacheControl, wantBody: "example.com/m v1.0.0/go.mod h1:"},
		{name: "lookup escaped", path: "/sumdb/sum.test/lookup/example.com/!upper@v1.0.0", wantStatus: 200,
			wantBody: "example.com/Upper v1.0.0 h1:"},
		{name: "lookup incompatible", path: "/sumdb/sum.test/lookup/example.com/legacy@v2.0.0+incompatible", wantStatus: 200,
			wantBody: "example.com/legacy v2.0.0+incompatible h1:"},
		{name: "lookup unknown version", path: "/sumdb/sum.test/lookup/example.com/m@v1.9.9", wantStatus: 404, wantType: text,
			wantBody: "lookup example.com/m@v1.9.9: file does not exist"},
		{name: "full tile", path: "/sumdb/sum.test/tile/8/0/000", wantStatus: 200, wantType: octets, wantCache: immutableCacheControl},
		{name: "partial tile", path: "/sumdb/sum.test/tile/8/0/001.p/45", wantStatus: 200, wantType: octets, wantCache: short},
		{name: "data tile", path: "/sumdb/sum.test/tile/8/data/000", wantStatus: 200, wantType: octets,
			wantBody: "example.com/m v1.0.0 h1:"},
		{name: "head latest", method: "HEAD", path: "/sumdb/sum.test/latest", wantStatus: 200, wantType: text},

		{name: "lookup without version", path: "/sumdb/sum.test/lookup/example.com/m", wantStatus: 400, wantType: text,
			wantBody: "malformed lookup path"},
		{name: "lookup upper case", path: "/sumdb/sum.test/lookup/example.com/Upper@v1.0.0", wantStatus: 400},
		{name: "lookup short version", path: "/sumdb/sum.test/lookup/example.com/m@v1.0", wantStatus: 400,
			wantBody: "not canonical"},
		{name: "lookup branch", path: "/sumdb/sum.test/lookup/example.com/m@master", wantStatus: 400},
		{name: "lookup wrong major", path: "/sumdb/sum.test/lookup/example.com/m/v2@v1.0.0", wantStatus: 400},
		{name: "lookup empty path", path: "/sumdb/sum.test/lookup/@v1.0.0", wantStatus: 400},
		{name: "lookup dot dot", path: "/sumdb/sum.test/lookup/../../etc@v1.0.0", wantStatus: 400},
		{name: "tile unpadded", path: "/sumdb/sum.test/tile/8/0/1", wantStatus: 400, wantBody: "malformed tile path"},
		{name: "tile zero width", path: "/sumdb/sum.test/tile/8/0/000.p/0", wantStatus: 400},
		{name: "tile full width as partial", path: "/sumdb/sum.test/tile/8/0/000.p/256", wantStatus: 400},
		{name: "tile garbage", path: "/sumdb/sum.test/tile/x", wantStatus: 400},
		{name: "tile other height", path: "/sumdb/sum.test/tile/4/0/000", wantStatus: 404, wantBody: "tile height 4 not served"},
		{name: "unknown route", path: "/sumdb/sum.test/foo", wantStatus: 404, wantBody: "unknown checksum database path"},
		{name: "name only", path: "/sumdb/sum.test", wantStatus: 404},
		{name: "not sumdb", path: "/example.com/m/@v/list", wantStatus: 404},
		{name: "post", method: "POST", path: "/sumdb/sum.test/latest", wantStatus: 405, wantType: text},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			rec := serve(t, e.h, method, tt.path)
			body := rec.Body.String()
			if rec.Code != tt.wantStatus {
				t.Fatalf("%s %s = %d %q; want %d", method, tt.path, rec.Code, body, tt.wantStatus)
			}
			if got := rec.Header().Get("Content-Type"); tt.wantType != "" && got != tt.wantType {
				t.Errorf("%s %s: Content-Type = %q; want %q", method, tt.path, got, tt.wantType)
			}
			if got := rec.Header().Get("Cache-Control"); tt.wantCache != "" && got != tt.wantCache {
				t.Errorf("%s %s: Cache-Control = %q; want %q", method, tt.path, got, tt.wantCache)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("%s %s: body = %q; want it to contain %q", method, tt.path, body, tt.wantBody)
			}
			if rec.Code != 200 && strings.Count(body, "\n") != 1 {
				t.Errorf("%s %s: error body %q is not one line", method, tt.path, body)
			}
			if method == "HEAD" && (body != "" || rec.Header().Get("Content-Length") == "0") {
				t.Errorf("HEAD %s: body %q, Content-Length %q; want no body and the GET length", tt.path, body, rec.Header().Get("Content-Length"))
			}
			if rec.Code == 405 && rec.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("405 Allow = %q; want %q", rec.Header().Get("Allow"), "GET, HEAD")
			}
		})
	}
	if n := e.db.count("/sumdb/sum.test/supported"); n != 0 {
		t.Errorf("supported was asked upstream %d times; want 0", n)
	}
}

func TestHandlerCachesImmutable(t *testing.T) {
	e := newHandlerEnv(t)
	tests := []struct {
		name   string
		path   string
		key    string
		stored bool
		want   int // upstream requests after two GETs
	}{
		{name: "full tile", path: "tile/8/0/000", key: "sumdb/sum.test/tile/8/0/000", stored: true, want: 1},
		{name: "data tile", path: "tile/8/data/000", key: "sumdb/sum.test/tile/8/data/000", stored: true, want: 1},
		{name: "lookup", path: "lookup/example.com/m@v1.1.0", key: "sumdb/sum.test/lookup/example.com/m@v1.1.0", stored: true, want: 1},
		{name: "not found lookup", path: "lookup/example.com/m@v1.9.0", key: "sumdb/sum.test/lookup/example.com/m@v1.9.0", stored: false, want: 2},
		{name: "partial tile", path: "tile/8/0/001.p/45", key: "sumdb/sum.test/tile/8/0/001.p/45", stored: false, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := serve(t, e.h, "GET", "/sumdb/sum.test/"+tt.path)
			second := serve(t, e.h, "GET", "/sumdb/sum.test/"+tt.path)
			if first.Code != second.Code || !bytes.Equal(first.Body.Bytes(), second.Body.Bytes()) {
				t.Errorf("GET twice: %d %q then %d %q; want the same answer", first.Code, first.Body, second.Code, second.Body)
			}
			if got := e.db.count("/sumdb/sum.test/" + tt.path); got != tt.want {
				t.Errorf("upstream requests after two GETs = %d; want %d", got, tt.want)
			}
			if got := storeHas(t, e.store, tt.key); got != tt.stored {
				t.Errorf("stored %s = %v; want %v", tt.key, got, tt.stored)
			}
		})
	}

	// A partial tile is asked again once LatestTTL has passed.
	e.clock.Advance(time.Minute)
	serve(t, e.h, "GET", "/sumdb/sum.test/tile/8/0/001.p/45")
	if got := e.db.count("/sumdb/sum.test/tile/8/0/001.p/45"); got != 2 {
		t.Errorf("partial tile requests after the TTL = %d; want 2", got)
	}
}

func TestHandlerLatest(t *testing.T) {
	e := newHandlerEnv(t)
	get := func() *httptest.ResponseRecorder { return serve(t, e.h, "GET", "/sumdb/sum.test/latest") }

	first := get()
	if first.Code != 200 {
		t.Fatalf("GET latest = %d %q", first.Code, first.Body)
	}
	get()
	if n := e.db.count("/sumdb/sum.test/latest"); n != 1 {
		t.Errorf("upstream requests within the TTL = %d; want 1", n)
	}
	e.clock.Advance(time.Minute)
	get()
	if n := e.db.count("/sumdb/sum.test/latest"); n != 2 {
		t.Errorf("upstream requests after the TTL = %d; want 2", n)
	}

	// Upstream down: the cached copy is served stale, and the upstream is
	// not asked again until the TTL has passed.
	e.source.setFail(upstream.ErrUnavailable)
	e.clock.Advance(time.Minute)
	fetches := e.source.fetches.Load()
	for i := range 2 {
		rec := get()
		if rec.Code != 200 || rec.Body.String() != first.Body.String() {
			t.Fatalf("GET latest #%d with upstream down = %d %q; want 200 and the cached copy", i, rec.Code, rec.Body)
		}
		if got := rec.Header().Get("Warning"); got != `110 - "response is stale"` {
			t.Errorf("Warning = %q; want the stale warning", got)
		}
	}
	if got := e.source.fetches.Load() - fetches; got != 1 {
		t.Errorf("upstream attempts while down = %d; want 1", got)
	}

	// Back up: fresh again, no warning.
	e.source.setFail(nil)
	e.clock.Advance(time.Minute)
	if rec := get(); rec.Code != 200 || rec.Header().Get("Warning") != "" {
		t.Errorf("GET latest after recovery = %d, Warning %q; want 200 without warning", rec.Code, rec.Header().Get("Warning"))
	}
}

func TestHandlerUpstreamErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		body       []byte
		wantStatus int
		wantBody   string
		paths      []string // default: all of them
	}{
		{name: "unavailable", err: fmt.Errorf("fetching: %w: connection refused", upstream.ErrUnavailable), wantStatus: 502, wantBody: "connection refused"},
		{name: "timeout", err: fmt.Errorf("fetching: %w", upstream.ErrTimeout), wantStatus: 504, wantBody: "timed out"},
		{name: "deadline", err: context.DeadlineExceeded, wantStatus: 504},
		{name: "other error", err: errors.New("boom"), wantStatus: 502},
		{name: "not found", err: fmt.Errorf("no such thing: %w", fs.ErrNotExist), wantStatus: 404, wantBody: "no such thing"},
		{name: "garbage", body: []byte("<html>hello</html>"), wantStatus: 502},
		{name: "too large", body: make([]byte, maxBody+1), wantStatus: 502, wantBody: "larger than", paths: []string{"tile/8/0/000"}},
	}
	for _, tt := range tests {
		paths := tt.paths
		if paths == nil {
			paths = []string{"latest", "lookup/example.com/m@v1.0.0", "tile/8/0/000", "tile/8/0/000.p/3"}
		}
		for _, p := range paths {
			t.Run(tt.name+"/"+p, func(t *testing.T) {
				var calls atomic.Int64
				store := storage.NewMemory()
				h := NewHandler(HandlerConfig{DBs: []string{testDBName}, Store: store,
					Source: funcSource(func(context.Context, string) ([]byte, error) {
						calls.Add(1)
						return tt.body, tt.err
					})})
				rec := serve(t, h, "GET", "/sumdb/sum.test/"+p)
				if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.wantBody) {
					t.Errorf("GET %s = %d %q; want %d containing %q", p, rec.Code, rec.Body, tt.wantStatus, tt.wantBody)
				}
				if storeHas(t, store, "sumdb/sum.test/"+p) {
					t.Errorf("failed answer for %s was stored", p)
				}
				// Nothing was cached: the next request asks again.
				serve(t, h, "GET", "/sumdb/sum.test/"+p)
				if calls.Load() != 2 {
					t.Errorf("upstream calls for two failing GETs = %d; want 2", calls.Load())
				}
			})
		}
	}
}

// TestHandlerSingleFlight checks that concurrent misses cause one fetch.
func TestHandlerSingleFlight(t *testing.T) {
	e := newHandlerEnv(t)
	for _, p := range []string{"latest", "lookup/example.com/m@v1.0.0", "tile/8/0/000", "tile/8/0/001.p/45"} {
		t.Run(p, func(t *testing.T) {
			var calls atomic.Int64
			started := make(chan struct{})
			release := make(chan struct{})
			var once sync.Once
			src := funcSource(func(ctx context.Context, up string) ([]byte, error) {
				calls.Add(1)
				once.Do(func() { close(started) })
				<-release
				resp, err := e.source.Fetch(ctx, up)
				if err != nil {
					return nil, err
				}
				defer resp.Body.Close()
				return io.ReadAll(resp.Body)
			})
			h := NewHandler(HandlerConfig{DBs: []string{testDBName}, Source: src, Store: storage.NewMemory()})
			var wg sync.WaitGroup
			for range 10 {
				wg.Go(func() {
					if rec := serve(t, h, "GET", "/sumdb/sum.test/"+p); rec.Code != 200 {
						t.Errorf("GET %s = %d %q", p, rec.Code, rec.Body)
					}
				})
			}
			<-started
			// Let the others queue up behind the first; any that come later
			// are served from the cache, so the count does not depend on timing.
			time.Sleep(20 * time.Millisecond)
			close(release)
			wg.Wait()
			if n := calls.Load(); n != 1 {
				t.Errorf("upstream fetches for 10 concurrent GETs = %d; want 1", n)
			}
		})
	}
}

// TestHandlerServesVerifier checks that the Handler serves everything a
// sumdb.Client needs: a Verifier whose upstream is the Handler verifies.
func TestHandlerServesVerifier(t *testing.T) {
	e := newHandlerEnv(t)
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	v, err := NewVerifier(VerifierConfig{
		DB:     DB{Name: testDBName, Key: e.db.vkey},
		Source: newHTTPSource(srv.URL),
		Store:  storage.NewMemory(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range testModules(t)[:1] {
		// testModules builds new zips with the same content: same hashes.
		if err := v.CheckMod(t.Context(), m.path, m.version, m.mod); err != nil {
			t.Errorf("CheckMod(%s@%s) through the Handler = %v", m.path, m.version, err)
		}
		if err := v.CheckZip(t.Context(), m.path, m.version, zipFile(t, m.zip)); err != nil {
			t.Errorf("CheckZip(%s@%s) through the Handler = %v", m.path, m.version, err)
		}
	}
}

// FuzzHandlerPath checks that no request path makes the Handler panic,
// answer 5xx, or touch the Store with an invalid key.
func FuzzHandlerPath(f *testing.F) {
	for _, seed := range []string{
		"sum.test/supported", "sum.test/latest", "sum.test/lookup/example.com/m@v1.0.0",
		"sum.test/lookup/example.com/!upper@v1.0.0+incompatible", "sum.test/lookup/example.com/m@v1.0.0-pre.0.20240101000000-abcdefabcdef",
		"sum.test/tile/8/0/000", "sum.test/tile/8/0/x001/002.p/7", "sum.test/tile/8/data/000", "sum.test/tile/8/1/000.p/1",
		"sum.test/tile/30/0/000", "sum.test/tile/8/0/x999/x999/x999/x999/x999/x999/x999/000", "sum.test/tile/8/-1/000",
		"sum.test/lookup/./x@v1.0.0", "sum.test/lookup/example.com/m@v1.0.0/../x", "sum.test/lookup/.x@v1.0.0",
		"sum.test/lookup/example.com/m@@v1.0.0", "sum.test/lookup/example.com//m@v1.0.0",
		"other.test/db/latest", "other.test/latest", "", "/", "sum.test/", "sum.test//latest", "sum.test/tile/",
		"sum.test/lookup/", "sum.test/lookup/a\nb@v1.0.0", "\x00", "sum.test/tile/8/0/000\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, p string) {
		store := &strictStore{Store: storage.NewMemory(), t: t}
		src := funcSource(func(ctx context.Context, up string) ([]byte, error) {
			for _, name := range []string{"sum.test/", "other.test/db/"} {
				rest, ok := strings.CutPrefix(up, "sumdb/"+name)
				if !ok {
					continue
				}
				if tile, err := tlog.ParseTilePath(rest); err == nil && tile.L >= 0 {
					return make([]byte, tile.W*tlog.HashSize), nil
				}
			}
			return nil, fmt.Errorf("%s: %w", up, fs.ErrNotExist)
		})
		h := NewHandler(HandlerConfig{DBs: []string{"sum.test", "other.test/db"}, Source: src, Store: store})
		req := httptest.NewRequestWithContext(t.Context(), "GET", "/", nil)
		req.URL.Path = "/sumdb/" + p
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("GET /sumdb/%q = %d %q; want no 5xx", p, rec.Code, rec.Body)
		}
		if rec.Code != 200 && strings.Count(rec.Body.String(), "\n") != 1 {
			t.Fatalf("GET /sumdb/%q = %d %q; want a one-line error", p, rec.Code, rec.Body)
		}
	})
}

// strictStore fails the test when the Handler uses an invalid key.
type strictStore struct {
	storage.Store
	t *testing.T
}

func (s *strictStore) check(name string) {
	if err := storage.CheckName(name); err != nil {
		s.t.Fatalf("Handler used invalid storage key: %v", err)
	}
}

func (s *strictStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	s.check(name)
	return s.Store.Get(ctx, name)
}

func (s *strictStore) Put(ctx context.Context, name string, r io.Reader) error {
	s.check(name)
	return s.Store.Put(ctx, name, r)
}

// TestHandlerNeverForwardsPrivateLookups checks that a lookup of a private
// module is answered here, with advice, and never reaches the upstream.
func TestHandlerNeverForwardsPrivateLookups(t *testing.T) {
	var asked atomic.Int64
	src := funcSource(func(ctx context.Context, up string) ([]byte, error) {
		asked.Add(1)
		return nil, fs.ErrNotExist
	})
	h := NewHandler(HandlerConfig{DBs: []string{testDBName}, Source: src, Store: storage.NewMemory(), Private: []string{"corp.example.com/*"}})
	rec := serve(t, h, "GET", "/sumdb/sum.test/lookup/corp.example.com/secret-project@v1.0.0")
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "GONOSUMDB=corp.example.com/*") {
		t.Errorf("private lookup = %d %q; want 404 naming GONOSUMDB", rec.Code, rec.Body)
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("the upstream was asked %d times about a private module", n)
	}
}

// TestHandlerServesStoredPartialTile: a partial tile stored under its
// protocol path (by the Verifier, or by `modgate import` at a site without
// an upstream) answers without the upstream; a stored copy of the wrong
// size does not.
func TestHandlerServesStoredPartialTile(t *testing.T) {
	e := newHandlerEnv(t)
	const p = "/sumdb/sum.test/tile/8/0/001.p/45"
	first := serve(t, e.h, "GET", p)
	if first.Code != http.StatusOK {
		t.Fatalf("GET %s = %d", p, first.Code)
	}
	if err := e.store.Put(t.Context(), "sumdb/sum.test/tile/8/0/001.p/45", bytes.NewReader(first.Body.Bytes())); err != nil {
		t.Fatal(err)
	}
	e.source.setFail(errors.New("upstream gone"))
	e.clock.Advance(time.Hour) // past the memory copy
	got := serve(t, e.h, "GET", p)
	if got.Code != http.StatusOK || !bytes.Equal(got.Body.Bytes(), first.Body.Bytes()) || got.Header().Get("Warning") != "" {
		t.Errorf("GET %s with the upstream gone = %d, %d bytes (Warning %q); want the stored tile, not stale", p, got.Code, got.Body.Len(), got.Header().Get("Warning"))
	}
	if n := e.db.count(p); n != 1 {
		t.Errorf("upstream requests = %d; want 1", n)
	}

	short := "/sumdb/sum.test/tile/8/0/001.p/44"
	if err := e.store.Put(t.Context(), "sumdb/sum.test/tile/8/0/001.p/44", bytes.NewReader(first.Body.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got := serve(t, e.h, "GET", short); got.Code == http.StatusOK && bytes.Equal(got.Body.Bytes(), first.Body.Bytes()) {
		t.Errorf("GET %s served a stored tile of the wrong width", short)
	}
}
