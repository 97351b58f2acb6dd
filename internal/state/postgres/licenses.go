package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/policy"
)

// Licenses is the policy.LicenseStore of replicas: the table licenses.
type Licenses struct{ db *DB }

// Licenses returns the database's licence result store.
func (db *DB) Licenses() *Licenses { return &Licenses{db: db} }

// GetLicense implements policy.LicenseStore.
func (l *Licenses) GetLicense(ctx context.Context, mod module.Version) (policy.License, bool, error) {
	var data []byte
	err := l.db.pool.QueryRow(ctx, "SELECT result FROM licenses WHERE module = $1 AND version = $2", mod.Path, mod.Version).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return policy.License{}, false, nil
	}
	if err != nil {
		return policy.License{}, false, wrap("reading licence result", err)
	}
	var lic policy.License
	if err := json.Unmarshal(data, &lic); err != nil {
		return policy.License{}, false, fmt.Errorf("licence result of %s: %w", mod, err)
	}
	return lic, true, nil
}

// PutLicense implements policy.LicenseStore.
func (l *Licenses) PutLicense(ctx context.Context, mod module.Version, lic policy.License) error {
	data, err := json.Marshal(lic)
	if err != nil {
		return err
	}
	_, err = l.db.pool.Exec(ctx, `INSERT INTO licenses (module, version, result) VALUES ($1, $2, $3)
		ON CONFLICT (module, version) DO NOTHING`, mod.Path, mod.Version, data)
	return wrap("storing licence result", err)
}
