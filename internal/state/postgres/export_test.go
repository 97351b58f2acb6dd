package postgres

import (
	"context"
	"io/fs"
)

// ApplyFrom applies the migrations in dir of fsys instead of the embedded
// ones, for tests of the runner.
func (db *DB) ApplyFrom(ctx context.Context, fsys fs.FS, dir string) ([]Migration, error) {
	ms, err := readMigrations(fsys, dir)
	if err != nil {
		return nil, err
	}
	return db.apply(ctx, ms)
}
