package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrefetchUsage: bad arguments are a one-line error and exit 2, before
// anything is fetched.
func TestPrefetchUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"jobs", []string{"-j", "0", "x.example/m@v1.0.0"}, "-j must be at least 1"},
		{"both targets", []string{"--server", "http://127.0.0.1:1", "--data-dir", t.TempDir(), "x.example/m@v1.0.0"}, "exclude each other"},
		{"not a file", []string{"--server", "http://127.0.0.1:1", filepath.Join(t.TempDir(), "nope")}, "neither a file, a directory nor MODULE@VERSION"},
		{"bad module path", []string{"--server", "http://127.0.0.1:1", "not a path@v1.0.0"}, "malformed module path"},
		{"all without modules", []string{"--server", "http://127.0.0.1:1", "-all"}, "-all needs MODULE arguments"},
		{"all with a version", []string{"--server", "http://127.0.0.1:1", "-all", "x.example/m@v1.0.0"}, "x.example/m@v1.0.0: -all takes module paths"},
		{"empty directory", []string{"--server", "http://127.0.0.1:1", t.TempDir()}, "no go.mod or go.sum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Prefetch(t.Context(), tt.args, &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("Prefetch(%q) = %d, stderr %q; want 2 and %q", tt.args, code, stderr.String(), tt.want)
			}
		})
	}
}
