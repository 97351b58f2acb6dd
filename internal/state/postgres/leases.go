package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync/atomic"
	"time"
)

// DefaultLeaseTTL is how long a fill lease outlives its holder's last
// renewal: how long the other replicas wait for a replica that crashed in
// the middle of a fill before one of them fills instead.
const DefaultLeaseTTL = 10 * time.Second

// Leases is the mirror.Leaser of replicas: the table fill_leases, one row
// per file being filled. The holder renews its row while it fills and
// deletes it when done; a row whose holder crashed expires, measured by
// the database's clock, so the replicas' clocks need not agree. Waiting
// replicas poll for the row to go.
type Leases struct {
	db     *DB
	ttl    time.Duration
	poll   time.Duration
	holder string // this process, for the holder column
	seq    atomic.Int64
}

// Leases returns fill leases that expire ttl after their last renewal (0
// means DefaultLeaseTTL).
func (db *DB) Leases(ttl time.Duration) *Leases {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	host, _ := os.Hostname()
	b := make([]byte, 6)
	rand.Read(b)
	return &Leases{db: db, ttl: ttl, poll: min(100*time.Millisecond, ttl/4), holder: host + "/" + hex.EncodeToString(b)}
}

// Acquire implements mirror.Leaser.
func (l *Leases) Acquire(ctx context.Context, key string) (func(), bool, error) {
	holder := l.holder + "/" + itoa(l.seq.Add(1))
	var got string
	err := l.db.pool.QueryRow(ctx, `
		INSERT INTO fill_leases AS l (key, holder, expires_at)
		VALUES ($1, $2, now() + $3 * interval '1 millisecond')
		ON CONFLICT (key) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
			WHERE l.expires_at < now()
		RETURNING holder`, key, holder, l.ttl.Milliseconds()).Scan(&got)
	if err != nil {
		if isNoRows(err) {
			return nil, false, nil // held by a live holder
		}
		return nil, false, wrap("taking the fill lease", err)
	}
	renewCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.renew(renewCtx, ctx, key, holder)
	}()
	release := func() {
		stop()
		<-done
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := l.db.pool.Exec(rctx, "DELETE FROM fill_leases WHERE key = $1 AND holder = $2", key, holder); err != nil {
			// It expires by itself; the waiters just wait longer.
			l.db.log.Warn("could not release a fill lease", "key", key, "err", err)
		}
	}
	return release, true, nil
}

// renew extends the lease every third of its lifetime until stop is
// cancelled (release) or the holder's ctx ends without a release (the
// holder hung or was abandoned: the lease then expires).
func (l *Leases) renew(stop, holderCtx context.Context, key, holder string) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-stop.Done():
			return
		case <-holderCtx.Done():
			return
		case <-t.C:
			if _, err := l.db.pool.Exec(stop, `UPDATE fill_leases SET expires_at = now() + $3 * interval '1 millisecond'
				WHERE key = $1 AND holder = $2`, key, holder, l.ttl.Milliseconds()); err != nil && stop.Err() == nil {
				l.db.log.Warn("could not renew a fill lease", "key", key, "err", err)
			}
		}
	}
}

// Wait implements mirror.Leaser.
func (l *Leases) Wait(ctx context.Context, key string) error {
	t := time.NewTicker(l.poll)
	defer t.Stop()
	for {
		var held bool
		err := l.db.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM fill_leases WHERE key = $1 AND expires_at >= now())", key).Scan(&held)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return wrap("waiting for a fill lease", err)
		}
		if !held {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
