package policy

import (
	"strings"
	"testing"
)

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		module  string
		want    bool
	}{
		{"literal itself", "example.com/x", "example.com/x", true},
		{"literal below", "example.com/x", "example.com/x/sub/v2", true},
		{"literal not a prefix of an element", "example.com/x", "example.com/xy", false},
		{"literal trailing slash", "example.com/x/", "example.com/x/v2", true},
		{"glob one element", "corp.example/*", "corp.example/lib", true},
		{"glob below", "corp.example/*", "corp.example/lib/v2", true},
		{"glob too short", "corp.example/*", "corp.example", false},
		{"glob host", "*.corp.example", "git.corp.example/a", true},
		{"glob other host", "*.corp.example", "example.com/a", false},
		{"class", "example.com/[ab]", "example.com/b", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := compilePatterns([]string{tt.pattern})
			if err != nil {
				t.Fatal(err)
			}
			if got := ps.match(tt.module) != ""; got != tt.want {
				t.Errorf("pattern %q matches %q = %v, want %v", tt.pattern, tt.module, got, tt.want)
			}
		})
	}
}

func TestCheckPattern(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		wantErr string
	}{
		{"ok", "corp.example/*", ""},
		{"empty", "", "empty pattern"},
		{"space", "corp.example/ x", "contains a space"},
		{"comma", "a.example,b.example", "contains a comma"},
		{"bad glob", "corp.example/[", "not a valid glob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPattern(tt.pattern)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("CheckPattern(%q) = %v, want error containing %q", tt.pattern, err, tt.wantErr)
			}
		})
	}
}

func TestRange(t *testing.T) {
	tests := []struct {
		name    string
		rng     string
		version string
		want    bool
	}{
		{"exact", "v1.2.3", "v1.2.3", true},
		{"exact other", "v1.2.3", "v1.2.4", false},
		{"exact short form", "v1.2", "v1.2.0", true},
		{"below", "<v2.0.0", "v1.9.9", true},
		{"at upper bound", "<v2.0.0", "v2.0.0", false},
		{"pre-release below release", "<v2.0.0", "v2.0.0-rc.1", true},
		{"pseudo-version is a pre-release", "<v1.4.0", "v1.3.1-0.20240101000000-abcdefabcdef", true},
		{"incompatible equals release", "=v2.0.0", "v2.0.0+incompatible", true},
		{"interval inside", ">=v1.2.0 <v1.4.0", "v1.3.5", true},
		{"interval lower bound", ">=v1.2.0 <v1.4.0", "v1.2.0", true},
		{"interval below", ">=v1.2.0 <v1.4.0", "v1.1.9", false},
		{"interval above", ">=v1.2.0 <v1.4.0", "v1.4.0", false},
		{"greater", ">v1.0.0", "v1.0.1", true},
		{"at most", "<=v1.0.0", "v1.0.0", true},
		{"invalid version is in no range", "<v9.0.0", "master", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRange(tt.rng)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Contains(tt.version); got != tt.want {
				t.Errorf("ParseRange(%q).Contains(%q) = %v, want %v", tt.rng, tt.version, got, tt.want)
			}
		})
	}
}

func TestParseRangeErrors(t *testing.T) {
	tests := []struct {
		name    string
		rng     string
		wantErr string
	}{
		{"empty", "  ", "empty version range"},
		{"no v", ">=1.2.0", `"1.2.0" in range ">=1.2.0" is not a semantic version`},
		{"bad operator", "~v1.2.0", `"~v1.2.0" in range`},
		{"or is not supported", "v1.0.0 || v2.0.0", `"||"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRange(tt.rng)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseRange(%q) = %v, want error containing %q", tt.rng, err, tt.wantErr)
			}
		})
	}
}
