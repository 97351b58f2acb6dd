package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/audit"

	"github.com/modgate/modgate/internal/audit/audittest"
)

// TestMemChain runs the Chain conformance suite against the in-memory
// chain, which also exercises the Log's shared-chain writer and spool.
func TestMemChain(t *testing.T) {
	audittest.RunChain(t, func(t *testing.T) audittest.Backend {
		m := audittest.NewMemChain()
		return audittest.Backend{
			Chain: m,
			EditRow: func(t *testing.T, seq int64, old, new string) {
				if !m.EditRow(seq, old, new) {
					t.Fatalf("no row %d holding %s", seq, old)
				}
			},
			DeleteRow: func(t *testing.T, seq int64) {
				if !m.DeleteRow(seq) {
					t.Fatalf("no row %d", seq)
				}
			},
			Down: func(*testing.T) { m.SetDown(true) },
			Up:   func(*testing.T) { m.SetDown(false) },
		}
	})
}

// TestSharedLostCommitAck: an append that committed but reported a
// failure (the connection broke before the acknowledgement) is spooled,
// and the drain finds it in the chain instead of appending it twice.
func TestSharedLostCommitAck(t *testing.T) {
	m := audittest.NewMemChain()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	spool := t.TempDir()
	l, err := audit.Open(audit.Config{Dir: t.TempDir(), SpoolDir: spool, Chain: m, SigningKey: key, SyncInterval: 20 * time.Millisecond, Replica: "r"})
	if err != nil {
		t.Fatal(err)
	}
	m.LoseAcks(1)
	l.Write(audit.Record{Result: audit.ResultHit, Module: "example.com/once"})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		des, _ := os.ReadDir(spool)
		if l.Healthy() == nil && len(des) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the spool did not drain (health %v, %d files)", l.Healthy(), len(des))
		}
	}
	l.Write(audit.Record{Result: audit.ResultHit, Module: "example.com/twice"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyChain(context.Background(), m, pub, audit.VerifyOptions{})
	if err != nil || rep.Records != 2 {
		t.Fatalf("verify = %v with %d records, want 2 (the first once)\n%s", err, rep.Records, rep)
	}
}
