package mirror

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
)

// A Leaser coordinates fills between replicas that share one Store, so
// that any number of concurrent requests for one uncached file, spread
// over any number of replicas, cause one upstream fetch: the flight of one
// replica takes the file's lease and fills; the others wait for the lease
// to go and then read the stored file. Within one replica the flight
// group already deduplicates; the Leaser extends that across processes.
// With no Leaser (one modgate) nothing changes.
//
// Implementations (package state/postgres) must be safe for concurrent use.
type Leaser interface {
	// Acquire tries to take the lease on key. When it returns ok, the
	// caller holds the lease until it calls release; the implementation
	// keeps it alive meanwhile, until release or until ctx ends (a
	// holder that crashes or hangs stops renewing it, and it expires, so
	// another replica can fill). When another replica holds the lease,
	// ok is false.
	Acquire(ctx context.Context, key string) (release func(), ok bool, err error)
	// Wait returns when the lease on key is free: released or expired.
	Wait(ctx context.Context, key string) error
}

// fillShared is fill under the file's lease, when replicas share the
// Store. It returns "" as the upstream when another replica filled the
// file. When the lease cannot be had (the database is down), it fills
// without one: this replica's flight still deduplicates its own requests,
// and the Store keeps whatever two replicas write consistent.
func (m *Mirror) fillShared(ctx context.Context, path, version, key string, reqDepth int) (string, error) {
	for {
		release, ok, err := m.cfg.Leaser.Acquire(ctx, key)
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			m.log.Warn("filling without a lease: replicas may fetch this file more than once", "module", path, "version", version, "err", err)
			return m.fill(ctx, path, version, key, reqDepth)
		}
		if ok {
			defer release()
			// Another replica may have stored it between this replica's
			// storage lookup and the lease.
			if m.storedNow(ctx, key) {
				return "", nil
			}
			return m.fill(ctx, path, version, key, reqDepth)
		}
		if err := m.cfg.Leaser.Wait(ctx, key); err != nil {
			if ctx.Err() != nil {
				return "", fmt.Errorf("%s@%s: waiting for another replica to fetch %s: %w", path, version, artifact(key), ctx.Err())
			}
			if m.storedNow(ctx, key) {
				return "", nil
			}
			m.log.Warn("filling without a lease: replicas may fetch this file more than once", "module", path, "version", version, "err", err)
			return m.fill(ctx, path, version, key, reqDepth)
		}
		if m.storedNow(ctx, key) {
			return "", nil
		}
		// The holder failed (the upstream had nothing, the file did not
		// verify) or crashed: try again, taking the lease this time if
		// it is free.
	}
}

// storedNow reports whether key is in the Store.
func (m *Mirror) storedNow(ctx context.Context, key string) bool {
	body, err := m.cfg.Store.Get(ctx, key)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			m.log.Warn("reading storage after waiting for a lease", "key", key, "err", err)
		}
		return false
	}
	body.Close()
	return true
}
