package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sync"
	"time"
)

// HealthOptions configures a Guard.
type HealthOptions struct {
	// Budget bounds the time one Fetch waits for the upstream's answer,
	// across the Source's retries and their backoff: connecting, sending,
	// waiting for the response headers. A body that keeps arriving is not
	// cut off (HTTPConfig.IdleTimeout guards stalls). 0 means no bound.
	Budget time.Duration
	// FailuresToDown is how many failed fetches in a row mark the upstream
	// down (default 3). Failures are timeouts, connection errors and 5xx
	// answers; "not found" and other answers count as the upstream being
	// alive, and fetches the caller gave up on count as nothing.
	FailuresToDown int
	// RetryMin and RetryMax bound the wait between trial fetches while the
	// upstream is down: it starts at RetryMin (default 1s) and doubles
	// after each failed trial up to RetryMax (default 30s).
	RetryMin, RetryMax time.Duration
	// OnChange, when set, is called with the upstream's String and true
	// when the Guard is made, then on every change. It must be cheap.
	OnChange func(upstream string, up bool)
	// Logger receives a warning when the upstream goes down and an info
	// line when it is back; nil discards.
	Logger *slog.Logger
	// Now returns the current time (default time.Now), for tests.
	Now func() time.Time
}

const (
	defaultFailuresToDown = 3
	defaultRetryMin       = time.Second
	defaultRetryMax       = 30 * time.Second
)

// A Guard is a Source that tracks the health of the Source it wraps and
// stops waiting on it when it is down.
//
// An upstream that accepts connections and never answers would otherwise
// make every request wait for its timeouts and retries, even requests that
// a stored copy could answer at once. So after FailuresToDown failures in a
// row the Guard marks the upstream down: Fetch then fails at once with the
// last failure's class (ErrTimeout or ErrUnavailable), so that callers
// serve what they have stored and a Chain moves on per its separator.
// While it is down, one fetch at a time is let through as a trial, first
// after RetryMin, then at doubling intervals up to RetryMax; when a trial
// (or any fetch) gets an answer, the upstream is up again.
//
// Every fetch is also bounded by Budget.
//
// A Guard is safe for concurrent use.
type Guard struct {
	src  Source
	opts HealthOptions
	log  *slog.Logger

	mu        sync.Mutex
	failures  int   // in a row
	lastErr   error // the last failure
	down      bool
	retry     time.Duration // current wait between trials
	nextTrial time.Time
	trial     bool // a trial fetch is running
}

// NewGuard returns a Guard around src.
func NewGuard(src Source, opts HealthOptions) *Guard {
	if opts.FailuresToDown <= 0 {
		opts.FailuresToDown = defaultFailuresToDown
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = defaultRetryMin
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(defaultRetryMax, opts.RetryMin)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	g := &Guard{src: src, opts: opts, log: opts.Logger}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.log = g.log.With("component", "upstream")
	if opts.OnChange != nil {
		opts.OnChange(src.String(), true)
	}
	return g
}

// String returns the wrapped Source's String.
func (g *Guard) String() string { return g.src.String() }

// Healthy reports whether the upstream is considered up.
func (g *Guard) Healthy() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.down
}

// errBudget is the cause of a fetch cancelled by the Budget.
var errBudget = errors.New("request budget spent")

// Fetch fetches path from the wrapped Source unless the upstream is down
// (see Guard), within the Budget.
func (g *Guard) Fetch(ctx context.Context, path string) (*Response, error) {
	trial, err := g.admit(path)
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancelCause(ctx)
	var timer *time.Timer
	if g.opts.Budget > 0 {
		timer = time.AfterFunc(g.opts.Budget, func() { cancel(errBudget) })
	}
	resp, err := g.src.Fetch(fctx, path)
	spent := timer != nil && !timer.Stop()
	if spent && ctx.Err() == nil {
		// The budget ran out, whatever the Source made of the cancellation
		// (an answer that arrived just then cannot be read any more).
		if resp != nil {
			resp.Body.Close()
		}
		resp, err = nil, classify(ErrTimeout, fmt.Errorf("upstream %q did not answer %s within the request budget of %v", g.src.String(), path, g.opts.Budget))
	}
	g.record(ctx, trial, err)
	if err != nil {
		cancel(nil)
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: func() { cancel(nil) }}
	return resp, nil
}

// admit decides whether a fetch may go to the upstream, and whether it is
// the trial of a down upstream.
func (g *Guard) admit(path string) (trial bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.down {
		return false, nil
	}
	now := g.opts.Now()
	if !g.trial && !now.Before(g.nextTrial) {
		g.trial = true
		return true, nil
	}
	class := ErrUnavailable
	if errors.Is(g.lastErr, ErrTimeout) {
		class = ErrTimeout
	}
	return false, classify(class, fmt.Errorf("upstream %q is down (%d failures in a row, the last: %v); not asking it for %s until it answers again",
		g.src.String(), g.failures, g.lastErr, path))
}

// outcome classes of a fetch, for health.
const (
	neutral = iota // says nothing about the upstream
	alive          // the upstream answered
	failed         // timeout, connection error, 5xx
)

// judge classifies a fetch's result. ctx is the caller's context.
func judge(ctx context.Context, err error) int {
	var se *StatusError
	switch {
	case err == nil, errors.Is(err, fs.ErrNotExist), errors.Is(err, ErrRedirect):
		return alive
	case ctx.Err() != nil:
		return neutral // the caller gave up or ran out of its own time
	case errors.As(err, &se) && se.StatusCode < 500:
		return alive
	case errors.Is(err, ErrTimeout), errors.Is(err, ErrUnavailable):
		return failed
	}
	return neutral
}

// record updates the health after a fetch.
func (g *Guard) record(ctx context.Context, trial bool, err error) {
	outcome := judge(ctx, err)
	g.mu.Lock()
	if trial {
		g.trial = false
	}
	var changed, up bool
	switch outcome {
	case alive:
		g.failures = 0
		if g.down {
			g.down, g.retry = false, 0
			changed, up = true, true
		}
	case failed:
		g.failures++
		g.lastErr = err
		now := g.opts.Now()
		switch {
		case g.down && trial:
			g.retry = min(2*g.retry, g.opts.RetryMax)
			g.nextTrial = now.Add(g.retry)
		case !g.down && g.failures >= g.opts.FailuresToDown:
			g.down, g.retry = true, g.opts.RetryMin
			g.nextTrial = now.Add(g.retry)
			changed = true
		}
	}
	failures, retry := g.failures, g.retry
	g.mu.Unlock()

	if !changed {
		return
	}
	if up {
		g.log.Info("upstream answers again", "upstream", g.src.String())
	} else {
		g.log.Warn("upstream marked down: requests stop waiting for it until it answers again",
			"upstream", g.src.String(), "failures", failures, "retry", retry, "err", err)
	}
	if g.opts.OnChange != nil {
		g.opts.OnChange(g.src.String(), up)
	}
}

// cancelBody releases a fetch's context when the body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
