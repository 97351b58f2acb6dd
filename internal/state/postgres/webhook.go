package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Deliveries is the webhook.DeliveryStore of replicas: the table
// webhook_deliveries. A claim inserts every key in one transaction and
// rolls back if any is there already (within the window), so of two
// replicas handed the same delivery, one handles it.
type Deliveries struct{ db *DB }

// Deliveries returns the database's webhook delivery store.
func (db *DB) Deliveries() *Deliveries { return &Deliveries{db: db} }

// Claim implements webhook.DeliveryStore.
func (d *Deliveries) Claim(ctx context.Context, keys []string, now time.Time, window time.Duration) (bool, error) {
	// In one order, so that two claims sharing keys wait for each other
	// instead of deadlocking.
	keys = slices.Sorted(slices.Values(keys))
	fresh := false
	err := pgx.BeginFunc(ctx, d.db.pool, func(tx pgx.Tx) error {
		cutoff := now.Add(-window)
		// Forget what is past the window, these keys' old entries
		// included, so that they can be claimed again.
		if _, err := tx.Exec(ctx, "DELETE FROM webhook_deliveries WHERE seen_at <= $1", cutoff); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (key, seen_at)
			SELECT k, $2 FROM unnest($1::text[]) AS k ON CONFLICT (key) DO NOTHING`, keys, now)
		if err != nil {
			return err
		}
		if int(tag.RowsAffected()) != len(keys) {
			return errDuplicate
		}
		fresh = true
		return nil
	})
	if err == errDuplicate {
		return false, nil
	}
	return fresh, wrap("recording webhook delivery", err)
}

// errDuplicate rolls back a claim of a delivery seen before.
var errDuplicate = errorString("duplicate delivery")

type errorString string

func (e errorString) Error() string { return string(e) }

// Release implements webhook.DeliveryStore.
func (d *Deliveries) Release(ctx context.Context, keys []string) error {
	_, err := d.db.pool.Exec(ctx, "DELETE FROM webhook_deliveries WHERE key = ANY($1)", keys)
	return wrap("forgetting webhook delivery", err)
}
