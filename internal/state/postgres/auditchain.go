package postgres

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/modgate/modgate/internal/audit"
)

// AuditChain returns the audit log's shared hash chain in this database
// (tables audit_records, audit_head, audit_checkpoints,
// audit_spool_marks; migration 0100): the audit.Chain every replica's
// audit.Log appends to.
func (db *DB) AuditChain() audit.Chain { return auditChain{db} }

type auditChain struct{ db *DB }

func (c auditChain) Name() string { return "PostgreSQL table audit_records" }

// lockHead starts the work of one append or checkpoint: it locks the
// chain head row, which serialises every writer of every replica.
func lockHead(ctx context.Context, tx pgx.Tx) (audit.ChainHead, error) {
	var h audit.ChainHead
	err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id FOR UPDATE`).Scan(&h.Seq, &h.Hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, errors.New("the audit_head row is missing (was the table edited?)")
	}
	return h, err
}

// Append implements audit.Chain: one transaction per batch, the head row
// locked, the rows inserted with COPY.
func (c auditChain) Append(ctx context.Context, mark audit.SpoolMark, link func(audit.ChainHead) ([]audit.ChainRow, error)) error {
	var linkErr error
	err := pgx.BeginFunc(ctx, c.db.pool, func(tx pgx.Tx) error {
		h, err := lockHead(ctx, tx)
		if err != nil {
			return err
		}
		rows, err := link(h)
		if err != nil {
			linkErr = err
			return err
		}
		if len(rows) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_records"}, []string{"seq", "replica", "hash", "line"}, &rowSource{rows: rows, i: -1}); err != nil {
				return err
			}
			last := rows[len(rows)-1]
			if _, err := tx.Exec(ctx, `UPDATE audit_head SET seq = $1, hash = $2 WHERE id`, last.Seq, last.Hash); err != nil {
				return err
			}
		}
		if mark.File != "" {
			if _, err := tx.Exec(ctx, `INSERT INTO audit_spool_marks (file, lines) VALUES ($1, $2)
				ON CONFLICT (file) DO UPDATE SET lines = excluded.lines`, mark.File, mark.Lines); err != nil {
				return err
			}
		}
		return nil
	})
	if linkErr != nil {
		return linkErr
	}
	return wrap("appending to the audit chain", err)
}

// rowSource feeds rows to COPY without building a [][]any first.
type rowSource struct {
	rows []audit.ChainRow
	i    int
	vals [4]any
}

func (s *rowSource) Next() bool { s.i++; return s.i < len(s.rows) }
func (s *rowSource) Err() error { return nil }
func (s *rowSource) Values() ([]any, error) {
	r := &s.rows[s.i]
	s.vals = [4]any{r.Seq, r.Replica, r.Hash, r.Line}
	return s.vals[:], nil
}

// Has implements audit.Chain.
func (c auditChain) Has(ctx context.Context, h audit.ChainHead) (bool, error) {
	var n int
	err := c.db.pool.QueryRow(ctx, `SELECT count(*) FROM audit_records WHERE seq = $1 AND hash = $2`, h.Seq, h.Hash).Scan(&n)
	return n > 0, wrap("reading the audit chain", err)
}

// SpoolProgress implements audit.Chain.
func (c auditChain) SpoolProgress(ctx context.Context, file string) (int64, error) {
	var n int64
	err := c.db.pool.QueryRow(ctx, `SELECT lines FROM audit_spool_marks WHERE file = $1`, file).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return n, wrap("reading the audit spool marks", err)
}

// Checkpoint implements audit.Chain.
func (c auditChain) Checkpoint(ctx context.Context, sign func(audit.ChainHead) ([]byte, error)) error {
	err := pgx.BeginFunc(ctx, c.db.pool, func(tx pgx.Tx) error {
		h, err := lockHead(ctx, tx)
		if err != nil {
			return err
		}
		line, err := sign(h)
		if err != nil || line == nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO audit_checkpoints (seq, line) VALUES ($1, $2)`, h.Seq, string(line))
		return err
	})
	return wrap("writing an audit checkpoint", err)
}

// rowsPage is how many rows Rows reads per query, so a long chain is
// never held in memory.
const rowsPage = 10000

// Rows implements audit.Chain.
func (c auditChain) Rows(ctx context.Context, fn func(audit.ChainRow) error) error {
	after := int64(-1 << 63)
	for {
		rows, err := c.db.pool.Query(ctx, `SELECT seq, replica, hash, line FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT $2`, after, rowsPage)
		if err != nil {
			return wrap("reading the audit chain", err)
		}
		var page []audit.ChainRow
		for rows.Next() {
			var r audit.ChainRow
			var line string
			if err := rows.Scan(&r.Seq, &r.Replica, &r.Hash, &line); err != nil {
				rows.Close()
				return wrap("reading the audit chain", err)
			}
			r.Line = []byte(line)
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return wrap("reading the audit chain", err)
		}
		for _, r := range page {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(page) < rowsPage {
			return nil
		}
		after = page[len(page)-1].Seq
	}
}

// Checkpoints implements audit.Chain.
func (c auditChain) Checkpoints(ctx context.Context, fn func([]byte) error) error {
	rows, err := c.db.pool.Query(ctx, `SELECT line FROM audit_checkpoints ORDER BY id`)
	if err != nil {
		return wrap("reading the audit checkpoints", err)
	}
	var lines []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return wrap("reading the audit checkpoints", err)
		}
		lines = append(lines, line)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return wrap("reading the audit checkpoints", err)
	}
	for _, l := range lines {
		if err := fn([]byte(l)); err != nil {
			return err
		}
	}
	return nil
}

// AuditSigningKey returns the shared audit chain's signing key kept in the
// database (migration 0101), creating it if no replica has yet: the key
// of every replica that has no audit.key_file.
func (db *DB) AuditSigningKey(ctx context.Context) (ed25519.PrivateKey, error) {
	private, public, err := audit.GenerateKeyText()
	if err != nil {
		return nil, err
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO audit_signing_key (private, public) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, private, public); err != nil {
		return nil, wrap("storing the audit signing key", err)
	}
	if err := db.pool.QueryRow(ctx, `SELECT private FROM audit_signing_key WHERE id`).Scan(&private); err != nil {
		return nil, wrap("reading the audit signing key", err)
	}
	key, err := audit.ParseKeyText(private)
	if err != nil {
		return nil, fmt.Errorf("the audit signing key in table audit_signing_key: %w", err)
	}
	return key, nil
}

// AuditPublicKey returns the public half of the key AuditSigningKey keeps,
// for `modgate audit verify`; ok is false when no replica has created it
// yet.
func (db *DB) AuditPublicKey(ctx context.Context) (pub ed25519.PublicKey, ok bool, err error) {
	var private string
	err = db.pool.QueryRow(ctx, `SELECT private FROM audit_signing_key WHERE id`).Scan(&private)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, wrap("reading the audit signing key", err)
	}
	key, err := audit.ParseKeyText(private)
	if err != nil {
		return nil, false, fmt.Errorf("the audit signing key in table audit_signing_key: %w", err)
	}
	return key.Public().(ed25519.PublicKey), true, nil
}
