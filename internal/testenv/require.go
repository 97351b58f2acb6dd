package testenv

import (
	"fmt"
	"os"
	"testing"
)

// RequireServersEnv names the environment variable that makes a missing
// optional test dependency (OpenSSH's sshd, root for a tmpfs) a failure
// instead of a skip. .ci/run sets it, so that CI never passes by skipping;
// a developer's `go test ./...` runs without those dependencies.
const RequireServersEnv = "MODGATE_REQUIRE_SERVERS"

// Unavailable ends the test because something it needs is missing on
// this machine: a skip that says what is missing and how to get it, or,
// when MODGATE_REQUIRE_SERVERS=1, a failure.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequireServersEnv) == "1" {
		t.Fatalf("%s (%s=1: required)", msg, RequireServersEnv)
	}
	t.Skipf("SKIPPED, NOT TESTED: %s (set %s=1 to make this a failure, as .ci/run does)", msg, RequireServersEnv)
}
