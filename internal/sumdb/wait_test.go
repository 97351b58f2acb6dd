package sumdb

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// TestHandlerRefreshWait: with an upstream that hangs, a partial tile and
// the latest tree head that stored copies can answer are served from them
// after RefreshWait, not after the fetch timeout; a tile no stored copy can
// answer waits for the upstream.
func TestHandlerRefreshWait(t *testing.T) {
	e := newHandlerEnv(t)
	real := e.h.source
	var hang atomic.Bool
	release := make(chan struct{})
	e.h.source = funcSource(func(ctx context.Context, p string) ([]byte, error) {
		if hang.Load() {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return fetchAll(ctx, real, p)
	})
	e.h.refreshWait = 50 * time.Millisecond
	wide := serve(t, e.h, "GET", "/sumdb/sum.test/tile/8/0/001.p/45")
	latest := serve(t, e.h, "GET", "/sumdb/sum.test/latest")
	if wide.Code != 200 || latest.Code != 200 {
		t.Fatalf("warming: tile %d, latest %d", wide.Code, latest.Code)
	}
	e.clock.Advance(time.Hour) // memory copies expire

	hang.Store(true)
	for _, tt := range []struct{ path, want string }{
		{"/sumdb/sum.test/tile/8/0/001.p/20", wide.Body.String()[:20*tlog.HashSize]},
		{"/sumdb/sum.test/latest", latest.Body.String()},
	} {
		start := time.Now()
		rec := serve(t, e.h, "GET", tt.path)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("GET %s with a hanging upstream took %v, want about RefreshWait", tt.path, d)
		}
		if rec.Code != 200 || rec.Header().Get("Warning") == "" || !bytes.Equal(rec.Body.Bytes(), []byte(tt.want)) {
			t.Errorf("GET %s with a hanging upstream = %d, Warning %q; want the stored copy, marked stale", tt.path, rec.Code, rec.Header().Get("Warning"))
		}
	}
	done := make(chan int)
	go func() { done <- serve(t, e.h, "GET", "/sumdb/sum.test/tile/8/0/000.p/7").Code }()
	select {
	case code := <-done:
		t.Errorf("a tile without a stored copy was answered %d without waiting for the upstream", code)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if code := <-done; code != 200 {
		t.Errorf("tile without a stored copy = %d once the upstream answered, want 200", code)
	}
}
