package upstream

import (
	"context"
	"time"
)

type freshKey struct{}

// WithFreshSince returns a context asking every Source that keeps its own
// cache of mutable state (a Git source's ref lists) not to answer this
// fetch from state read before since. The mirror sets it when it refreshes
// a list, @latest or a query: its own answer is then fresh for the list
// TTL, so state already cached below it would add its age to the TTL and
// make a new tag take up to twice as long to appear.
func WithFreshSince(ctx context.Context, since time.Time) context.Context {
	return context.WithValue(ctx, freshKey{}, since)
}

// FreshSince returns the time set by WithFreshSince, or the zero time.
func FreshSince(ctx context.Context) time.Time {
	t, _ := ctx.Value(freshKey{}).(time.Time)
	return t
}
