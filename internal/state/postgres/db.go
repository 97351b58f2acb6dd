package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modgate/modgate/internal/state"
)

// ErrUnavailable matches every error of an operation that could not reach
// PostgreSQL (refused or dropped connections, a server shutting down): the
// operation may succeed when the database is back. Other errors (a
// constraint, a bug) are not retried.
var ErrUnavailable = state.ErrUnavailable

// A DB is a pool of connections to the PostgreSQL database that holds the
// state modgate's replicas share. It is safe for concurrent use. The pool
// reconnects by itself: after the database restarts, the next operation
// succeeds without reopening the DB.
type DB struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	dsn  string
}

// Open connects to the database named by dsn (a PostgreSQL URL or
// key=value connection string) and checks that it answers. It does not
// migrate; call Migrate. Errors never contain the DSN's password.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors may quote the DSN; say only what is wrong.
		return nil, errors.New("postgres: the DSN is not a valid PostgreSQL connection string (postgres://USER:PASSWORD@HOST:PORT/DB or key=value pairs)")
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "modgate"
	}
	cfg.HealthCheckPeriod = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, wrap("connecting to PostgreSQL", err)
	}
	db := &DB{pool: pool, log: log.With("component", "postgres"), dsn: dsn}
	if err := db.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Ping checks that the database answers, for /readyz.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return wrap("connecting to PostgreSQL", err)
	}
	return nil
}

// Pool returns the connection pool, for the packages in this module that
// keep their own tables (the audit chain).
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Close closes every connection. Operations in flight fail.
func (db *DB) Close() { db.pool.Close() }

// wrap adds context to err and makes it match ErrUnavailable when it
// says the database could not be reached.
func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if isUnavailable(err) {
		return &unavailableError{what: what, err: oneLine{err}}
	}
	return fmt.Errorf("%s: %w", what, oneLine{err})
}

// unavailableError is an error matching ErrUnavailable. Clients see only
// that the database is unavailable, not its address.
type unavailableError struct {
	what string
	err  error
}

func (e *unavailableError) Error() string {
	return e.what + ": " + ErrUnavailable.Error() + ": " + e.err.Error()
}

func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// PublicError is the text httperr shows clients.
func (e *unavailableError) PublicError() string {
	return "the shared state database is unavailable (" + e.what + "); try again shortly"
}

// oneLine is an error whose message fits on one line: pgx lists every
// address it tried on a line of its own.
type oneLine struct{ err error }

func (e oneLine) Error() string {
	msg := strings.ReplaceAll(e.err.Error(), ":\n", ": ")
	return strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", "; ")), " ")
}

func (e oneLine) Unwrap() error { return e.err }

// isUnavailable reports whether err is a failure to reach the database
// rather than an answer from it.
func isUnavailable(err error) bool {
	if errors.Is(err, ErrUnavailable) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P01-57P03: the server is
		// shutting down or starting.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	// Everything else pgx returns without a server error is a network or
	// connection failure (dial refused, connection reset, closed pool).
	var connErr *pgconn.ConnectError
	return errors.As(err, &connErr) || pgconn.SafeToRetry(err) || isNetwork(err)
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
