package postgres_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/audit"

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

// TestAuditChainColumns: the seq, hash and replica columns repeat the
// record's own fields; changing one of them alone is an edited row too.
func TestAuditChainColumns(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	db := open(t, dsn)
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	key, err := db.AuditSigningKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	again, err := db.AuditSigningKey(t.Context())
	if err != nil || !again.Equal(key) {
		t.Fatalf("a second replica got another key (%v)", err)
	}
	pub, ok, err := db.AuditPublicKey(t.Context())
	if err != nil || !ok || !pub.Equal(key.Public()) {
		t.Fatalf("AuditPublicKey = %v, %v: not the signing key's", ok, err)
	}
	l, err := audit.Open(audit.Config{Dir: t.TempDir(), Chain: db.AuditChain(), SigningKey: key, Replica: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		l.Write(audit.Record{Result: audit.ResultHit})
	}
	l.Close()
	for _, tt := range []struct{ sql, want string }{
		{`UPDATE audit_records SET replica = 'web-2' WHERE seq = 2`, `replica web-2: seq 2: edited record: the row's replica column says "web-2", its record says "web-1"`},
		{`UPDATE audit_records SET hash = repeat('0', 64) WHERE seq = 3`, `replica web-1: seq 3: edited record: the row's hash column does not match`},
	} {
		if _, err := db.Pool().Exec(t.Context(), tt.sql); err != nil {
			t.Fatal(err)
		}
		rep, err := audit.VerifyChain(t.Context(), db.AuditChain(), pub, audit.VerifyOptions{})
		if !errors.Is(err, audit.ErrTampered) || !strings.Contains(rep.String(), tt.want) {
			t.Errorf("after %s: %v\n%s\nwant %q", tt.sql, err, rep, tt.want)
		}
	}
}
