package postgres_test

import (
	"os"
	"testing"

	"github.com/modgate/modgate/internal/testenv"
)

// TestMain keeps the tests hermetic and stops the PostgreSQL cluster the
// tests share.
func TestMain(m *testing.M) {
	testenv.GuardNetwork()
	code := m.Run()
	testenv.StopPostgres()
	os.Exit(code)
}
