package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrationFiles are the schema migrations, migrations/NNNN_name.sql,
// applied in the order of their numbers. Numbers 0001-0099 are the shared
// state's (tokens, ledger, ages, licences, tree heads, webhook deliveries,
// leases), 0100-0199 the audit chain's. A migration, once released, never
// changes: a change is a new migration.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the key of the session-level advisory lock held while
// migrating, so that replicas starting at once apply each migration once:
// the second waits, then finds nothing left to do.
const migrationLock int64 = 0x6d6f646761746531 // "modgate1"

// A Migration is one schema change.
type Migration struct {
	Version int    // the file's number
	Name    string // the file's name: "0001_fill_leases.sql"
	sql     string
}

func (m Migration) String() string { return m.Name }

// Migrate applies the migrations the database does not have yet, each in
// one transaction, under an advisory lock.
func (db *DB) Migrate(ctx context.Context) error {
	_, err := db.ApplyMigrations(ctx)
	return err
}

// ApplyMigrations is Migrate that also returns the migrations it applied
// (none when the schema is up to date), for `modgate migrate`.
func (db *DB) ApplyMigrations(ctx context.Context) ([]Migration, error) {
	ms, err := readMigrations(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	return db.apply(ctx, ms)
}

// readMigrations reads and orders the NNNN_name.sql files of dir.
func readMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("postgres: reading migrations: %w", err)
	}
	var ms []Migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || len(num) != 4 || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("postgres: migration %q: want NNNN_name.sql", name)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("postgres: migrations %q and %q have the same number", other, name)
		}
		seen[v] = name
		data, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("postgres: reading migration %s: %w", name, err)
		}
		ms = append(ms, Migration{Version: v, Name: name, sql: string(data)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	return ms, nil
}

// apply applies the migrations of ms that the database lacks.
func (db *DB) apply(ctx context.Context, ms []Migration) ([]Migration, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, wrap("migrating: connecting to PostgreSQL", err)
	}
	defer conn.Release()
	// A session lock: released by the unlock below, or by the server
	// when this connection dies, so a crashed migrator blocks no one.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return nil, wrap("migrating: taking the migration lock", err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock); err != nil {
			// The connection is broken, which released the lock too;
			// don't hand it back to the pool.
			conn.Conn().Close(context.Background())
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return nil, wrap("migrating: creating schema_migrations", err)
	}
	rows, err := conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, wrap("migrating: reading schema_migrations", err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, wrap("migrating: reading schema_migrations", err)
	}
	var applied []Migration
	for _, m := range ms {
		if slices.Contains(have, int32(m.Version)) {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name)
			return err
		})
		if err != nil {
			return applied, wrap("migrating: applying "+m.Name, err)
		}
		db.log.Info("applied schema migration", "migration", m.Name)
		applied = append(applied, m)
	}
	return applied, nil
}

// isNetwork reports whether err is a failure of the connection itself.
func isNetwork(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}
