package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/modgate/modgate/internal/auth"
)

// Tokens is the auth.TokenStore of replicas: the table tokens. Every
// authentication reads the token's row, so a revocation through any
// replica (or `modgate token revoke`) is seen by all at their next
// request.
type Tokens struct{ db *DB }

// Tokens returns the database's token store.
func (db *DB) Tokens() *Tokens { return &Tokens{db: db} }

const tokenColumns = "id, name, scopes, secret_hash, created_at, expires_at"

func scanToken(row pgx.Row) (auth.TokenRecord, error) {
	var rec auth.TokenRecord
	var scopes []string
	var expires *time.Time
	if err := row.Scan(&rec.ID, &rec.Name, &scopes, &rec.SecretHash, &rec.Created, &expires); err != nil {
		return auth.TokenRecord{}, err
	}
	parsed, err := auth.ParseScopes(scopes)
	if err != nil {
		return auth.TokenRecord{}, fmt.Errorf("token %s: %w", rec.ID, err)
	}
	rec.Scopes = parsed
	rec.Created = rec.Created.UTC()
	if expires != nil {
		rec.Expires = expires.UTC()
	}
	return rec, nil
}

// Get implements auth.TokenStore.
func (s *Tokens) Get(ctx context.Context, id string) (auth.TokenRecord, error) {
	rec, err := scanToken(s.db.pool.QueryRow(ctx, "SELECT "+tokenColumns+" FROM tokens WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.TokenRecord{}, fmt.Errorf("token %s: %w", id, fs.ErrNotExist)
	}
	return rec, wrap("reading token", err)
}

// List implements auth.TokenStore.
func (s *Tokens) List(ctx context.Context) ([]auth.TokenRecord, error) {
	rows, err := s.db.pool.Query(ctx, "SELECT "+tokenColumns+" FROM tokens ORDER BY created_at, id")
	if err != nil {
		return nil, wrap("listing tokens", err)
	}
	recs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (auth.TokenRecord, error) { return scanToken(r) })
	return recs, wrap("listing tokens", err)
}

// Insert implements auth.TokenStore.
func (s *Tokens) Insert(ctx context.Context, rec auth.TokenRecord) error {
	scopes := make([]string, len(rec.Scopes))
	for i, sc := range rec.Scopes {
		scopes[i] = sc.String()
	}
	var expires *time.Time
	if !rec.Expires.IsZero() {
		e := rec.Expires.UTC()
		expires = &e
	}
	_, err := s.db.pool.Exec(ctx, "INSERT INTO tokens ("+tokenColumns+") VALUES ($1, $2, $3, $4, $5, $6)",
		rec.ID, rec.Name, scopes, rec.SecretHash, rec.Created.UTC(), expires)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		return fmt.Errorf("token %q: %w", rec.Name, auth.ErrNameTaken)
	}
	if err == nil {
		s.db.notify(ctx, ChannelTokens, rec.ID)
	}
	return wrap("storing token", err)
}

// Delete implements auth.TokenStore: an id wins over a name.
func (s *Tokens) Delete(ctx context.Context, idOrName string) (auth.TokenRecord, error) {
	rec, err := scanToken(s.db.pool.QueryRow(ctx, `
		DELETE FROM tokens WHERE id = (
			SELECT id FROM tokens WHERE id = $1 OR name = $1
			ORDER BY (id = $1) DESC LIMIT 1
		) RETURNING `+tokenColumns, idOrName))
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.TokenRecord{}, fmt.Errorf("token %q: %w", idOrName, fs.ErrNotExist)
	}
	if err != nil {
		return auth.TokenRecord{}, wrap("revoking token", err)
	}
	s.db.notify(ctx, ChannelTokens, rec.ID)
	return rec, nil
}
