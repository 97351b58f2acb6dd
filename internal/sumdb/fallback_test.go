package sumdb

import (
	"bytes"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/modgate/modgate/internal/upstream"
)

// TestHandlerLatestFallbackAfterRestart: a new Handler (a restarted server)
// with the upstream down serves the last tree head it stored, marked stale.
func TestHandlerLatestFallbackAfterRestart(t *testing.T) {
	e := newHandlerEnv(t)
	first := serve(t, e.h, "GET", "/sumdb/sum.test/latest")
	if first.Code != 200 {
		t.Fatalf("GET latest = %d %q", first.Code, first.Body)
	}
	restarted := NewHandler(HandlerConfig{DBs: []string{testDBName}, Source: e.source, Store: e.store, LatestTTL: time.Minute})
	e.source.setFail(upstream.ErrUnavailable)
	rec := serve(t, restarted, "GET", "/sumdb/sum.test/latest")
	if rec.Code != 200 || rec.Body.String() != first.Body.String() || rec.Header().Get("Warning") == "" {
		t.Errorf("latest after restart with upstream down = %d %q, Warning %q; want 200, the stored copy, a stale warning",
			rec.Code, rec.Body, rec.Header().Get("Warning"))
	}
	// A database that was never fetched has no fallback.
	e2 := newHandlerEnv(t)
	e2.source.setFail(upstream.ErrUnavailable)
	if rec := serve(t, e2.h, "GET", "/sumdb/sum.test/latest"); rec.Code != 502 {
		t.Errorf("latest never fetched, upstream down = %d, want 502", rec.Code)
	}
}

// TestHandlerPartialTileFallback: with the upstream down, a partial hash
// tile is answered from the widest stored copy of the same tile (a prefix:
// width W is the first W hashes), never from a narrower one.
func TestHandlerPartialTileFallback(t *testing.T) {
	e := newHandlerEnv(t)
	// newHandlerEnv's log ends in partial tile 8/0/001.p/45.
	wide := serve(t, e.h, "GET", "/sumdb/sum.test/tile/8/0/001.p/45")
	if wide.Code != 200 || wide.Body.Len() != 45*tlog.HashSize {
		t.Fatalf("GET partial tile = %d, %d bytes", wide.Code, wide.Body.Len())
	}
	e.clock.Advance(time.Hour) // memory copies expire
	e.source.setFail(upstream.ErrUnavailable)

	narrow := serve(t, e.h, "GET", "/sumdb/sum.test/tile/8/0/001.p/20")
	if narrow.Code != 200 || !bytes.Equal(narrow.Body.Bytes(), wide.Body.Bytes()[:20*tlog.HashSize]) {
		t.Errorf("narrower partial tile offline = %d, %d bytes; want 200 with the first 20 hashes of the wide copy", narrow.Code, narrow.Body.Len())
	}
	if narrow.Header().Get("Warning") == "" {
		t.Error("offline partial tile has no stale warning")
	}
	if rec := serve(t, e.h, "GET", "/sumdb/sum.test/tile/8/0/001.p/46"); rec.Code != 502 {
		t.Errorf("wider partial tile than stored, offline = %d; want 502", rec.Code)
	}
	// The full tile 8/0/000 was never fetched, so its partial versions
	// have no fallback either.
	if rec := serve(t, e.h, "GET", "/sumdb/sum.test/tile/8/0/000.p/7"); rec.Code != 502 {
		t.Errorf("partial of a never-fetched tile, offline = %d; want 502", rec.Code)
	}
}

// TestHandlerPartialFromFullTile: a stored full tile answers its partial
// versions offline.
func TestHandlerPartialFromFullTile(t *testing.T) {
	e := newHandlerEnv(t)
	full := serve(t, e.h, "GET", "/sumdb/sum.test/tile/8/0/000")
	if full.Code != 200 {
		t.Fatalf("GET full tile = %d", full.Code)
	}
	e.source.setFail(upstream.ErrUnavailable)
	rec := serve(t, e.h, "GET", "/sumdb/sum.test/tile/8/0/000.p/10")
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), full.Body.Bytes()[:10*tlog.HashSize]) {
		t.Errorf("partial from full tile offline = %d, %d bytes", rec.Code, rec.Body.Len())
	}
}
