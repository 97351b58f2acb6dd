package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/modgate/modgate/internal/policy"
)

// Ages is the policy.AgeStore of replicas: the tables age_modules and
// age_versions.
type Ages struct{ db *DB }

// Ages returns the database's first-seen store.
func (db *DB) Ages() *Ages { return &Ages{db: db} }

// ObserveList implements policy.AgeStore. In one transaction: the module
// row is inserted if missing (a replica seeing the first list at the same
// time waits for this transaction, then sees the module watched and these
// versions listed), then every version is upserted, getting now as its
// first-seen time only if the module was watched before and the version
// was never listed.
func (a *Ages) ObserveList(ctx context.Context, module string, versions []string, now time.Time) error {
	versions = slices.Compact(slices.Sorted(slices.Values(versions))) // one order: no deadlocks
	err := pgx.BeginFunc(ctx, a.db.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "INSERT INTO age_modules (module, watched_at) VALUES ($1, $2) ON CONFLICT (module) DO NOTHING", module, now)
		if err != nil {
			return err
		}
		watched := tag.RowsAffected() == 0
		var firstSeen *time.Time
		if watched {
			firstSeen = &now
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO age_versions AS v (module, version, listed, first_seen, first_request)
			SELECT $1, ver, true, $3::timestamptz, $4 FROM unnest($2::text[]) AS ver
			ON CONFLICT (module, version) DO UPDATE SET
				listed = true,
				first_seen = CASE WHEN v.listed OR v.first_seen IS NOT NULL THEN v.first_seen ELSE EXCLUDED.first_seen END,
				first_request = COALESCE(v.first_request, EXCLUDED.first_request)`,
			module, versions, firstSeen, now)
		return err
	})
	return wrap("recording version ages", err)
}

// ModuleFacts implements policy.AgeStore.
func (a *Ages) ModuleFacts(ctx context.Context, module string) (map[string]policy.VersionAge, error) {
	rows, err := a.db.pool.Query(ctx, `SELECT version, listed, first_seen, first_request, info_time
		FROM age_versions WHERE module = $1`, module)
	if err != nil {
		return nil, wrap("reading version ages", err)
	}
	defer rows.Close()
	out := make(map[string]policy.VersionAge)
	for rows.Next() {
		var v string
		var listed bool
		var seen, req, info *time.Time
		if err := rows.Scan(&v, &listed, &seen, &req, &info); err != nil {
			return nil, wrap("reading version ages", err)
		}
		out[v] = policy.VersionAge{Listed: listed, FirstSeen: utc(seen), FirstRequest: utc(req), Info: utc(info)}
	}
	return out, wrap("reading version ages", rows.Err())
}

// Record implements policy.AgeStore.
func (a *Ages) Record(ctx context.Context, module, version string, kind policy.AgeSource, t time.Time) (time.Time, error) {
	var col string
	switch kind {
	case policy.SourceFirstRequest:
		col = "first_request"
	case policy.SourceInfo:
		col = "info_time"
	default:
		return time.Time{}, fmt.Errorf("ages: cannot record a time of kind %v", kind)
	}
	var got time.Time
	err := a.db.pool.QueryRow(ctx, `INSERT INTO age_versions AS v (module, version, `+col+`) VALUES ($1, $2, $3)
		ON CONFLICT (module, version) DO UPDATE SET `+col+` = COALESCE(v.`+col+`, EXCLUDED.`+col+`)
		RETURNING `+col, module, version, t).Scan(&got)
	if err != nil {
		return time.Time{}, wrap("recording version age", err)
	}
	return got.UTC(), nil
}

func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
