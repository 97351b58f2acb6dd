package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	xsumdb "golang.org/x/mod/sumdb"

	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/ledger"
	"github.com/modgate/modgate/internal/policy"
	"github.com/modgate/modgate/internal/sumdb"
)

// Imported counts what ImportDataDir added to the database.
type Imported struct {
	Tokens, LedgerRecords, TreeHeads, Versions, Licenses int
}

func (n Imported) String() string {
	return fmt.Sprintf("%d tokens, %d ledger records, %d tree heads, %d version ages, %d licence results",
		n.Tokens, n.LedgerRecords, n.TreeHeads, n.Versions, n.Licenses)
}

// ImportDataDir copies the shared state of a single modgate's data
// directory into the database: tokens ({dir}/auth), the ledger
// ({dir}/ledger), verified tree heads ({dir}/sumdb/{name}/latest), first-seen
// times ({dir}/policy) and licence results ({dir}/policy/licenses). What
// the database holds already wins: a ledger record keeps its first hash (a
// different hash in the file is reported as an error, after everything
// else is imported), a token id or name already there is skipped, and a
// tree head only moves forwards. It is safe to run again. The files are
// read, not changed (a torn last line of the ages file is cut off, as at
// every start).
func (db *DB) ImportDataDir(ctx context.Context, dir string) (Imported, error) {
	var n Imported
	var conflicts []error

	tokens, err := auth.ReadTokenFile(filepath.Join(dir, "auth"))
	if err != nil {
		return n, err
	}
	for _, rec := range tokens {
		switch err := db.Tokens().Insert(ctx, rec); {
		case err == nil:
			n.Tokens++
		case errors.Is(err, auth.ErrNameTaken):
		default:
			return n, err
		}
	}

	records, err := ledger.ReadDir(filepath.Join(dir, "ledger"))
	if err != nil {
		return n, err
	}
	for key, rec := range records {
		got, created, err := db.Ledger().Record(ctx, key, rec)
		if err != nil {
			return n, err
		}
		if created {
			n.LedgerRecords++
		} else if got.Hash != rec.Hash {
			conflicts = append(conflicts, fmt.Errorf("ledger: %s is %s in %s but %s in the database (recorded %s); the database's is kept",
				key, rec.Hash, dir, got.Hash, got.At.Format(time.RFC3339)))
		}
	}

	heads, err := os.ReadDir(filepath.Join(dir, "sumdb"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return n, err
	}
	for _, e := range heads {
		if !e.IsDir() {
			continue
		}
		head, err := os.ReadFile(filepath.Join(dir, "sumdb", e.Name(), "latest"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return n, err
		}
		moved, err := db.importHead(ctx, e.Name(), head)
		if err != nil {
			return n, err
		}
		if moved {
			n.TreeHeads++
		}
	}

	ages, err := policy.ReadAgesDir(filepath.Join(dir, "policy"))
	if err != nil {
		return n, err
	}
	if n.Versions, err = db.importAges(ctx, ages); err != nil {
		return n, err
	}

	lics, err := policy.ReadLicenseDir(filepath.Join(dir, "policy", "licenses"))
	if err != nil {
		return n, err
	}
	for mod, lic := range lics {
		if _, ok, err := db.Licenses().GetLicense(ctx, mod); err != nil {
			return n, err
		} else if ok {
			continue
		}
		if err := db.Licenses().PutLicense(ctx, mod, lic); err != nil {
			return n, err
		}
		n.Licenses++
	}
	return n, errors.Join(conflicts...)
}

// importHead stores head for name unless the database has a head of a
// tree at least as large. It reports whether it stored it.
func (db *DB) importHead(ctx context.Context, name string, head []byte) (bool, error) {
	h := db.Heads()
	for range 3 {
		cur, err := h.ReadHead(ctx, name)
		if err != nil {
			return false, err
		}
		if string(cur) == string(head) {
			return false, nil
		}
		switch err := h.SwapHead(ctx, name, cur, head); {
		case err == nil:
			return true, nil
		case errors.Is(err, sumdb.ErrHeadRegress):
			return false, nil
		case errors.Is(err, xsumdb.ErrWriteConflict):
			continue // a replica advanced it meanwhile
		default:
			return false, fmt.Errorf("tree head of %s: %w", name, err)
		}
	}
	return false, fmt.Errorf("tree head of %s: it keeps changing; run the import again", name)
}

// importAges adds the versions of ages the database does not know, and
// marks their modules watched. Facts the database has win.
func (db *DB) importAges(ctx context.Context, ages policy.AgesExport) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		for m := range ages.Watched {
			if _, err := tx.Exec(ctx, "INSERT INTO age_modules (module, watched_at) VALUES ($1, now()) ON CONFLICT DO NOTHING", m); err != nil {
				return err
			}
		}
		for m, versions := range ages.Versions {
			for v, f := range versions {
				tag, err := tx.Exec(ctx, `INSERT INTO age_versions (module, version, listed, first_seen, first_request, info_time)
					VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
					m, v, f.Listed, nullTime(f.FirstSeen), nullTime(f.FirstRequest), nullTime(f.Info))
				if err != nil {
					return err
				}
				n += int(tag.RowsAffected())
			}
		}
		return nil
	})
	return n, wrap("importing version ages", err)
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
