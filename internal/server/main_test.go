package server_test

import (
	"os"
	"testing"

	"github.com/modgate/modgate/internal/testenv"
)

// TestMain keeps the tests hermetic (dials outside loopback fail) and
// stops the LDAP server the tests may have started.
func TestMain(m *testing.M) {
	testenv.GuardNetwork()
	code := m.Run()
	testenv.StopShared()
	testenv.StopPostgres()
	os.Exit(code)
}
