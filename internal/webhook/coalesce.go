package webhook

import (
	"context"
	"sync"
)

// A Coalescer runs the refresh of one repository at most once at a time,
// with at most one more queued behind it: a burst of pushes (or of
// deliveries) to one repository costs at most two runs, whatever its size.
//
// A run already going may have listed the repository before the latest
// push, so a caller arriving during it cannot just share its result: it
// joins the queued run, which starts when the running one ends and so sees
// every push made before it started. Callers arriving while a run is
// queued join that one. It is safe for concurrent use; the zero value is
// ready.
type Coalescer[T any] struct {
	mu   sync.Mutex
	keys map[string]*lane[T]
}

// A lane is the state of one key: the run going, and the run queued.
type lane[T any] struct {
	running *run[T]
	queued  *run[T]
}

type run[T any] struct {
	done    chan struct{}
	val     T
	err     error
	callers int // callers waiting for it, under Coalescer.mu
}

// Do runs f for key, or waits for the queued run that will (see
// Coalescer), and returns that run's result. shared reports whether the
// result came from a run started for another caller. When ctx ends first,
// Do returns ctx.Err(); the run still happens for the others, on a context
// that keeps ctx's values but not its cancellation.
func (c *Coalescer[T]) Do(ctx context.Context, key string, f func(context.Context) (T, error)) (val T, shared bool, err error) {
	c.mu.Lock()
	if c.keys == nil {
		c.keys = make(map[string]*lane[T])
	}
	l := c.keys[key]
	if l == nil {
		l = &lane[T]{}
		c.keys[key] = l
	}
	if l.queued != nil {
		r := l.queued
		r.callers++
		c.mu.Unlock()
		return wait(ctx, r, true)
	}
	r := &run[T]{done: make(chan struct{}), callers: 1}
	if l.running == nil {
		l.running = r
		c.mu.Unlock()
		go c.start(context.WithoutCancel(ctx), key, l, r, f)
		return wait(ctx, r, false)
	}
	l.queued = r
	prev := l.running
	c.mu.Unlock()
	go func() {
		<-prev.done
		c.mu.Lock()
		l.running, l.queued = r, nil
		c.mu.Unlock()
		c.start(context.WithoutCancel(ctx), key, l, r, f)
	}()
	return wait(ctx, r, false)
}

// start runs f for r and then frees the lane, unless a run is queued,
// which takes over.
func (c *Coalescer[T]) start(ctx context.Context, key string, l *lane[T], r *run[T], f func(context.Context) (T, error)) {
	r.val, r.err = f(ctx)
	c.mu.Lock()
	if l.running == r && l.queued == nil {
		l.running = nil
		delete(c.keys, key)
	}
	c.mu.Unlock()
	close(r.done)
}

func wait[T any](ctx context.Context, r *run[T], shared bool) (T, bool, error) {
	select {
	case <-r.done:
		return r.val, shared, r.err
	case <-ctx.Done():
		var zero T
		return zero, shared, ctx.Err()
	}
}
