package storage_test

import (
	"testing"

	"github.com/modgate/modgate/internal/storage"
)

func TestImmutable(t *testing.T) {
	tests := []struct {
		name string
		key  string
		want bool
	}{
		{"zip", "example.com/!corp/lib/@v/v1.2.0.zip", true},
		{"mod", "example.com/lib/@v/v1.2.0.mod", true},
		{"info", "example.com/lib/@v/v1.2.0.info", true},
		{"pseudo-version", "example.com/lib/@v/v0.0.0-20260101000000-abcdefabcdef.zip", true},
		{"incompatible", "example.com/lib/@v/v2.0.0+incompatible.zip", true},
		{"prerelease", "example.com/lib/@v/v1.0.0-rc.1.mod", true},
		{"upper-case version escaped", "example.com/lib/@v/v1.0.0-!r!c.info", true},
		{"lookup", "sumdb/sum.example.org/lookup/example.com/lib@v1.0.0", true},
		{"full tile", "sumdb/sum.example.org/tile/8/0/001", true},
		{"partial tile", "sumdb/sum.example.org/tile/8/0/x001/234.p/5", true},
		{"list", "example.com/lib/@v/list", false},
		{"latest", "example.com/lib/@latest", false},
		{"branch query", "example.com/lib/@v/master.info", false},
		{"short version", "example.com/lib/@v/v1.info", false},
		{"build metadata", "example.com/lib/@v/v1.0.0+meta.zip", false},
		{"unescaped upper case", "example.com/lib/@v/v1.0.0-RC.info", false},
		{"other extension", "example.com/lib/@v/v1.0.0.txt", false},
		{"deeper", "example.com/lib/@v/sub/v1.0.0.zip", false},
		{"remembered miss", "answers/example.com/lib/@v/v1.0.0.info", false},
		{"sumdb latest", "sumdb/sum.example.org/latest", false},
		{"sumdb supported", "sumdb/sum.example.org/supported", false},
		{"sumdb fallback", "sumdb/sum.example.org/fallback/tile/8/0/001.p/3", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := storage.Immutable(tt.key); got != tt.want {
				t.Errorf("Immutable(%q) = %v, want %v", tt.key, got, tt.want)
			}
		})
	}
}
