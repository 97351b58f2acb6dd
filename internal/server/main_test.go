package server_test

import (
	"os"
	"testing"

	"github.com/modgate/modgate/internal/testenv"
)

// TestMain keeps the tests hermetic: dials outside loopback fail.
func TestMain(m *testing.M) {
	testenv.GuardNetwork()
	code := m.Run()
	testenv.StopPostgres()
	os.Exit(code)
}
