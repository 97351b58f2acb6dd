package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// GovulncheckVersion is the govulncheck the tests run against modgate's
// /vulndb/ copy.
const GovulncheckVersion = "v1.8.0"

var installMu sync.Mutex

// Govulncheck returns the path of govulncheck GovulncheckVersion:
// $MODGATE_GOVULNCHECK when set, else a binary cached under the user's
// cache directory (modgate-test-tools/govulncheck-VERSION), installed
// there with the go command through the host's GOPROXY the first time.
// When that install fails it skips the test, or fails it under
// MODGATE_REQUIRE_SERVERS=1 (see Unavailable).
// A user of modgate would run the real tool, so the tests do too.
func Govulncheck(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MODGATE_GOVULNCHECK"); p != "" {
		return p
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dir := filepath.Join(cache, "modgate-test-tools", "govulncheck-"+GovulncheckVersion)
	bin := filepath.Join(dir, "govulncheck")
	installMu.Lock()
	defer installMu.Unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	// Install into a directory of its own and rename it into place, so
	// that a test binary running at the same time never sees half a file.
	if err := os.MkdirAll(filepath.Dir(dir), 0o777); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".install-*")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(t.Context(), GoBinary(t), "install", "golang.org/x/vuln/cmd/govulncheck@"+GovulncheckVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=", "GOTOOLCHAIN=local", "GOOS=", "GOARCH=", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		// Without the module proxy of go env GOPROXY there is nothing to
		// install from: a missing tool, like a missing sshd (Unavailable).
		Unavailable(t, "testenv: installing govulncheck %s (set MODGATE_GOVULNCHECK to use another binary): %v\n%s", GovulncheckVersion, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(bin); serr == nil {
			return bin // another process installed it first
		}
		t.Fatalf("testenv: %v", err)
	}
	return bin
}
