package postgres

import (
	"context"
	"errors"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// vulnDBLock is the key of the advisory lock a replica holds while it
// syncs the vulnerability database.
const vulnDBLock int64 = 0x6d6f646761746532 // "modgate2"

// VulnDB is the vulndb.SharedCopy of replicas: a session advisory lock
// (released by the server if the holder's connection dies) and the table
// vulndb_copy. A save notifies ChannelVulnDB so that the other replicas
// load it at once.
type VulnDB struct{ db *DB }

// VulnDB returns the database's shared vulnerability database copy.
func (db *DB) VulnDB() *VulnDB { return &VulnDB{db: db} }

// TryLock implements vulndb.SharedCopy.
func (v *VulnDB) TryLock(ctx context.Context) (func(), bool, error) {
	conn, err := v.db.pool.Acquire(ctx)
	if err != nil {
		return nil, false, wrap("taking the vulnerability database lock", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", vulnDBLock).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, wrap("taking the vulnerability database lock", err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return func() {
		if _, err := conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", vulnDBLock); err != nil {
			destroy(conn) // the lock went with the connection
			return
		}
		conn.Release()
	}, true, nil
}

// Version implements vulndb.SharedCopy.
func (v *VulnDB) Version(ctx context.Context) (int64, error) {
	var n int64
	err := v.db.pool.QueryRow(ctx, "SELECT version FROM vulndb_copy WHERE id = 1").Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return n, wrap("reading the vulnerability database copy", err)
}

// Load implements vulndb.SharedCopy.
func (v *VulnDB) Load(ctx context.Context) (int64, []byte, error) {
	var n int64
	var data []byte
	err := v.db.pool.QueryRow(ctx, "SELECT version, data FROM vulndb_copy WHERE id = 1").Scan(&n, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, errors.New("no shared vulnerability database copy")
	}
	return n, data, wrap("reading the vulnerability database copy", err)
}

// Save implements vulndb.SharedCopy.
func (v *VulnDB) Save(ctx context.Context, data []byte) (int64, error) {
	var n int64
	err := v.db.pool.QueryRow(ctx, `INSERT INTO vulndb_copy AS c (id, version, data) VALUES (1, 1, $1)
		ON CONFLICT (id) DO UPDATE SET version = c.version + 1, data = EXCLUDED.data, saved_at = now()
		RETURNING version`, data).Scan(&n)
	if err != nil {
		return 0, wrap("saving the vulnerability database copy", err)
	}
	v.db.notify(ctx, ChannelVulnDB, strconv.FormatInt(n, 10))
	return n, nil
}
