package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/testenv"
)

// runAudit runs `modgate audit ARGS...` and returns its exit status and
// output.
func runAudit(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(modgateBin, append([]string{"audit"}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + testHome(t)}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("modgate audit %v: %v", args, err)
	return 0, "", ""
}

// TestAuditVerifyAnchored runs the server binary with an anchor file,
// stops it cleanly, and checks `modgate audit verify --data-dir` before
// and after the end of the log is cut off together with its checkpoints.
func TestAuditVerifyAnchored(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	dataDir := filepath.Join(t.TempDir(), "data")
	anchor := filepath.Join(t.TempDir(), "checkpoints")
	cfgFile := filepath.Join(t.TempDir(), "modgate.yaml")
	if err := os.WriteFile(cfgFile, []byte("audit:\n  anchor_file: "+anchor+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"MODGATE_GOPROXY=" + up.URL(), "MODGATE_GOSUMDB=" + up.VerifierKey()}
	p := startBinary(t, env, "-config", cfgFile, "-data-dir", dataDir)
	goenv := testenv.GoEnv(t, p.URL, up.VerifierKey())
	if _, stderr, err := testenv.RunGo(t, t.TempDir(), goenv, "mod", "download", "example.com/hello@v1.0.0"); err != nil {
		t.Fatalf("go mod download: %v\n%s", err, stderr)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("modgate did not stop")
	}

	code, stdout, stderr := runAudit(t, "verify", "-config", cfgFile, "--data-dir", dataDir)
	if code != 0 || !strings.HasPrefix(stdout, "ok: ") || !strings.Contains(stdout, "outside checkpoint") || !strings.Contains(stdout, " in "+anchor) {
		t.Fatalf("audit verify after a clean shutdown = %d\n%s%s", code, stdout, stderr)
	}

	// Cut the last record and every checkpoint of the log; the anchor
	// keeps its copy.
	files, _ := filepath.Glob(filepath.Join(dataDir, "audit", "audit-*.jsonl"))
	data, err := os.ReadFile(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(data), "\n"), "\n")
	last := len(lines)
	os.WriteFile(files[len(files)-1], []byte(strings.Join(lines[:last-1], "")), 0o640)
	os.WriteFile(filepath.Join(dataDir, "audit", "checkpoints"), nil, 0o640)

	code, stdout, _ = runAudit(t, "verify", "-config", cfgFile, "--data-dir", dataDir)
	want := fmt.Sprintf("records after seq %d were deleted", last-1)
	if code != 1 || !strings.HasPrefix(stdout, "FAILED: ") || !strings.Contains(stdout, want) {
		t.Errorf("audit verify of a cut log = %d\n%s\nwant 1 and %q", code, stdout, want)
	}
}
