package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/modgate/modgate/internal/ledger"
	"github.com/modgate/modgate/internal/ledger/ledgertest"
	"github.com/modgate/modgate/internal/state/postgres"
	"github.com/modgate/modgate/internal/testenv"
)

// migrated opens a fresh, migrated database.
func migrated(t *testing.T) (*postgres.DB, string) {
	t.Helper()
	dsn := testenv.PostgresDSN(t)
	db := open(t, dsn)
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db, dsn
}

func TestLedgerConformance(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) ledger.Backend {
		db, _ := migrated(t)
		return db.Ledger()
	})
}

// TestLedgerAcrossReplicas: replica A records a private version; replica B,
// with connections of its own, refuses the same version with other
// content (a moved tag), and so does A.
func TestLedgerAcrossReplicas(t *testing.T) {
	dbA, dsn := migrated(t)
	dbB := open(t, dsn)
	ctx := context.Background()
	la, err := ledger.Open(ledger.Config{Patterns: []string{"corp.example.com"}, Backend: dbA.Ledger()})
	if err != nil {
		t.Fatal(err)
	}
	lb, err := ledger.Open(ledger.Config{Patterns: []string{"corp.example.com"}, Backend: dbB.Ledger()})
	if err != nil {
		t.Fatal(err)
	}
	first := []byte("module corp.example.com/lib\n")
	moved := []byte("module corp.example.com/lib\n\nrequire corp.example.com/evil v1.0.0\n")
	if err := la.CheckMod(ctx, "corp.example.com/lib", "v1.0.0", first); err != nil {
		t.Fatalf("replica A records: %v", err)
	}
	if err := lb.CheckMod(ctx, "corp.example.com/lib", "v1.0.0", moved); !errors.Is(err, ledger.ErrMoved) {
		t.Errorf("replica B checks the moved tag: %v, want ErrMoved", err)
	}
	if err := lb.CheckMod(ctx, "corp.example.com/lib", "v1.0.0", first); err != nil {
		t.Errorf("replica B checks the recorded content: %v", err)
	}
}
