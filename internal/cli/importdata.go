package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/datadir"
	"github.com/modgate/modgate/internal/server"
)

const importDataUsage = `usage: modgate import-data --from DIR [--config FILE]

Import-data copies the data directory DIR of a single modgate (stopped)
into the shared stores the configuration names, so that replicas serve what
it had: module files into the S3 bucket (storage.type: s3), and, after
applying the schema migrations, the state into PostgreSQL (state.postgres:
tokens, the private-module ledger, verified checksum-database tree heads,
first-seen times, licence results; as modgate migrate --import does).
Nothing already there is replaced: the same content is skipped (run it
again after an interruption), other content is reported as a conflict and
makes it exit 1 once everything else is copied. The audit log stays in DIR:
verify it there.

Flags:
`

// ImportData implements `modgate import-data`: 0 when everything was
// copied or already there, 1 on a conflict or when a store fails, 2 for bad
// arguments or a configuration with nowhere to copy to.
func ImportData(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return importData(ctx, args, stdout, stderr, tokenDeps{getenv: os.Getenv, goEnv: config.ReadGoEnv, now: time.Now})
}

func importData(ctx context.Context, args []string, stdout, stderr io.Writer, deps tokenDeps) int {
	const prog = "modgate import-data"
	fset := newFlagSet(prog, importDataUsage, stderr)
	configPath := fset.String("config", deps.getenv("MODGATE_CONFIG"), "the cluster's configuration `FILE` (also MODGATE_CONFIG)")
	from := fset.String("from", "", "the single modgate's data directory `DIR` to copy from")
	positional, status, ok := parseInterspersed(fset, args)
	if !ok {
		return status
	}
	if len(positional) != 0 {
		fmt.Fprintf(stderr, "%s: want no arguments, got %q\n", prog, positional)
		return 2
	}
	if *from == "" {
		fmt.Fprintf(stderr, "%s: --from DIR is required: the data directory to copy from\n", prog)
		return 2
	}
	cfg, err := tokenConfig(ctx, *configPath, "", deps)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 2
	}
	s3 := cfg.Storage.Type == config.StorageTypeS3
	if !s3 && !cfg.PostgresEnabled() {
		fmt.Fprintf(stderr, "%s: nowhere to copy to: the configuration keeps module files and state in its data directory (set storage.type: s3 and state.postgres)\n", prog)
		return 2
	}
	if abs, err := filepath.Abs(*from); err == nil && !s3 && abs == cfg.DataDir {
		fmt.Fprintf(stderr, "%s: --from %s is the configuration's own data directory\n", prog, *from)
		return 2
	}
	log := slog.New(slog.DiscardHandler)
	failed := false
	if s3 {
		store, err := server.OpenStore(ctx, cfg, log)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			return 1
		}
		if c, ok := store.(io.Closer); ok {
			defer c.Close()
		}
		rep, err := datadir.Import(ctx, *from, datadir.Target{Store: store})
		fmt.Fprintf(stdout, "%s\n", rep)
		switch {
		case errors.Is(err, datadir.ErrConflict):
			for _, c := range rep.Conflicts {
				fmt.Fprintf(stderr, "%s: conflict, left alone: %s\n", prog, c)
			}
			failed = true
		case err != nil:
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			return 1
		}
	}
	if cfg.PostgresEnabled() {
		if _, err := cfg.PostgresDSN(); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			return 2
		}
		db, err := openStateDB(ctx, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			return 1
		}
		defer db.Close()
		// The same copy as `modgate migrate --import`.
		n, err := db.ImportDataDir(ctx, *from)
		fmt.Fprintf(stdout, "state copied: %s\n", n)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			failed = true
		}
	}
	if failed {
		return 1
	}
	return 0
}
