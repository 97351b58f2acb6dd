package ledger_test

import (
	"testing"

	"github.com/modgate/modgate/internal/ledger"
	"github.com/modgate/modgate/internal/ledger/ledgertest"
)

// TestFileBackend runs the backend conformance suite against the ledger
// file, through a Ledger opened on a directory.
func TestFileBackend(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) ledger.Backend { return ledger.FileBackendForTest(t.TempDir()) })
}
