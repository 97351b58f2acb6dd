package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/audit"
	"github.com/modgate/modgate/internal/state/postgres"
	"github.com/modgate/modgate/internal/testenv"
)

// TestAuditSharedChain: with state.postgres configured, `modgate audit
// verify` and `audit query` read the replicas' shared chain from
// PostgreSQL: verify passes and names the replicas, query shows whose
// record is whose, and an edited row is named by its seq and replica.
func TestAuditSharedChain(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	dataDir := t.TempDir()
	cfgFile := filepath.Join(t.TempDir(), "modgate.yaml")
	if err := os.WriteFile(cfgFile, []byte("data_dir: "+dataDir+"\nstate:\n  postgres:\n    dsn_env: TEST_PG_DSN\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MODGATE_CONFIG": cfgFile, "TEST_PG_DSN": dsn}
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		deps := auditDeps{getenv: func(k string) string { return env[k] }, now: time.Now}
		code := runAudit(t.Context(), args, &stdout, &stderr, deps)
		return code, stdout.String(), stderr.String()
	}

	db, err := postgres.Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	key, err := db.AuditSigningKey(t.Context()) // as the replicas do without audit.key_file
	if err != nil {
		t.Fatal(err)
	}
	for i, replica := range []string{"host-a:11", "host-b:22"} {
		l, err := audit.Open(audit.Config{Dir: t.TempDir(), Chain: db.AuditChain(), Replica: replica, SigningKey: key})
		if err != nil {
			t.Fatal(err)
		}
		for n := range 3 {
			l.Write(audit.Record{Result: audit.ResultHit, Module: "example.com/m", Version: fmt.Sprintf("v1.%d.%d", i, n), File: "zip"})
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}

	code, stdout, stderr := run("verify")
	if code != 0 || !strings.HasPrefix(stdout, "ok: 6 records in PostgreSQL table audit_records") || !strings.Contains(stdout, "written by host-a:11, host-b:22") {
		t.Fatalf("verify = %d\n%s%s\nwant ok, 6 records by both replicas", code, stdout, stderr)
	}
	code, stdout, stderr = run("query", "--module", "example.com/m")
	if code != 0 || !strings.Contains(stdout, "REPLICA") || strings.Count(stdout, "host-b:22") != 3 {
		t.Fatalf("query = %d\n%s%s\nwant 3 records of host-b:22 with a REPLICA column", code, stdout, stderr)
	}

	if _, err := db.Pool().Exec(t.Context(), `UPDATE audit_records SET line = replace(line, 'v1.1.1', 'v1.1.9') WHERE seq = 5`); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = run("verify")
	if code != 1 || !strings.Contains(stdout, "replica host-b:22: seq 5: edited record") {
		t.Fatalf("verify after an UPDATE = %d\n%s\nwant 1 naming seq 5 of host-b:22", code, stdout)
	}
}
