package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyAndPurgeArguments: bad arguments are refused with a clear
// line and exit 2, and change nothing; an empty store verifies clean.
func TestVerifyAndPurgeArguments(t *testing.T) {
	dataDir := t.TempDir()
	cfgFile := filepath.Join(t.TempDir(), "modgate.yaml")
	if err := os.WriteFile(cfgFile, []byte("data_dir: "+dataDir+"\nupstream:\n  goproxy: \"off\"\nsumdb:\n  gosumdb: \"off\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := Main(args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"verify extra argument", []string{"verify", "--config", cfgFile, "example.com/m"}, 2, `unexpected arguments ["example.com/m"]`},
		{"purge nothing", []string{"purge", "--config", cfgFile}, 2, "want one MODULE[@VERSION]"},
		{"purge a query", []string{"purge", "--config", cfgFile, "example.com/m@latest"}, 2, `"latest" is not a canonical version`},
		{"purge a bad path", []string{"purge", "--config", cfgFile, "../x@v1.0.0"}, 2, "invalid purge request"},
		{"purge two", []string{"purge", "--config", cfgFile, "example.com/a", "example.com/b"}, 2, "want one MODULE[@VERSION]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("modgate %q = %d, %q; want %d and %q", tt.args, code, stderr, tt.code, tt.stderr)
			}
		})
	}
	if entries, _ := os.ReadDir(filepath.Join(dataDir, "modules")); len(entries) != 0 {
		t.Errorf("refused commands wrote to the store: %v", entries)
	}
	code, stdout, stderr := run("verify", "--config", cfgFile)
	if code != 0 || !strings.Contains(stdout, "0 files") {
		t.Errorf("verify of an empty store = %d, %q, %q", code, stdout, stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(dataDir, "maintenance-*")); len(left) != 0 {
		t.Errorf("verify left its scratch directory: %v", left)
	}
}
