package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/modgate/modgate/internal/ledger"
)

// A Ledger is the ledger.Backend of replicas: the table ledger, where the
// first replica to record a file wins (INSERT ... ON CONFLICT DO NOTHING)
// and every other one gets its hash back to compare, so a tag moved after
// any replica stored the first copy is refused by all of them.
type Ledger struct{ db *DB }

// Ledger returns the database's ledger backend.
func (db *DB) Ledger() *Ledger { return &Ledger{db: db} }

// Lookup implements ledger.Backend.
func (l *Ledger) Lookup(ctx context.Context, key string) (ledger.Record, bool, error) {
	var rec ledger.Record
	err := l.db.pool.QueryRow(ctx, "SELECT hash, recorded_at FROM ledger WHERE key = $1", key).Scan(&rec.Hash, &rec.At)
	if errors.Is(err, pgx.ErrNoRows) {
		return ledger.Record{}, false, nil
	}
	if err != nil {
		return ledger.Record{}, false, wrap("reading the ledger", err)
	}
	rec.At = rec.At.UTC()
	return rec, true, nil
}

// Record implements ledger.Backend.
func (l *Ledger) Record(ctx context.Context, key string, rec ledger.Record) (ledger.Record, bool, error) {
	// One statement: insert, or else return the row that is there. The
	// UNION's second half sees the row a concurrent winner committed,
	// because ON CONFLICT waits for that transaction.
	var got ledger.Record
	var created bool
	err := l.db.pool.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO ledger (key, hash, recorded_at) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO NOTHING
			RETURNING hash, recorded_at
		)
		SELECT hash, recorded_at, true FROM ins
		UNION ALL
		SELECT hash, recorded_at, false FROM ledger WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM ins)`,
		key, rec.Hash, rec.At.UTC()).Scan(&got.Hash, &got.At, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		// The conflicting row was not visible to this statement's
		// snapshot: read it now that its transaction has committed.
		got, ok, err := l.Lookup(ctx, key)
		if err == nil && !ok {
			err = errors.New("ledger row vanished")
		}
		return got, false, err
	}
	if err != nil {
		return ledger.Record{}, false, wrap("recording in the ledger", err)
	}
	got.At = got.At.UTC()
	return got, created, nil
}

// Close implements ledger.Backend; the DB stays open for its owner.
func (l *Ledger) Close() error { return nil }
