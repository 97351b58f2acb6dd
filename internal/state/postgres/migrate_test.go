package postgres_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/modgate/modgate/internal/state/postgres"
	"github.com/modgate/modgate/internal/testenv"
)

func open(t *testing.T, dsn string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// TestMigrateConcurrently starts eight "replicas" (each with connections
// of its own) migrating one empty database at once: every migration is
// applied exactly once, and every replica returns with the schema
// complete.
func TestMigrateConcurrently(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	const replicas = 8
	dbs := make([]*postgres.DB, replicas)
	for i := range dbs {
		dbs[i] = open(t, dsn)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		applied = map[string]int{}
		errs    []error
	)
	start := make(chan struct{})
	for _, db := range dbs {
		wg.Go(func() {
			<-start
			ms, err := db.ApplyFrom(t.Context(), os.DirFS("testdata"), "migrations")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			for _, m := range ms {
				applied[m.Name]++
			}
			// Whoever returns, returns with the schema complete.
			var n int
			if err := db.Pool().QueryRow(t.Context(), "SELECT count(*) FROM second").Scan(&n); err != nil {
				errs = append(errs, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("migrating concurrently: %v", errors.Join(errs...))
	}
	want := map[string]int{"0001_first.sql": 1, "0002_second.sql": 1}
	if len(applied) != len(want) || applied["0001_first.sql"] != 1 || applied["0002_second.sql"] != 1 {
		t.Errorf("migrations applied = %v, want each once: %v", applied, want)
	}
	var rows int
	if err := dbs[0].Pool().QueryRow(t.Context(), "SELECT count(*) FROM first").Scan(&rows); err != nil || rows != 2 {
		t.Errorf("rows in first = %d, %v; want 2 (one per migration)", rows, err)
	}
}

// TestMigrateEmbedded applies modgate's own migrations twice: the second
// run finds nothing to do.
func TestMigrateEmbedded(t *testing.T) {
	db := open(t, testenv.PostgresDSN(t))
	ms, err := db.ApplyMigrations(t.Context())
	if err != nil {
		t.Fatalf("ApplyMigrations: %v", err)
	}
	if len(ms) == 0 || ms[0].Version != 1 {
		t.Fatalf("ApplyMigrations applied %v, want 0001 first", ms)
	}
	again, err := db.ApplyMigrations(t.Context())
	if err != nil || len(again) != 0 {
		t.Errorf("ApplyMigrations again = %v, %v; want nothing applied", again, err)
	}
	var n int
	if err := db.Pool().QueryRow(t.Context(), "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != len(ms) {
		t.Errorf("schema_migrations has %d rows (%v), want %d", n, err, len(ms))
	}
}

// TestMigrateFailureRollsBack checks that a migration that fails half way
// leaves nothing behind: not its first statement, not a record of it.
func TestMigrateFailureRollsBack(t *testing.T) {
	db := open(t, testenv.PostgresDSN(t))
	fsys := fstest.MapFS{
		"m/0001_ok.sql":  {Data: []byte("CREATE TABLE ok (n integer);")},
		"m/0002_bad.sql": {Data: []byte("CREATE TABLE half (n integer); SELECT no_such_function();")},
	}
	ms, err := db.ApplyFrom(t.Context(), fsys, "m")
	if err == nil {
		t.Fatalf("ApplyFrom with a broken migration succeeded")
	}
	if len(ms) != 1 || ms[0].Name != "0001_ok.sql" {
		t.Errorf("applied = %v, want only 0001_ok.sql", ms)
	}
	var exists bool
	db.Pool().QueryRow(t.Context(), "SELECT to_regclass('half') IS NOT NULL").Scan(&exists)
	if exists {
		t.Errorf("table of the failed migration exists; want it rolled back")
	}
	var n int
	db.Pool().QueryRow(t.Context(), "SELECT count(*) FROM schema_migrations WHERE version = 2").Scan(&n)
	if n != 0 {
		t.Errorf("failed migration recorded as applied")
	}
}

// TestMigrationNames refuses files that do not follow NNNN_name.sql.
func TestMigrationNames(t *testing.T) {
	db := open(t, testenv.PostgresDSN(t))
	for _, name := range []string{"1_short.sql", "0001.sql", "abcd_x.sql", "0001_x.txt"} {
		fsys := fstest.MapFS{"m/" + name: {Data: []byte("SELECT 1")}}
		if _, err := db.ApplyFrom(context.Background(), fsys, "m"); err == nil {
			t.Errorf("migration file %q accepted, want an error", name)
		}
	}
}

// TestOpenUnreachable names the problem and matches ErrUnavailable, and
// never repeats the DSN's password.
func TestOpenUnreachable(t *testing.T) {
	pg := testenv.NewPostgres(t)
	dsn := pg.DSN(t)
	pg.Stop(t)
	_, err := postgres.Open(t.Context(), dsn+"&password=s3cret", nil)
	if !errors.Is(err, postgres.ErrUnavailable) {
		t.Fatalf("Open of a stopped server = %v, want ErrUnavailable", err)
	}
	if containsSecret(err.Error()) {
		t.Errorf("error %q contains the password", err)
	}
	_, err = postgres.Open(t.Context(), "postgres://u:s3cret@127.0.0.1:bad/x", nil)
	if err == nil || containsSecret(err.Error()) {
		t.Errorf("Open of a malformed DSN = %v, want an error without the password", err)
	}
}

func containsSecret(s string) bool { return strings.Contains(s, "s3cret") }
