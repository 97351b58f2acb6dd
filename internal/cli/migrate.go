package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/state/postgres"
)

const migrateUsage = `usage: modgate migrate [--config FILE] [--import DATA_DIR]

Migrate applies the schema migrations of the shared state's PostgreSQL
database (state.postgres in the configuration) that it does not have yet,
and prints each one it applied. modgate serve applies them at start too;
migrate runs them on their own, for example before a rolling upgrade. Any
number of replicas may migrate at once: each migration is applied once.

--import DATA_DIR then copies the state of a single modgate's data
directory into the database: tokens, the private-module ledger, verified
tree heads, first-seen times and licence results. What the database holds
already wins (a ledger hash that contradicts it is reported, exit 1); the
files are not changed; running it again adds nothing. Stop the single
modgate first. (Its module files go to the new storage separately.)

Flags:
`

// openStateDB opens and migrates the shared state's database named by
// cfg.state.postgres, for the subcommands that change shared state.
func openStateDB(ctx context.Context, cfg config.Config) (*postgres.DB, error) {
	dsn, err := cfg.PostgresDSN()
	if err != nil {
		return nil, err
	}
	db, err := postgres.Open(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Migrate implements `modgate migrate`. It returns 0 when the schema is up
// to date (whether or not it applied anything), 1 when the database cannot
// be reached or a migration fails, and 2 for bad arguments or a
// configuration that does not load, validate, or name a database.
func Migrate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return migrate(ctx, args, stdout, stderr, tokenDeps{getenv: os.Getenv, goEnv: config.ReadGoEnv, now: time.Now})
}

func migrate(ctx context.Context, args []string, stdout, stderr io.Writer, deps tokenDeps) int {
	const prog = "modgate migrate"
	fset := newFlagSet(prog, migrateUsage, stderr)
	configPath := fset.String("config", deps.getenv("MODGATE_CONFIG"), "read the configuration from `FILE` (also MODGATE_CONFIG)")
	importDir := fset.String("import", "", "copy the state of the single-node data directory `DATA_DIR` into the database")
	positional, status, ok := parseInterspersed(fset, args)
	if !ok {
		return status
	}
	if len(positional) != 0 {
		fmt.Fprintf(stderr, "%s: want no arguments, got %q\n", prog, positional)
		return 2
	}
	cfg, err := tokenConfig(ctx, *configPath, "", deps)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 2
	}
	if !cfg.PostgresEnabled() {
		fmt.Fprintf(stderr, "%s: no database: state.postgres.dsn_env or dsn_file is not set, so the state is in files under %s and has no schema to migrate\n", prog, cfg.DataDir)
		return 2
	}
	dsn, err := cfg.PostgresDSN()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 2
	}
	db, err := postgres.Open(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	defer db.Close()
	applied, err := db.ApplyMigrations(ctx)
	for _, m := range applied {
		fmt.Fprintf(stdout, "applied %s\n", m.Name)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "schema up to date, nothing to apply")
	}
	if *importDir != "" {
		if fi, err := os.Stat(*importDir); err != nil || !fi.IsDir() {
			fmt.Fprintf(stderr, "%s: --import %s: not a directory\n", prog, *importDir)
			return 2
		}
		n, err := db.ImportDataDir(ctx, *importDir)
		fmt.Fprintf(stdout, "imported from %s: %v\n", *importDir, n)
		if err != nil {
			fmt.Fprintf(stderr, "%s: importing %s: %v\n", prog, *importDir, err)
			return 1
		}
	}
	return 0
}
