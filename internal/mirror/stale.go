package mirror

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/modgate/modgate/internal/upstream"
)

// Waiting for refreshes.
//
// When a list, @latest or query answer has expired, the request that finds
// it refreshes it in line. If the upstream is slow (or hangs until its
// request budget runs out), that request would wait all that time although
// an older answer is at hand. So when an older copy exists, the request
// waits at most RefreshWait: then it serves the older copy, marked stale,
// and the refresh goes on in the background (bounded by
// backgroundRefreshTimeout), updating the answer for the next request when
// it completes. Without an older copy there is nothing better to serve, and
// the request waits for the refresh as before.

// awaitRefresh runs refresh for key in a flight (see mutableAnswer) and
// waits for it, at most RefreshWait when a stale copy of key exists; then
// it returns an error matching upstream.ErrTimeout, on which the caller
// serves the stale copy.
func (m *Mirror) awaitRefresh(ctx context.Context, key string, persist bool, refresh func(context.Context) ([]byte, error)) (any, error) {
	fn := m.refreshFunc(key, refresh)
	wait := m.cfg.RefreshWait
	if wait <= 0 || m.baseCtx.Err() != nil || !m.hasStale(ctx, key, persist) {
		v, err, _ := m.flights.do(ctx, key, fn)
		return v, err
	}
	type result struct {
		v   any
		err error
	}
	done := make(chan result, 1)
	var abandoned atomic.Bool
	// The flight is joined on a context of its own, so that it keeps going
	// when this request stops waiting; Close still stops it.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), backgroundRefreshTimeout)
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		defer cancel()
		stop := context.AfterFunc(m.baseCtx, cancel)
		defer stop()
		v, err, _ := m.flights.do(bctx, key, fn)
		if err != nil && abandoned.Load() {
			m.log.Warn("background refresh failed", "key", key, "err", err)
		}
		done <- result{v, err}
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		abandoned.Store(true)
		return nil, ctx.Err()
	case <-timer.C:
		abandoned.Store(true)
		return nil, fmt.Errorf("refreshing %s: no answer within %v, serving the last one while the refresh goes on: %w", key, wait, upstream.ErrTimeout)
	}
}

// hasStale reports whether an older answer for key is at hand: in memory,
// or (for persisted answers) in the store.
func (m *Mirror) hasStale(ctx context.Context, key string, persist bool) bool {
	if _, _, ok := m.mutable.lookup(key); ok {
		return true
	}
	if !persist {
		return false
	}
	rc, err := m.cfg.Store.Get(ctx, key)
	if err != nil {
		return false
	}
	rc.Close()
	return true
}
