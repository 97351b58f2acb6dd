package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/modgate/modgate/internal/upstream"
)

// Fill limits.
//
// Every upstream fetch holds a file descriptor, a connection and a few
// goroutines for as long as it runs, so a burst of cold requests for
// distinct files (a CI fleet starting at once, a scan) must not open one
// fetch each. Fetches from the proxy upstreams therefore take a slot first:
// at most MaxFills run for clients at once, and the rest wait in a queue
// for at most FillQueueTimeout, after which the request fails with ErrBusy
// (503 with Retry-After). A slot is held from the request to the end of its
// body, so a zip download counts until it is read.
//
// The limit sits below single flight: however many clients ask for one
// file, they share one fetch and one slot.
//
// Background work (requirement prefetch, refreshes no client waits for)
// takes its slots from a separate budget, so it can never make a client
// wait: as many slots as prefetch workers (so they never queue), at least
// a quarter of MaxFills (for refreshes) and at most MaxFills. A client that joins a
// flight background work started shares that flight's slot.
//
// Private modules fetched from Git are not limited here: package git has
// its own limit (private.max_concurrent_git).

// ErrBusy reports that an upstream fetch waited FillQueueTimeout for a slot
// and did not get one. Errors matching it also match upstream.ErrUnavailable,
// so mutable answers fall back to stale copies, and carry a RetryAfter
// method for the Retry-After header.
var ErrBusy = errors.New("server busy")

// busyError is the ErrBusy a request gets.
type busyError struct{ retryAfter time.Duration }

func (e *busyError) Error() string {
	return fmt.Sprintf("server busy: too many downloads from upstreams are running; try again in %v", e.retryAfter)
}

func (e *busyError) Unwrap() []error { return []error{ErrBusy, upstream.ErrUnavailable} }

// RetryAfter is how long the client should wait before asking again.
func (e *busyError) RetryAfter() time.Duration { return e.retryAfter }

// A LimitObserver is an Observer that is also told about the fill queue.
// Both methods must be cheap and safe for concurrent use.
type LimitObserver interface {
	// FillQueue reports the number of fetches waiting for a slot.
	FillQueue(depth int)
	// FillRefused counts a client's fetch refused with ErrBusy.
	FillRefused()
}

// limiter hands out fill slots.
type limiter struct {
	client, background chan struct{} // semaphores: a send takes a slot
	timeout            time.Duration
	obs                LimitObserver // may be nil

	mu       sync.Mutex // orders the depths reported to obs
	waiting  int
	newTimer func(time.Duration) (<-chan time.Time, func() bool)
}

// newLimiter returns a limiter with slots client slots and the background
// budget that goes with it (see backgroundSlots); slots <= 0 means no
// limit (nil).
func newLimiter(slots, prefetchWorkers int, timeout time.Duration, obs LimitObserver) *limiter {
	if slots <= 0 {
		return nil
	}
	if timeout <= 0 {
		timeout = defaultFillQueueTimeout
	}
	l := &limiter{
		client:     make(chan struct{}, slots),
		background: make(chan struct{}, backgroundSlots(slots, prefetchWorkers)),
		timeout:    timeout,
		obs:        obs,
		newTimer: func(d time.Duration) (<-chan time.Time, func() bool) {
			t := time.NewTimer(d)
			return t.C, t.Stop
		},
	}
	if obs != nil {
		obs.FillQueue(0)
	}
	return l
}

const defaultFillQueueTimeout = 10 * time.Second

// backgroundSlots is the size of the background budget.
func backgroundSlots(maxFills, prefetchWorkers int) int {
	return min(maxFills, max(1, maxFills/4, prefetchWorkers))
}

// UpstreamConns returns how many connections to one upstream host suit
// Config.MaxFills and PrefetchWorkers (for http.Transport.MaxConnsPerHost):
// each slot, for clients or background work, holds one connection for the
// module file and may run one checksum database request beside it, often
// to the same host. 0 (no limit) when maxFills is.
func UpstreamConns(maxFills, prefetchWorkers int) int {
	if maxFills <= 0 {
		return 0
	}
	return 2 * (maxFills + backgroundSlots(maxFills, prefetchWorkers))
}

// backgroundKey marks a context whose work no client is waiting for.
type backgroundKey struct{}

// asBackground marks ctx as background work (see the comment at the top).
func asBackground(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundKey{}, true)
}

func isBackground(ctx context.Context) bool {
	b, _ := ctx.Value(backgroundKey{}).(bool)
	return b
}

// acquire takes a slot, waiting at most l.timeout, and returns the
// function that gives it back (safe to call more than once).
func (l *limiter) acquire(ctx context.Context) (release func(), err error) {
	sem := l.client
	bg := isBackground(ctx)
	if bg {
		sem = l.background
	}
	select {
	case sem <- struct{}{}:
		return l.releaser(sem), nil
	default:
	}
	l.queue(1)
	defer l.queue(-1)
	timeout, stop := l.newTimer(l.timeout)
	defer stop()
	select {
	case sem <- struct{}{}:
		return l.releaser(sem), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timeout:
	}
	if !bg && l.obs != nil {
		l.obs.FillRefused()
	}
	return nil, &busyError{retryAfter: l.timeout}
}

func (l *limiter) queue(delta int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waiting += delta
	if l.obs != nil {
		l.obs.FillQueue(l.waiting)
	}
}

func (l *limiter) releaser(sem chan struct{}) func() {
	var once sync.Once
	return func() { once.Do(func() { <-sem }) }
}

// limitedSource is a Source whose fetches take a slot of a limiter.
type limitedSource struct {
	upstream.Source
	l *limiter
}

// limit returns src limited by l (src itself when l is nil).
func limit(src upstream.Source, l *limiter) upstream.Source {
	if l == nil || src == nil {
		return src
	}
	return limitedSource{Source: src, l: l}
}

// Fetch takes a slot, fetches, and gives the slot back when the body is
// closed (or at once, on failure).
func (s limitedSource) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	release, err := s.l.acquire(ctx)
	if err != nil {
		return nil, err // the caller names path
	}
	resp, err := s.Source.Fetch(ctx, path)
	if err != nil {
		release()
		return nil, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: release}
	return resp, nil
}

// releasingBody gives a fill slot back when it is closed.
type releasingBody struct {
	io.ReadCloser
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}
