package mirror

import (
	"context"
	"sync"
)

// flightGroup deduplicates concurrent work by key, like
// golang.org/x/sync/singleflight, with one difference that matters for a
// proxy: the work runs on its own context, which is cancelled when every
// caller waiting for it has gone. One impatient client cannot fail the
// others, and nobody keeps downloading a file no one wants.
type flightGroup struct {
	mu      sync.Mutex
	m       map[string]*flight
	running sync.WaitGroup // flights whose work has not returned
}

type flight struct {
	done    chan struct{}
	val     any
	err     error
	waiters int
	cancel  context.CancelFunc
}

// do runs fn once for key among concurrent callers and returns its result.
// fn's context carries ctx's values but not its cancellation. If ctx ends
// first, do returns ctx.Err() and, when it was the last waiter, cancels fn.
// shared reports whether the caller joined a flight already in progress.
func (g *flightGroup) do(ctx context.Context, key string, fn func(context.Context) (any, error)) (val any, err error, shared bool) {
	g.mu.Lock()
	if g.m == nil {
		g.m = make(map[string]*flight)
	}
	f, shared := g.m[key]
	if !shared {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel}
		g.m[key] = f
		g.running.Add(1)
		go func() {
			defer g.running.Done()
			defer close(f.done)
			defer cancel()
			f.val, f.err = fn(fctx)
			g.forget(key, f)
		}()
	}
	f.waiters++
	g.mu.Unlock()

	select {
	case <-f.done:
		return f.val, f.err, shared
	case <-ctx.Done():
		g.mu.Lock()
		f.waiters--
		if f.waiters == 0 {
			// Nobody is left: stop the work, and let the next caller
			// start afresh instead of joining a cancelled flight.
			f.cancel()
			if g.m[key] == f {
				delete(g.m, key)
			}
		}
		g.mu.Unlock()
		return nil, ctx.Err(), shared
	}
}

// wait returns once the work of every flight started so far has
// returned, including flights whose callers all left (their work is
// cancelled, so it returns soon).
func (g *flightGroup) wait() { g.running.Wait() }

func (g *flightGroup) forget(key string, f *flight) {
	g.mu.Lock()
	if g.m[key] == f {
		delete(g.m, key)
	}
	g.mu.Unlock()
}

// inFlight returns the number of flights running.
func (g *flightGroup) inFlight() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.m)
}
