package audit_test

import (
	"testing"

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
