package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	xsumdb "golang.org/x/mod/sumdb"

	"github.com/modgate/modgate/internal/sumdb"
)

// Heads is the sumdb.HeadStore of replicas: the table sumdb_heads. A swap
// is one compare-and-set statement on the head's bytes, which also
// requires the new tree to be at least as large as the stored one, so no
// replica can move the head backwards, whatever it read before.
type Heads struct{ db *DB }

// Heads returns the database's tree head store.
func (db *DB) Heads() *Heads { return &Heads{db: db} }

// ReadHead implements sumdb.HeadStore.
func (h *Heads) ReadHead(ctx context.Context, name string) ([]byte, error) {
	var head []byte
	err := h.db.pool.QueryRow(ctx, "SELECT head FROM sumdb_heads WHERE name = $1", name).Scan(&head)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return head, wrap("reading tree head", err)
}

// SwapHead implements sumdb.HeadStore.
func (h *Heads) SwapHead(ctx context.Context, name string, old, new []byte) error {
	n, err := sumdb.HeadSize(new)
	if err != nil {
		return err
	}
	var tag interface{ RowsAffected() int64 }
	if len(old) == 0 {
		tag, err = h.db.pool.Exec(ctx, `INSERT INTO sumdb_heads (name, head, tree_size) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO NOTHING`, name, new, n)
	} else {
		tag, err = h.db.pool.Exec(ctx, `UPDATE sumdb_heads SET head = $3, tree_size = $4
			WHERE name = $1 AND head = $2 AND tree_size <= $4`, name, old, new, n)
	}
	if err != nil {
		return wrap("storing tree head", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	// Nothing changed: the head is not old any more (a conflict: the
	// client reads the new one and verifies again), or it is and new is
	// smaller.
	var curN int64
	var cur []byte
	err = h.db.pool.QueryRow(ctx, "SELECT head, tree_size FROM sumdb_heads WHERE name = $1", name).Scan(&cur, &curN)
	if err == nil && len(old) > 0 && string(cur) == string(old) && n < curN {
		return fmt.Errorf("checksum database %s: %w: tree of %d records after one of %d", name, sumdb.ErrHeadRegress, n, curN)
	}
	return xsumdb.ErrWriteConflict
}
