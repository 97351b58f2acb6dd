package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestUnavailable runs a test that lacks a dependency in a child process:
// it is skipped with a message saying so, and fails under
// MODGATE_REQUIRE_SERVERS=1.
func TestUnavailable(t *testing.T) {
	if os.Getenv("TESTENV_UNAVAILABLE_CHILD") == "1" {
		Unavailable(t, "no frobnicator at /usr/sbin/frob")
		t.Fatal("Unavailable returned")
	}
	for _, tt := range []struct {
		require  string
		wantFail bool
		want     string
	}{
		{"", false, "--- SKIP: TestUnavailable"},
		{"1", true, "--- FAIL: TestUnavailable"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestUnavailable$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_UNAVAILABLE_CHILD=1", RequireServersEnv+"="+tt.require)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tt.wantFail {
			t.Errorf("%s=%q: child failed = %v (%v), want %v\n%s", RequireServersEnv, tt.require, failed, err, tt.wantFail, out)
		}
		for _, w := range []string{tt.want, "no frobnicator at /usr/sbin/frob", RequireServersEnv} {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s=%q: child output lacks %q:\n%s", RequireServersEnv, tt.require, w, out)
			}
		}
	}
}
