package storage

import (
	"context"
	"slices"
	"strings"
)

// A Walker is a Store that can visit every name under a prefix, at any
// depth: the module tree for `modgate verify` and the background scrub, the
// tombstones and the quarantine. prefix is "" (everything) or a directory
// key ending in "/". fn is called with full names, in no particular order;
// an error from fn stops the walk and is returned. Names written or removed
// during the walk may or may not be visited.
//
// (A Lister lists one directory; a Walker replaces a recursive descent,
// which an object store answers with one paginated listing.)
type Walker interface {
	Walk(ctx context.Context, prefix string, fn func(name string) error) error
}

// Walk passes through to the inner store; a store that cannot walk visits
// nothing.
func (c *Cache) Walk(ctx context.Context, prefix string, fn func(name string) error) error {
	if w, ok := c.inner.(Walker); ok {
		return w.Walk(ctx, prefix, fn)
	}
	return nil
}

var _ Walker = (*Memory)(nil)

// Walk calls fn with every name under prefix ("" for all), sorted. fn may
// write to the store.
func (m *Memory) Walk(ctx context.Context, prefix string, fn func(name string) error) error {
	if prefix != "" {
		if err := CheckDir(prefix); err != nil {
			return err
		}
	}
	m.mu.RLock()
	var names []string
	for key := range m.files {
		if strings.HasPrefix(key, prefix) {
			names = append(names, key)
		}
	}
	m.mu.RUnlock()
	slices.Sort(names)
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(n); err != nil {
			return err
		}
	}
	return nil
}
