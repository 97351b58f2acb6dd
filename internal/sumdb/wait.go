package sumdb

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/modgate/modgate/internal/upstream"
)

// do runs fn in the Handler's flight for key and returns its result. When
// wait is set (an older copy could answer the request) and RefreshWait is
// positive, it stops waiting after RefreshWait and returns an error
// matching upstream.ErrTimeout, on which the caller serves the older copy;
// fn goes on (its fetch is detached from the request, see fetch) and its
// result is kept for the next request. A hanging upstream then costs a
// client RefreshWait per tile, not the whole fetch timeout.
func (h *Handler) do(key string, wait bool, fn func() (any, error)) (any, error) {
	if !wait || h.refreshWait <= 0 {
		v, err, _ := h.flight.Do(key, fn)
		return v, err
	}
	ch := h.flight.DoChan(key, fn)
	t := time.NewTimer(h.refreshWait)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-t.C:
		return nil, fmt.Errorf("%s: no answer from upstream %s within %v, serving the last copy: %w", key, h.source, h.refreshWait, upstream.ErrTimeout)
	}
}

// stored reports whether the Store holds key.
func (h *Handler) stored(ctx context.Context, key string) bool {
	rc, err := h.store.Get(ctx, key)
	if err != nil {
		return false
	}
	rc.Close()
	return true
}

// hasPartialFallback reports whether partialFallback could answer t from
// stored data.
func (h *Handler) hasPartialFallback(ctx context.Context, name string, t tlog.Tile) bool {
	if t.L < 0 {
		return false
	}
	full := t
	full.W = 1 << t.H
	if h.stored(ctx, "sumdb/"+name+"/"+full.Path()) {
		return true
	}
	data, err := h.readStore(ctx, fallbackKey(name, widestPath(t)))
	return err == nil && len(data) >= t.W*tlog.HashSize
}
