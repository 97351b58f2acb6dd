package postgres_test

import (
	"testing"

	"github.com/modgate/modgate/internal/audit/audittest"
	"github.com/modgate/modgate/internal/testenv"
)

// TestAuditChain runs the audit.Chain conformance suite against
// PostgreSQL: three Logs (replicas) appending to one chain at once, an
// UPDATE and a DELETE of a row named by audit verify, and the server
// stopped while records are written (spooled, then appended when it is
// back; with fail_closed, refused meanwhile). The subtests share one
// private cluster (it is stopped and started), each with a database of
// its own.
func TestAuditChain(t *testing.T) {
	pg := testenv.NewPostgres(t)
	audittest.RunChain(t, func(t *testing.T) audittest.Backend {
		db := open(t, pg.DSN(t))
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		exec := func(t *testing.T, sql string, args ...any) {
			t.Helper()
			tag, err := db.Pool().Exec(t.Context(), sql, args...)
			if err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
			if tag.RowsAffected() != 1 {
				t.Fatalf("%s: %d rows affected, want 1", sql, tag.RowsAffected())
			}
		}
		return audittest.Backend{
			Chain: db.AuditChain(),
			EditRow: func(t *testing.T, seq int64, old, new string) {
				exec(t, `UPDATE audit_records SET line = replace(line, $2, $3) WHERE seq = $1 AND strpos(line, $2) > 0`, seq, old, new)
			},
			DeleteRow: func(t *testing.T, seq int64) {
				exec(t, `DELETE FROM audit_records WHERE seq = $1`, seq)
			},
			Down: func(t *testing.T) { pg.Stop(t) },
			Up:   func(t *testing.T) { pg.Start(t) },
		}
	})
}
